// Crash safety: the daemon is killed with SIGKILL at random points while it
// programs a burst of new clients, and restarted, over and over. After every
// restart: no client in the kernel's set lost or moved, every client known to
// the store kept, the store file never corrupt, nothing duplicated, and the
// kernel equal to the plan. Then the store file itself is truncated, filled
// with garbage and deleted: the daemon reports it and recovers every
// assignment from its backup and the kernel's client set.
// Cycles: 12 in CI, 50 in `npm run test:long`.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addNeighbours } from '../../src/bench/clients.js';
import { Store } from '../../src/system/store.js';
import { clientSet, expectConverged, expectNoDuplicates, sleep } from '../helpers/checks.js';
import { Lab, type PoolsJson, type StatusJson } from '../helpers/lab.js';
import { scale } from '../helpers/long.js';

const CYCLES = scale(12, 50);
const BURST = 300;
jest.setTimeout(60_000 + CYCLES * 10_000);

describe('kill -9 during programming, restart, repeat', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 1, tag: 'crash', config: { schedule: '0 0 1 1 *' } });
    await lab.start();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test(`${CYCLES} kills at random points: nothing lost, moved, duplicated or corrupt`, async () => {
    // A fixed seed, so a failure can be replayed: the delays are the same every run.
    let seed = 20261122;
    const random = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    const delays: number[] = [];
    let behind = 0; // kills that left the kernel ahead of the store (clients recovered by adoption)
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const before = await clientSet(lab);
      await addNeighbours(lab, BURST, cycle * BURST);
      const delay = Math.floor(random() * 400);
      delays.push(delay);
      await sleep(delay);
      lab.daemon!.process.stop('SIGKILL');
      await lab.daemon!.process.ended;
      lab.daemon = null;
      const frozen = await clientSet(lab);
      // The store is always a whole file: the old one or the new one.
      const stored = await Store.peek(lab.files.state);
      expect([...before].filter(([ip, mark]) => frozen.get(ip) !== mark)).toEqual([]);
      if ([...frozen.keys()].some((ip) => !stored?.clients[ip])) behind++;
      await lab.start();
      const after = await clientSet(lab);
      // Every client the kernel held keeps its pool mark; every client the store knew keeps its uplink.
      expect([...frozen].filter(([ip, mark]) => after.get(ip) !== mark)).toEqual([]);
      const pools = await lab.cliJson<PoolsJson>(['pools']);
      const uplinkOf = new Map(pools.uplinks.flatMap((u) => u.clients.map((ip) => [ip, u.name] as const)));
      expect(Object.entries(stored?.clients ?? {}).filter(([ip, record]) => uplinkOf.get(ip) !== record.uplink)).toEqual([]);
      // The first run after the restart scanned the table: every entry so far is assigned.
      expect(after.size).toBe((cycle + 1) * BURST);
    }
    await expectNoDuplicates(lab);
    await expectConverged(lab);
    process.stdout.write(`crash: ${CYCLES} kills at ${delays.join(', ')} ms into a ${BURST}-client burst; ${behind} left the kernel ahead of the store; ${(await clientSet(lab)).size} clients kept\n`);
  });

  test('a truncated, a garbage and a deleted store are reported and recovered from the backup and the kernel', async () => {
    const expected = await clientSet(lab);
    const storeFile = join(lab.files.state, 'dispatcher.json');
    for (const damage of ['truncated', 'garbage', 'deleted with its backup'] as const) {
      await lab.stop();
      const text = await readFile(storeFile, 'utf8');
      if (damage === 'truncated') await writeFile(storeFile, text.slice(0, Math.floor(text.length / 2)));
      if (damage === 'garbage') await writeFile(storeFile, Buffer.from([0x00, 0xff, 0x13, 0x37, 0x7b]));
      if (damage === 'deleted with its backup') await rm(storeFile).then(() => rm(`${storeFile}.bak`));
      await lab.start();
      const status = await lab.cliJson<StatusJson & { store: { store: { backup: string; movedTo: string } | null; adopted: number } }>(['status']);
      if (damage === 'deleted with its backup') {
        // Nothing to report as unusable: every client comes back from the kernel's set.
        expect(status.store).toEqual({ store: null, adopted: expected.size });
      } else {
        expect(status.store.store).toMatchObject({ backup: 'used', movedTo: expect.stringContaining('dispatcher.json.unusable-') });
        expect(lab.daemon!.logs.some((l) => l.includes('state store was unusable'))).toBe(true);
      }
      expect(await clientSet(lab)).toEqual(expected);
      expect(status.clients).toBe(expected.size);
    }
    await expectConverged(lab);
  });
});

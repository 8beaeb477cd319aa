// balance.assign: traffic and dispatcher rebalance on the real kernel. Two
// main lines of equal weight (isp3 is a tier-2 standby). Four clients join
// while nothing flows, two per line as with `count`; then one client on isp1
// sends a heavy UDP stream and one on isp2 keeps a TCP session open. A fifth
// client joins isp2, the line with the least measured traffic (by count it
// would have joined isp1). A rebalance moves the idle client off isp1 and
// nobody else: the stream loses nothing, the session keeps its address, and
// the moved client's next connection leaves by isp2.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { LabClient } from '../../src/lab/topology.js';
import type { ResultOf } from '../../src/schema/control.js';
import { Lab, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(300_000);

type Rebalance = ResultOf<'rebalance'>;

describe('traffic-aware assignment and rebalance', () => {
  let lab: Lab;
  const poolOf = async (client: LabClient): Promise<string> => (await lab.cliJson<PoolsJson>(['pools'])).uplinks.find((u) => u.clients.includes(client.ip))?.name ?? 'none';
  const pools = async (): Promise<Record<string, string[]>> => Object.fromEntries((await lab.cliJson<PoolsJson>(['pools'])).uplinks.map((u) => [u.name, [...u.clients]]));

  beforeAll(async () => {
    lab = await Lab.create({
      clients: 5,
      tag: 'traf',
      config: { weights: { isp1: 1, isp2: 1, isp3: 1 }, uplinkKeys: { isp3: ['tier: 2'] }, extra: 'balance: { assign: traffic }\n' },
    });
    await lab.start();
    // One at a time, so the order (and with nothing flowing, the counts) decides: c0 isp1, c1 isp2, c2 isp1, c3 isp2.
    for (let i = 0; i < 4; i++) {
      await lab.hello(lab.client(i));
      await within(10_000, `client ${i} assigned`, async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === i + 1);
    }
  });
  afterAll(async () => {
    await lab?.destroy();
  });

  test('a new client joins the line with the least traffic ÷ weight; rebalance moves only the idle client of the busy line, and breaks nothing', async () => {
    expect(await pools()).toMatchObject({ isp1: [lab.client(0).ip, lab.client(2).ip], isp2: [lab.client(1).ip, lab.client(3).ip] });
    const session = await lab.session(lab.client(3));
    const streamed = lab.stream(lab.client(0), 'heavy', 2000, 25);
    try {
      const home = (await session.send('before')).split(' ')[0];
      // Two counter readings 5 s apart see the stream.
      await new Promise((resolve) => setTimeout(resolve, 11_000));
      await lab.hello(lab.client(4));
      await within(10_000, 'client 4 assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 5);
      expect(await poolOf(lab.client(4))).toBe('isp2');

      const dry = await lab.cliJson<Rebalance>(['rebalance', '--dry-run']);
      process.stdout.write(`rebalance --dry-run: before ${JSON.stringify(dry.before)} B/s, after ${JSON.stringify(dry.after)}, moves ${JSON.stringify(dry.moves)}, ${dry.idle} idle, ${dry.busy} busy\n`);
      expect(dry.moves).toEqual([{ ip: lab.client(2).ip, from: 'isp1', to: 'isp2' }]);
      expect(dry.busy).toBeGreaterThanOrEqual(2);
      // 2,000 datagrams a second of about 40 bytes each.
      expect(dry.before.isp1).toBeGreaterThan(20_000);
      expect(await poolOf(lab.client(2))).toBe('isp1');

      const done = await lab.cliJson<Rebalance>(['rebalance']);
      expect(done.moves).toEqual(dry.moves);
      expect(done.run?.ok).toBe(true);
      expect(await poolOf(lab.client(2))).toBe('isp2');
      expect(await lab.leavesBy(lab.client(2))).toBe('isp2');
      // The busy ones stayed, and their connections with them.
      expect(await poolOf(lab.client(0))).toBe('isp1');
      expect(await poolOf(lab.client(3))).toBe('isp2');
      expect((await session.send('after')).split(' ')[0]).toBe(home);
    } finally {
      await streamed;
      session.close();
    }
    // The stream arrived whole (a busy 2-core machine may drop a few datagrams of 50,000), all from isp1's address.
    const heavy = lab.server.lines.filter((line) => line.startsWith('udp heavy '));
    const sources = new Set(heavy.map((line) => line.split(' ')[3]));
    expect(sources).toEqual(new Set([lab.uplink('isp1').publicAddress]));
    expect(heavy.length).toBeGreaterThanOrEqual(2000 * 25 * 0.95);
  });
});

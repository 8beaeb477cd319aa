// Concurrency: 200 `dispatcher` processes at once — ppp ip-down/ip-up hooks
// (each a probe-state transition), assign/release, scan, status and pools —
// while scheduled scans run every second and new clients keep arriving.
// Every call must be answered, no run may fail (runs never interleave: the
// loop is one run at a time, so no batch is applied half-way through another),
// and once the hooks' last word is ip-up the kernel equals the plan.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { addNeighbours, benchAddress } from '../../src/bench/clients.js';
import { clientSet, expectConverged, expectNoDuplicates } from '../helpers/checks.js';
import { Lab, within, type StatusJson } from '../helpers/lab.js';

const CALLS = 200;
jest.setTimeout(180_000);

describe(`${CALLS} parallel CLI and hook calls`, () => {
  let lab: Lab;

  beforeAll(async () => {
    // The hooks make the ppp lines flap: a short damping half-life lets them come back within the test.
    lab = await Lab.create({ clients: 1, tag: 'conc', config: { schedule: '* * * * * *', extra: 'health: { damping: { half_life: 2s } }' } });
    await lab.start();
    await addNeighbours(lab, 400);
    await within(5000, '400 clients classified', async () => (await clientSet(lab)).size === 400);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('every call answered, no run failed, the kernel equals the plan afterwards', async () => {
    const hook = (event: string, iface: string): string[] => ['hook', event, iface, '/dev/ttyS0', '115200', '192.0.2.2', '192.0.2.1'];
    const calls: { args: string[]; ok: RegExp }[] = [];
    for (let i = 0; i < CALLS; i++) {
      const iface = i % 2 === 0 ? 'ppp0' : 'ppp1';
      const ip = benchAddress(i % 40);
      const kinds = [
        { args: hook('ip-down', iface), ok: /^ip-down on ppp[01]: passed to the daemon/ },
        { args: hook('ip-up', iface), ok: /^ip-up on ppp[01]: passed to the daemon/ },
        { args: ['assign', ip, i % 3 === 0 ? 'isp3' : 'isp2'], ok: /pinned to isp[23]/ },
        { args: ['status', '--json'], ok: /"running": true/ },
        { args: ['pools', '--json'], ok: /"source": "daemon"/ },
        { args: ['scan'], ok: /"ok": true/ },
        { args: ['release', benchAddress(100 + i)], ok: /released from isp[123]/ },
      ];
      calls.push(kinds[i % kinds.length] as { args: string[]; ok: RegExp });
    }
    // New clients arrive while the calls run.
    const started = performance.now();
    const arrivals = addNeighbours(lab, 200, 400).then(() => performance.now() - started);
    const results = await Promise.all(calls.map(async (call) => ({ call, result: await lab.cli(call.args, [0, 1, 2]) })));
    const wall = performance.now() - started;
    const arrived = await arrivals;
    const failed = results.filter(({ call, result }) => result.exitCode !== 0 || !call.ok.test(result.stdout));
    expect(failed.map(({ call, result }) => `${call.args.join(' ')} → ${result.exitCode}: ${result.stdout}${result.stderr}`.slice(0, 300))).toEqual([]);
    // The hooks' last word: both ppp lines up.
    await lab.cli(hook('ip-up', 'ppp0'));
    await lab.cli(hook('ip-up', 'ppp1'));
    await within(20_000, 'every uplink up once damping has let go', async () => (await lab.status()).uplinks.every((u) => u.state === 'up'));
    await lab.cli(['scan']);
    const status: StatusJson = await lab.status();
    expect(status.lastRun?.ok).toBe(true);
    expect(lab.daemon!.logs.filter((l) => l.includes('reconcile failed'))).toEqual([]);
    expect((await clientSet(lab)).size).toBe(600);
    await expectNoDuplicates(lab);
    await expectConverged(lab);
    process.stdout.write(
      `concurrency: ${CALLS} calls answered in ${Math.round(wall)} ms; 200 arrivals loaded in ${Math.round(arrived)} ms; ${status.runs} runs; transitions ${status.uplinks.map((u) => `${u.name} ${u.health?.transitions ?? 0}`).join(', ')}\n`,
    );
  });
});

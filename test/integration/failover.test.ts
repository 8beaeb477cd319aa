// A dead line stops mattering: failures of every kind are found and the dead
// line's pool moves to the survivors within the bound, measured as the gap in
// a client's steady packet stream at the internet host; live connections of
// other lines are never touched; the line comes home when it recovers, and
// connections opened during the outage survive that.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blackhole, cut } from '../../src/lab/faults.js';
import type { LabClient } from '../../src/lab/topology.js';
import { arrivals, Lab, longestGap, type PoolsJson, type Session, within } from '../helpers/lab.js';

jest.setTimeout(120_000);

const BOUND_MS = 2000;
const RATE = 100; // datagrams per second: 10 ms resolution

describe('failover and failback in the default lab (isp1 ppp0 w2, isp2 ppp1 w1, isp3 wan0 w1)', () => {
  let lab: Lab;
  let pools: PoolsJson;
  let events: string;
  const address = (uplink: string): string => lab.uplink(uplink).local;
  const clientOf = (uplink: string): LabClient => {
    const ip = pools.uplinks.find((u) => u.name === uplink)?.clients[0];
    return lab.topo.clients.find((c) => c.ip === ip) as LabClient;
  };

  /** Streams from a client while `fault` runs 1.5 s in; returns the longest gap and the sources around it. */
  async function gapDuring(client: LabClient, tag: string, fault: () => Promise<void>): Promise<ReturnType<typeof longestGap>> {
    const sending = lab.stream(client, tag, RATE, 5);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await fault();
    await sending;
    await new Promise((resolve) => setTimeout(resolve, 200));
    return longestGap(arrivals(lab, tag));
  }

  beforeAll(async () => {
    lab = await Lab.create({ clients: 4 });
    events = join(lab.files.dir, 'events');
    // A hook that records the change, and one that never returns.
    await writeFile(join(lab.files.dir, 'record'), `#!/bin/sh\necho "$DISPATCHER_UPLINK $DISPATCHER_OLD_STATE $DISPATCHER_NEW_STATE $DISPATCHER_INTERFACE" >> ${events}\n`);
    await writeFile(join(lab.files.dir, 'hang'), '#!/bin/sh\nexec sleep 3600\n');
    for (const hook of ['record', 'hang']) await chmod(join(lab.files.dir, hook), 0o755);
    await lab.rewriteConfig({
      extra: [
        // This suite fails the same line again and again on purpose: no flap damping here
        // (it has its own unit tests and the flap-storm test).
        'health: { damping: { suppress: 100, reuse: 1 } }',
        'notify:',
        `  exec: [${join(lab.files.dir, 'hang')}, ${join(lab.files.dir, 'record')}]`,
        '  timeout: 2s',
        `  email: { to: ops@example.test, from: gateway@example.test, smtp: "${lab.topo.server}:2525", every: 1s }`,
      ].join('\n'),
    });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    await within(5000, 'clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 4);
    pools = await lab.cliJson<PoolsJson>(['pools']);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('status states the worst-case detection and failback times from the active settings', async () => {
    const status = await lab.status();
    for (const uplink of status.uplinks) {
      expect(uplink.health).toMatchObject({ state: 'up', transitions: 0, detectionMs: 1300, failbackMs: 1500 });
      expect(uplink.health?.targets[0]).toMatchObject({ target: lab.uplink(uplink.name).ispCore, alive: true });
    }
  });

  let survivorSession: Session;
  let otherSession: Session;

  test(`silent blackhole: the pool's traffic flows again via a survivor within ${BOUND_MS} ms`, async () => {
    otherSession = await lab.session(clientOf('isp2'));
    expect(await otherSession.send('before')).toBe(`${address('isp2')} before`);
    const gap = await gapDuring(clientOf('isp1'), 'blackhole', () => blackhole(lab.runner, lab.uplink('isp1'), true));
    process.stdout.write(`silent blackhole on isp1: stream gap ${gap.ms} ms (${gap.before} -> ${gap.after})\n`);
    expect(gap.before).toBe(address('isp1'));
    expect([address('isp2'), address('isp3')]).toContain(gap.after);
    expect(gap.ms).toBeLessThan(BOUND_MS);
    const status = await lab.status();
    expect(status.uplinks.find((u) => u.name === 'isp1')).toMatchObject({ state: 'down', reason: expect.stringMatching(/0 of 1 targets answer/) });
  });

  test('the flush forgot only the dead line: a connection on isp2 is untouched', async () => {
    expect(await otherSession.send('during')).toBe(`${address('isp2')} during`);
  });

  test('every change is told: log, hooks (one of which hangs), and a mail', async () => {
    await within(3000, 'the record hook ran', async () => (await readFile(events, 'utf8').catch(() => '')).includes('isp1 up down ppp0'));
    await within(5000, 'the mail arrived', async () => lab.server.lines.some((l) => l.startsWith('mail gateway@example.test [dispatcher') && l.includes('isp1 DOWN')));
    expect(lab.daemon!.logs.some((l) => l.includes('"msg":"uplink state changed"') && l.includes('"uplink":"isp1"'))).toBe(true);
    // The hanging hook is killed after notify.timeout (2 s).
    await within(10_000, 'the hanging hook killed', async () => (await lab.runIn(lab.topo.gw, ['pgrep', '-f', 'sleep 3600'], [0, 1])).exitCode === 1);
  });

  test('failback: a connection opened during the outage survives it; new connections go home', async () => {
    const client = clientOf('isp1');
    survivorSession = await lab.session(client);
    const during = (await survivorSession.send('opened during the outage')).split(' ')[0] as string;
    expect([address('isp2'), address('isp3')]).toContain(during);
    const restored = performance.now();
    await blackhole(lab.runner, lab.uplink('isp1'), false);
    const failback = await within(5000, 'isp1 back up', async () => (await lab.stateOf('isp1')) === 'up');
    process.stdout.write(`failback after recovery: ${(performance.now() - restored).toFixed(0)} ms (status poll ${failback.toFixed(0)} ms)\n`);
    for (let i = 0; i < 3; i++) expect(await survivorSession.send(`after ${i}`)).toBe(`${during} after ${i}`);
    expect(await lab.leavesBy(client)).toBe('isp1');
    expect(await otherSession.send('after')).toBe(`${address('isp2')} after`);
    survivorSession.close();
    otherSession.close();
  });

  test('hard failure: the ISP side goes down; failover within a second', async () => {
    const gap = await gapDuring(clientOf('isp1'), 'cut', () => cut(lab.runner, lab.uplink('isp1'), true));
    process.stdout.write(`link down on isp1: stream gap ${gap.ms} ms (${gap.before} -> ${gap.after})\n`);
    expect(gap.ms).toBeLessThan(1000);
    expect(gap.before).toBe(address('isp1'));
    await cut(lab.runner, lab.uplink('isp1'), false);
    await within(5000, 'isp1 back up', async () => (await lab.stateOf('isp1')) === 'up');
  });

  test('ppp ip-down through the installed hook script (empty environment): failover within a second', async () => {
    const pppDir = join(lab.files.dir, 'ppp');
    await lab.cli(['install-hooks', '--ppp-dir', pppDir]);
    const args = ['ppp0', '/dev/ttyS0', '115200', address('isp1'), lab.uplink('isp1').gateway, 'isp1'];
    let hookMs = 0;
    const gap = await gapDuring(clientOf('isp1'), 'ipdown', async () => {
      const started = performance.now();
      await lab.runIn(lab.topo.gw, ['env', '-i', join(pppDir, 'ip-down.d', 'dispatcher'), ...args]);
      hookMs = performance.now() - started;
    });
    // The line itself still works, so the stream switches without a gap: measure the switch.
    const stream = arrivals(lab, 'ipdown');
    const switched = stream.find((a) => a.source !== address('isp1'));
    const lastOnIsp1 = [...stream].reverse().find((a) => a.source === address('isp1'));
    process.stdout.write(
      `ppp ip-down hook on isp1: hook returned in ${hookMs.toFixed(0)} ms, stream switched to ${switched?.source} ${switched && lastOnIsp1 ? switched.at - lastOnIsp1.at : '?'} ms after its last packet on isp1 (longest gap ${gap.ms} ms)\n`,
    );
    expect(hookMs).toBeLessThan(1000);
    expect(gap.ms).toBeLessThan(1000);
    expect([address('isp2'), address('isp3')]).toContain(stream[stream.length - 1]?.source);
    expect((await lab.status()).uplinks.find((u) => u.name === 'isp1')?.reason).toBe('ppp ip-down on ppp0');
    await lab.runIn(lab.topo.gw, ['env', '-i', join(pppDir, 'ip-up.d', 'dispatcher'), ...args]);
    await within(5000, 'isp1 back up after ip-up', async () => (await lab.stateOf('isp1')) === 'up');
  });

  test('all uplinks down, then one back: every client recovers through it', async () => {
    for (const uplink of lab.topo.uplinks) await blackhole(lab.runner, uplink, true);
    await within(5000, 'all down', async () => (await lab.status()).uplinks.every((u) => u.state === 'down'));
    await within(2000, 'the critical log line', async () => lab.daemon!.logs.some((l) => l.includes('every uplink is down')));
    const started = performance.now();
    await blackhole(lab.runner, lab.uplink('isp3'), false);
    await within(5000, 'isp3 up', async () => (await lab.stateOf('isp3')) === 'up');
    process.stdout.write(`total outage, isp3 back: up again after ${(performance.now() - started).toFixed(0)} ms\n`);
    // Every client, whatever its pool, gets through isp3 at the first try.
    for (const client of lab.topo.clients) expect([client.ip, await lab.leavesBy(client)]).toEqual([client.ip, 'isp3']);
    for (const uplink of ['isp1', 'isp2']) await blackhole(lab.runner, lab.uplink(uplink), false);
    await within(5000, 'all up', async () => (await lab.status()).uplinks.every((u) => u.state === 'up'));
  });
});

describe('static routes follow the first live uplink of their list', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, config: { extra: 'static_routes:\n  - { destination: 203.0.113.200/32, via: [isp2, isp1] }' } });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('203.0.113.200 goes via isp2, via isp1 while isp2 is dead, and back', async () => {
    const site = async (client: LabClient): Promise<string> => {
      const { sourceSeenBy, uplinkByAddress } = await import('../../src/lab/harness.js');
      return uplinkByAddress(lab.topo, await sourceSeenBy(lab.runner, lab.topo, client, '203.0.113.200')) ?? '?';
    };
    for (const client of lab.topo.clients) expect(await site(client)).toBe('isp2');
    await blackhole(lab.runner, lab.uplink('isp2'), true);
    await within(5000, 'isp2 down', async () => (await lab.stateOf('isp2')) === 'down');
    for (const client of lab.topo.clients) expect(await site(client)).toBe('isp1');
    await blackhole(lab.runner, lab.uplink('isp2'), false);
    await within(5000, 'isp2 up', async () => (await lab.stateOf('isp2')) === 'up');
    for (const client of lab.topo.clients) expect(await site(client)).toBe('isp2');
  });
});

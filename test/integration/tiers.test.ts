// A backup line on the real kernel: isp3 (wan0) is tier 2 with failback: move
// — an LTE line that must stay idle while a main line works. It carries no
// client packet while isp1 or isp2 is up; when both are blackholed it carries
// everything (the stream's gap within 2 s); when isp1 returns it stands by
// again and, failback: move, the stream it still carried leaves it within
// 2 s of the return. Standing by, it is probed ten times less often.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { blackhole } from '../../src/lab/faults.js';
import { AGENT } from '../../src/lab/harness.js';
import type { LabClient } from '../../src/lab/topology.js';
import { arrivals, Lab, longestGap, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(180_000);

const BOUND_MS = 2000;
/**
 * The bound for leaving the backup: a line comes back after `up`
 * answered probes (10 × 100 ms), then its prepared return moves the pools
 * and forgets the backup's connections at once: measured 1.08 s.
 */
const FAILBACK_MS = 2000;
const METRICS = '127.0.0.1:9111';
/** Counts the client datagrams (UDP; probes are ICMP) the backup line's ISP receives from the gateway. */
const COUNT_UDP = ['-t', 'raw', '-I', 'PREROUTING', '-i', 'cust', '-p', 'udp'];

describe('a tier-2 line (isp3, failback: move) behind two main lines', () => {
  let lab: Lab;
  let client: LabClient;

  /** UDP packets isp3's ISP has received from the gateway so far. */
  const backupPackets = async (): Promise<number> => {
    const text = (await lab.runIn(lab.uplink('isp3').isp, ['iptables-save', '-c', '-t', 'raw'])).stdout;
    const counted = /^\[(\d+):\d+\] -A PREROUTING -i cust -p udp$/m.exec(text);
    return Number(counted?.[1] ?? Number.NaN);
  };

  beforeAll(async () => {
    lab = await Lab.create({
      clients: 2,
      tag: 'tier',
      config: { uplinkKeys: { isp3: ['tier: 2', 'failback: move'] }, extra: `health: { damping: { suppress: 100, reuse: 1 } }\nmetrics: { listen: "${METRICS}" }\n` },
    });
    await lab.start();
    for (const c of lab.topo.clients) await lab.hello(c);
    await within(10_000, 'clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 2);
    // The backup line's first verdict: twice in a run of several suites it was down at this point (not
    // reproduced alone); its log lines say why if it is not standing by within 15 s.
    await within(15_000, 'isp3 standing by', async () => (await lab.cliJson<PoolsJson>(['pools'])).uplinks[2]?.role === 'standby').catch((error: Error) => {
      throw new Error(`${error.message}\n${(lab.daemon?.logs ?? []).filter((l) => l.includes('isp3')).join('\n')}`);
    });
    client = lab.client(0);
    await lab.runIn(lab.uplink('isp3').isp, ['iptables', ...COUNT_UDP]);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('while a main line is up the backup line stands by: no client in its pool, no client packet through it', async () => {
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    expect(pools.uplinks.map((u) => [u.name, u.tier, u.role, u.clients.length > 0])).toEqual([
      ['isp1', 1, 'carrying', true],
      ['isp2', 1, 'carrying', true],
      ['isp3', 2, 'standby', false],
    ]);
    expect((await lab.cli(['pools'])).stdout).toMatch(/isp3\s+wan0\s+standby\s+2\s/);
    for (const c of lab.topo.clients) await lab.stream(c, `idle${c.ip}`, 100, 2);
    expect(await backupPackets()).toBe(0);
    // The multipath route leaves it out too.
    expect((await lab.runIn(lab.topo.gw, ['ip', 'route', 'show', 'table', '3100'])).stdout).not.toContain('wan0');
    const metrics = (await lab.runIn(lab.topo.gw, [process.execPath, AGENT, 'get', `http://${METRICS}/metrics`])).stdout;
    expect(metrics).toContain('dispatcher_uplink_carrying{uplink="isp1",tier="1"} 1');
    expect(metrics).toContain('dispatcher_uplink_carrying{uplink="isp3",tier="2"} 0');
    // Its probes run at the standby interval: a tenth of the cost.
    const health = (await lab.status()).uplinks.map((u) => [u.name, u.health?.intervalMs, u.health?.probeKbps.out]);
    expect(health).toEqual([
      ['isp1', 100, 6.7],
      ['isp2', 100, 6.7],
      ['isp3', 1000, 0.7],
    ]);
  });

  test(`every main line blackholed: the backup line carries the stream within ${BOUND_MS} ms; one back and the stream leaves it within ${FAILBACK_MS} ms (failback: move)`, async () => {
    const sending = lab.stream(client, 'takeover', 100, 9);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await Promise.all(['isp1', 'isp2'].map((name) => blackhole(lab.runner, lab.uplink(name), true)));
    await within(5000, 'isp3 carrying', async () => (await lab.cliJson<PoolsJson>(['pools'])).uplinks[2]?.role === 'carrying');
    await within(3000, "isp3's probes at the interval again", async () => (await lab.status()).uplinks[2]?.health?.intervalMs === 100);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const returnedAt = Date.now();
    await blackhole(lab.runner, lab.uplink('isp1'), false);
    await sending;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const list = arrivals(lab, 'takeover');
    const backup = lab.uplink('isp3').publicAddress;
    const before = list.filter((a) => a.at < returnedAt);
    const gap = longestGap(before);
    const lastOnBackup = Math.max(...list.filter((a) => a.source === backup).map((a) => a.at));
    const after = list.filter((a) => a.at > lastOnBackup);
    process.stdout.write(
      `tiers: both main lines blackholed, stream gap ${gap.ms} ms (${gap.before} -> ${gap.after}); isp1 back, last datagram via the backup ${lastOnBackup - returnedAt} ms after the return, then via ${after[0]?.source}\n`,
    );
    expect(gap.after).toBe(backup);
    expect(gap.ms).toBeLessThanOrEqual(BOUND_MS);
    expect(lastOnBackup - returnedAt).toBeLessThanOrEqual(FAILBACK_MS);
    expect(after.length).toBeGreaterThan(50);
    expect(new Set(after.map((a) => a.source))).toEqual(new Set([lab.uplink('isp1').publicAddress]));
    // Standing by again: nothing more goes through it.
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    expect(pools.uplinks.map((u) => u.role)).toEqual(['carrying', 'down', 'standby']);
    const counted = await backupPackets();
    await lab.stream(client, 'after', 100, 2);
    expect(await backupPackets()).toBe(counted);
    expect(lab.daemon!.logs.some((l) => l.includes('uplink stands by: a line of a lower tier is up; its connections forgotten (failback: move)'))).toBe(true);
    await blackhole(lab.runner, lab.uplink('isp2'), false);
  });
});

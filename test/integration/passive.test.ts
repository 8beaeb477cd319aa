// How fast a silently dead line is left with the default health settings and
// two targets per line (its ISP's core router and an internet host), on the
// real kernel: on a line carrying a client's stream and on an idle one (the
// passive signal: the interface sent and heard nothing, a burst of probes
// confirms), and by the probes alone with the passive signal off (two silent
// targets corroborate). A line that is merely idle is never taken down.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { blackhole } from '../../src/lab/faults.js';
import type { LabClient } from '../../src/lab/topology.js';
import { arrivals, Lab, longestGap, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(180_000);

/**
 * Issue 17's targets: a busy line left within 500 ms, an idle one within 1 s
 * (measured 0.35–0.49 s and 0.44–0.55 s here). The busy bound is generous
 * because the project's CI once measured 775 ms on a loaded machine; what
 * proves the passive path was taken is the reason asserted below (a stall and
 * an unanswered burst), and `npm run bench` holds the figure to the 500 ms.
 */
const BUSY_MS = 500 + 500;
const IDLE_MS = 1000;
/** The probes alone with two targets: 4 × 100 + 500 ms to the verdict (measured 0.96–1.0 s with the move), and 500 ms of margin. */
const CORROBORATED_MS = 900 + 500;

const TARGETS = { isp1: '[198.51.100.2, 203.0.113.100]', isp2: '[198.51.100.6, 203.0.113.100]', isp3: '[198.51.100.10, 203.0.113.100]' };
// These tests fail lines again and again on purpose: no flap damping here.
const NO_DAMPING = 'health: { damping: { suppress: 100, reuse: 1 } }';

describe('a silent blackhole with the default health settings and two targets per line', () => {
  let lab: Lab;
  let pools: PoolsJson;

  const clientOf = (uplink: string): LabClient => lab.topo.clients.find((c) => c.ip === pools.uplinks.find((u) => u.name === uplink)?.clients[0]) as LabClient;
  const health = async (uplink: string) => (await lab.status()).uplinks.find((u) => u.name === uplink)?.health;

  /** Blackholes `uplink` until it is down, then lets it back; returns the reason it went down for. */
  async function outage(uplink: string, during: () => Promise<number>): Promise<{ ms: number; reason: string }> {
    const ms = await during();
    const reason = (await lab.status()).uplinks.find((u) => u.name === uplink)?.reason ?? '';
    await blackhole(lab.runner, lab.uplink(uplink), false);
    await within(10_000, `${uplink} back`, async () => (await lab.stateOf(uplink)) === 'up');
    return { ms, reason };
  }

  beforeAll(async () => {
    lab = await Lab.create({ clients: 3, tag: 'pasv', config: { targets: TARGETS, extra: NO_DAMPING } });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    pools = await within(10_000, 'clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 3).then(() => lab.cliJson<PoolsJson>(['pools']));
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('status shows both paths: the passive one (≤ 0.4 s here) and the corroborated probes (0.9 s)', async () => {
    const isp1 = await health('isp1');
    expect(isp1?.detectionMs).toBe(900);
    expect(isp1?.passive).toMatchObject({ stallMs: 300, detectionMs: 300 + 25 + 20 + 30, silent: 0 });
    expect((await lab.cli(['status'])).stdout).toMatch(/passive: a stall of 300 ms is asked at once \(≤ 375 ms to a verdict on a line carrying traffic\)/);
  });

  test(`a line carrying a client's stream: the stream's gap is at most ${BUSY_MS} ms`, async () => {
    const tag = 'busy';
    const sending = lab.stream(clientOf('isp1'), tag, 100, 4);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const { reason } = await outage('isp1', async () => {
      await blackhole(lab.runner, lab.uplink('isp1'), true);
      await sending;
      return 0;
    });
    const gap = longestGap(arrivals(lab, tag));
    process.stdout.write(`busy line (100 datagrams/s), silent blackhole: stream gap ${gap.ms} ms (${gap.before} -> ${gap.after}); down because: ${reason}\n`);
    expect(gap.before).toBe(lab.uplink('isp1').local);
    expect(gap.after).not.toBe(lab.uplink('isp1').local);
    expect(gap.ms).toBeLessThanOrEqual(BUSY_MS);
    expect(reason).toMatch(/packets sent and none received for \d+ ms; a burst of 5 probes went unanswered/);
    expect((await health('isp1'))?.passive?.silent).toBe(1);
  });

  test(`an idle line (only its probes go out): its pool moves at most ${IDLE_MS} ms after the blackhole`, async () => {
    const idle = pools.uplinks.find((u) => u.clients.length === 0)?.name ?? 'isp3';
    const { ms, reason } = await outage(idle, async () => {
      const start = Date.now();
      await blackhole(lab.runner, lab.uplink(idle), true);
      return (await lab.poolMovedAt(idle, start)) - start;
    });
    process.stdout.write(`idle line ${idle}, silent blackhole: pool moved ${ms} ms after it; down because: ${reason}\n`);
    expect(ms).toBeLessThanOrEqual(IDLE_MS);
    expect(reason).toMatch(/a burst of 5 probes went unanswered/);
  });

  test('merely idle lines are never asked to fail over: 15 s without client traffic, no silent stall, no transition', async () => {
    const before = (await lab.status()).uplinks.map((u) => [u.health?.transitions, u.health?.passive?.silent]);
    await new Promise((resolve) => setTimeout(resolve, 15_000));
    const after = (await lab.status()).uplinks;
    process.stdout.write(`15 s idle: stalls answered by a burst ${after.map((u) => `${u.name} ${u.health?.passive?.answered}`).join(', ')}\n`);
    expect(after.map((u) => [u.health?.transitions, u.health?.passive?.silent])).toEqual(before);
    expect(after.map((u) => u.state)).toEqual(['up', 'up', 'up']);
  });

  test(`passive off: the probes alone, two silent targets corroborating, leave an idle line within ${CORROBORATED_MS} ms`, async () => {
    await lab.rewriteConfig({ targets: TARGETS, extra: `health: { damping: { suppress: 100, reuse: 1 }, passive: { stall: 0 } }` });
    await lab.cli(['reload']);
    await within(5000, 'passive off', async () => (await health('isp3'))?.passive === null);
    const { ms, reason } = await outage('isp3', async () => {
      const start = Date.now();
      await blackhole(lab.runner, lab.uplink('isp3'), true);
      return (await lab.poolMovedAt('isp3', start)) - start;
    });
    process.stdout.write(`idle line isp3, passive off: pool moved ${ms} ms after the blackhole; down because: ${reason}\n`);
    expect(reason).toMatch(/4 probes lost in a row while 1 other target was as silent/);
    expect(ms).toBeLessThanOrEqual(CORROBORATED_MS);
  });
});

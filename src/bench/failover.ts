// Scenario 4: the gap in a client's packet stream (100 datagrams a second, as
// the internet host receives them) when its uplink fails silently (blackhole
// in the ISP) or loses its link; how soon an idle line's pool moves after it
// fails silently, with the passive signal and by the probes alone; the time
// until the uplink is back in service after it recovers; what the probes
// cost. Without the dispatcher a blackholed line is never left, so there is
// no baseline: each figure stands beside its floor (the least time the
// settings allow: the stall, or the lost probes in a row needed × interval)
// and the health issue's bound.

import { corroboratedRun } from '../core/health.js';
import { blackhole, cut } from '../lab/faults.js';
import { HEALTH_DEFAULTS } from '../schema/config.js';
import { waitFor } from '../lab/harness.js';
import { arrivals, Lab, longestGap, type PoolsJson } from '../lab/lab.js';
import type { LabClient, LabUplink } from '../lab/topology.js';
import type { BenchContext } from './context.js';
import { figure, type Figure, type ScenarioResult } from './report.js';

const RATE = 100;
const BOUND_MS = 2000;
/** Issue 17's bounds with the default settings and two targets per line. */
const BUSY_MS = 500;
const IDLE_MS = 1000;
const PROBE_KBPS = 20;
/** Two targets per line: its ISP's core router and an internet host. */
const TARGETS = { isp1: '[198.51.100.2, 203.0.113.100]', isp2: '[198.51.100.6, 203.0.113.100]', isp3: '[198.51.100.10, 203.0.113.100]' };
const DAMPING_OFF = 'health: { damping: { suppress: 100, reuse: 1 } }';

async function untilState(lab: Lab, uplink: string, state: string, since: number): Promise<number> {
  for (;;) {
    if ((await lab.stateOf(uplink)) === state) return performance.now() - since;
    if (performance.now() - since > 30_000) throw new Error(`${uplink} not ${state} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function failover(ctx: BenchContext): Promise<ScenarioResult> {
  const lab = await Lab.create({ clients: 2, tag: 'b', config: { targets: TARGETS, extra: DAMPING_OFF } });
  try {
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    const pools = await waitFor('the clients to be assigned', 10_000, async () => {
      const now = await lab.cliJson<PoolsJson>(['pools']);
      return now.clients === lab.topo.clients.length ? now : null;
    });
    const home = pools.uplinks.find((u) => u.clients.length > 0);
    const idle = pools.uplinks.find((u) => u.clients.length === 0);
    if (!idle) throw new Error('no idle uplink: every pool has a client');
    const client = lab.topo.clients.find((c) => c.ip === home?.clients[0]) as LabClient;
    const uplink = lab.uplink(home?.name as string);
    const health = (await lab.status()).uplinks.find((u) => u.name === uplink.name)?.health;
    const stallMs = health?.passive?.stallMs ?? 0;
    const figures: Figure[] = [];
    const faults: [string, (u: LabUplink, on: boolean) => Promise<void>, number][] = [
      ['silent blackhole (busy line)', (u, on) => blackhole(lab.runner, u, on), BUSY_MS],
      ['link down', (u, on) => cut(lab.runner, u, on), BOUND_MS],
    ];
    for (const [name, fault, bound] of faults) {
      const tag = name.replace(/\W/g, '');
      const sending = lab.stream(client, tag, RATE, 4);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      await fault(uplink, true);
      await sending;
      await new Promise((resolve) => setTimeout(resolve, 200));
      const gap = longestGap(arrivals(lab, tag));
      const recovered = performance.now();
      await fault(uplink, false);
      const back = await untilState(lab, uplink.name, 'up', recovered);
      ctx.log(`${name}: gap ${gap.ms.toFixed(0)} ms (${gap.before} → ${gap.after}); back in service ${back.toFixed(0)} ms after recovery`);
      const silent = name.startsWith('silent');
      const floor = silent ? { baseline: stallMs, baselineNote: `floor: the passive stall (${stallMs} ms)` } : { baseline: null, baselineNote: 'no failover without the dispatcher (unbounded gap)' };
      figures.push(figure({ name: `${name}: failover gap`, unit: 'ms', value: gap.ms, ...floor, target: { text: `≤ ${bound} ms`, max: bound } }));
      figures.push(figure({ name: `${name}: failback`, unit: 'ms', value: back, baseline: null, baselineNote: 'never back without the dispatcher' }));
    }
    // An idle line (no client; only its probes go out): from the blackhole to its pool moved, with the passive signal, then by the probes alone.
    const idleUplink = lab.uplink(idle.name);
    const idleGap = async (): Promise<number> => {
      const start = Date.now();
      await blackhole(lab.runner, idleUplink, true);
      const ms = (await lab.poolMovedAt(idle.name, start)) - start;
      await blackhole(lab.runner, idleUplink, false);
      await untilState(lab, idle.name, 'up', performance.now());
      return ms;
    };
    const passiveIdle = await idleGap();
    figures.push(
      figure({ name: 'silent blackhole (idle line): pool moved', unit: 'ms', value: passiveIdle, baseline: stallMs, baselineNote: `floor: the passive stall (${stallMs} ms)`, target: { text: `≤ ${IDLE_MS} ms`, max: IDLE_MS } }),
    );
    const settings = health?.detectionMs ?? 0;
    await lab.rewriteConfig({ targets: TARGETS, extra: 'health: { damping: { suppress: 100, reuse: 1 }, passive: { stall: 0 } }' });
    await lab.cli(['reload']);
    await waitFor('the passive signal off', 5000, async () => ((await lab.status()).uplinks.every((u) => u.health?.passive === null) ? true : null));
    const probesIdle = await idleGap();
    const corroboratedFloor = corroboratedRun(HEALTH_DEFAULTS) * HEALTH_DEFAULTS.intervalMs;
    figures.push(
      figure({
        name: 'silent blackhole (idle line), passive off: pool moved',
        unit: 'ms',
        value: probesIdle,
        baseline: corroboratedFloor,
        baselineNote: `floor: ${corroboratedRun(HEALTH_DEFAULTS)} lost probes in a row on each of two targets × ${HEALTH_DEFAULTS.intervalMs} ms (${corroboratedFloor} ms); worst case by the settings ${settings} ms`,
      }),
    );
    ctx.log(`idle line ${idle.name}: pool moved ${passiveIdle} ms after a silent blackhole (passive signal), ${probesIdle} ms by the probes alone`);
    const kbps = health?.probeKbps.out ?? 0;
    figures.push(
      figure({
        name: 'probe traffic per line (two ICMP targets, each way)',
        unit: 'kbit/s',
        value: kbps,
        baseline: null,
        baselineNote: 'computed from the bytes per probe (core/probe-cost.ts)',
        target: { text: `≤ ${PROBE_KBPS} kbit/s`, max: PROBE_KBPS },
      }),
    );
    return {
      id: 'failover',
      title: 'Failover and failback: gap in a client stream of 100 datagrams per second, and an idle line',
      baseline: 'none measurable: without the dispatcher a silently dead line is never left; each figure beside the floor its settings allow and the health bounds',
      figures,
      notes: [
        'Default health settings with two ICMP targets per line (its ISP core router and an internet host): probes every 100 ms, 500 ms timeout; passive stall 300 ms, then a burst of 5 probes per target; without it, two silent targets corroborate after 4 lost probes each (0.9 s worst case).',
        'Failback: from the fault being removed until `dispatcher status` reports the uplink up (polled every 20 ms); new connections use it from then on, live ones stay where they are.',
        'Idle line: from just before the blackhole command until the daemon logs that its pool moved.',
      ],
    };
  } finally {
    await lab.destroy();
  }
}

// Scenario 4: the gap in a client's packet stream (100 datagrams a second, as
// the internet host receives them) when its uplink fails silently (blackhole
// in the ISP) or loses its link, and the time until the uplink is back in
// service after it recovers. Without the dispatcher a blackholed line is never
// left, so there is no baseline to measure; the figures are held against the
// health issue's bound instead.

import { blackhole, cut } from '../lab/faults.js';
import { waitFor } from '../lab/harness.js';
import { arrivals, Lab, longestGap, type PoolsJson } from '../lab/lab.js';
import type { LabClient, LabUplink } from '../lab/topology.js';
import type { BenchContext } from './context.js';
import { figure, type Figure, type ScenarioResult } from './report.js';

const RATE = 100;
const BOUND_MS = 2000;

async function untilState(lab: Lab, uplink: string, state: string, since: number): Promise<number> {
  for (;;) {
    if ((await lab.stateOf(uplink)) === state) return performance.now() - since;
    if (performance.now() - since > 30_000) throw new Error(`${uplink} not ${state} within 30 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export async function failover(ctx: BenchContext): Promise<ScenarioResult> {
  const lab = await Lab.create({ clients: 4, tag: 'b', config: { extra: 'health: { damping: { suppress: 100, reuse: 1 } }' } });
  try {
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    const pools = await waitFor('the clients to be assigned', 10_000, async () => {
      const now = await lab.cliJson<PoolsJson>(['pools']);
      return now.clients === lab.topo.clients.length ? now : null;
    });
    const home = pools.uplinks.find((u) => u.clients.length > 0);
    const client = lab.topo.clients.find((c) => c.ip === home?.clients[0]) as LabClient;
    const uplink = lab.uplink(home?.name as string);
    const figures: Figure[] = [];
    const faults: [string, (u: LabUplink, on: boolean) => Promise<void>][] = [
      ['silent blackhole', (u, on) => blackhole(lab.runner, u, on)],
      ['link down', (u, on) => cut(lab.runner, u, on)],
    ];
    for (const [name, fault] of faults) {
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
      const note = 'no failover without the dispatcher (unbounded gap)';
      figures.push(figure({ name: `${name}: failover gap`, unit: 'ms', value: gap.ms, baseline: null, baselineNote: note, target: { text: `≤ ${BOUND_MS} ms`, max: BOUND_MS } }));
      figures.push(figure({ name: `${name}: failback`, unit: 'ms', value: back, baseline: null, baselineNote: 'never back without the dispatcher' }));
    }
    return {
      id: 'failover',
      title: 'Failover and failback: gap in a client stream of 100 datagrams per second',
      baseline: 'none measurable: without the dispatcher a silently dead line is never left; held against the 2 s bound',
      figures,
      notes: [
        'Default health settings: probes every 100 ms, 500 ms timeout, down after 8 misses (worst-case detection 1.3 s), up after 10 answers.',
        'Failback: from the fault being removed until `dispatcher status` reports the uplink up (polled every 20 ms); new connections use it from then on, live ones stay where they are.',
      ],
    };
  } finally {
    await lab.destroy();
  }
}

// Scenario 3: a new client's first neighbour entry until its traffic is
// marked (its address is in the kernel's client set), one client at a time,
// against the original design's 30-second poll (its wait is computed: half a
// period on average, plus one `iptables -A` as measured in this run).

import { Lab } from '../lab/lab.js';
import { benchAddress, benchMac } from './clients.js';
import type { BenchContext } from './context.js';
import { figure, type ScenarioResult } from './report.js';
import { percentile } from './stats.js';

const POLL_PERIOD_MS = 30_000;

async function pickupOne(lab: Lab, index: number): Promise<number> {
  const ip = benchAddress(index);
  const mac = benchMac(index);
  const started = performance.now();
  // A reachable (not permanent) entry, as the kernel makes when a client first answers ARP.
  await lab.runIn(lab.topo.gw, ['ip', 'neigh', 'replace', ip, 'lladdr', mac, 'dev', lab.topo.lanInterface, 'nud', 'reachable']);
  for (;;) {
    if (await lab.inClientSet(ip)) return performance.now() - started;
    if (performance.now() - started > 10_000) throw new Error(`${ip} not classified within 10 s`);
  }
}

export async function pickup(ctx: BenchContext): Promise<ScenarioResult> {
  const lab = await Lab.create({ clients: 1, tag: 'b', config: { schedule: '0 0 * * * *' } });
  try {
    await lab.start();
    const samples: number[] = [];
    for (let i = 0; i < ctx.sizes.pickupClients; i++) {
      samples.push(await pickupOne(lab, i));
      // Clients arrive apart, not in a burst.
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    const perClient = ctx.baselinePoints ? ctx.baselinePoints[0][1] / ctx.baselinePoints[0][0] : 0;
    const p50 = percentile(samples, 50);
    const p95 = percentile(samples, 95);
    ctx.log(`pickup over ${samples.length} clients: p50 ${p50.toFixed(0)} ms, p95 ${p95.toFixed(0)} ms, max ${Math.max(...samples).toFixed(0)} ms`);
    return {
      id: 'pickup',
      title: `New-client pickup: first neighbour entry until marked (${samples.length} clients)`,
      baseline: `the original design: a poll every ${POLL_PERIOD_MS / 1000} s (wait computed), then one iptables process per client (measured in this run)`,
      figures: [
        figure({ name: 'p50', unit: 'ms', value: p50, baseline: POLL_PERIOD_MS * 0.5 + perClient, baselineNote: 'computed wait + measured apply' }),
        figure({ name: 'p95', unit: 'ms', value: p95, baseline: POLL_PERIOD_MS * 0.95 + perClient, baselineNote: 'computed wait + measured apply', target: { text: 'p95 ≤ 200 ms', max: 200 } }),
        figure({ name: 'max', unit: 'ms', value: Math.max(...samples), baseline: POLL_PERIOD_MS + perClient, baselineNote: 'computed wait + measured apply' }),
      ],
      notes: [
        "Clock: from `ip neigh replace … nud reachable` (run from the root namespace into the gateway's, so its own start-up of a few ms is included) until `ipset test` finds the address, polled back to back (each poll is one process, about 3–5 ms).",
      ],
    };
  } finally {
    await lab.destroy();
  }
}

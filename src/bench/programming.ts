// Scenario 1: many clients appearing at once, until every one is classified
// in the kernel; against the original design's one `iptables -A` process per
// client, measured at two sizes and extrapolated (it takes minutes at 10k).

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab } from '../lab/lab.js';
import { addNeighbours, NAIVE_CHAIN, naiveRule, resetGateway, untilClassified } from './clients.js';
import type { BenchContext } from './context.js';
import { figure, type Figure, type ScenarioResult } from './report.js';
import { extrapolate } from './stats.js';

const TARGETS: Record<number, { text: string; max: number }> = {
  10_000: { text: '10k in ≤ 0.5 s', max: 500 },
  50_000: { text: '50k in ≤ 2 s', max: 2000 },
};

/** The original loop: one iptables process per client, run inside the gateway namespace by xargs (no shell). */
async function perClientLoop(lab: Lab, count: number): Promise<number> {
  const file = join(lab.files.dir, `naive-${count}.args`);
  const lines = Array.from({ length: count }, (_, i) => `-t mangle -A ${naiveRule(i)}`);
  await writeFile(file, `${lines.join('\n')}\n`);
  await lab.runIn(lab.topo.gw, ['iptables', '-t', 'mangle', '-N', NAIVE_CHAIN]);
  const started = performance.now();
  await lab.runIn(lab.topo.gw, ['xargs', '-a', file, '-L', '1', 'iptables', '-w']);
  const elapsed = performance.now() - started;
  await lab.runIn(lab.topo.gw, ['iptables', '-t', 'mangle', '-F', NAIVE_CHAIN]);
  await lab.runIn(lab.topo.gw, ['iptables', '-t', 'mangle', '-X', NAIVE_CHAIN]);
  return elapsed;
}

export async function programming(ctx: BenchContext): Promise<ScenarioResult> {
  const lab = await Lab.create({ clients: 1, tag: 'b', config: { schedule: '0 0 * * * *' } });
  try {
    const [small, large] = ctx.sizes.baselinePoints;
    const points = [
      [small, await perClientLoop(lab, small)],
      [large, await perClientLoop(lab, large)],
    ] as const;
    ctx.baselinePoints = points;
    ctx.log(`baseline: ${small} clients ${points[0][1].toFixed(0)} ms, ${large} clients ${points[1][1].toFixed(0)} ms (one iptables process each)`);
    const figures: Figure[] = [];
    for (const count of ctx.sizes.programming) {
      await lab.start();
      const started = performance.now();
      await addNeighbours(lab, count);
      const ms = await untilClassified(lab, count, started, 120_000);
      ctx.log(`${count} clients at once: classified in ${ms.toFixed(0)} ms`);
      const measured = count === small || count === large;
      const baseline = count === large ? points[1][1] : count === small ? points[0][1] : extrapolate(points, count);
      figures.push(
        figure({
          name: `${count.toLocaleString('en-US')} clients at once`,
          unit: 'ms',
          value: ms,
          baseline,
          baselineNote: measured ? 'measured' : `extrapolated from ${small} and ${large}`,
          ...(TARGETS[count] ? { target: TARGETS[count] } : {}),
        }),
      );
      await resetGateway(lab);
    }
    return {
      id: 'programming',
      title: 'Programming time: clients appearing at once until classified in the kernel',
      baseline: 'the original design, one `iptables -A` process per client (mark rule), run inside the gateway namespace',
      figures,
      notes: [
        'Clock: from the start of one `ip -batch` of permanent neighbour entries (the batch itself is included) until `ipset list -t` counts every client, asked once the daemon (asked over its socket every 10 ms) holds them all; the earlier of that count and the end of the daemon’s last run as it reports it.',
        `The baseline was measured at ${small} and ${large} clients; larger sizes are extrapolated with t = a·n + b·n² through those two points (each \`iptables -A\` rewrites the table, so it grows faster than linearly).`,
      ],
    };
  } finally {
    await lab.destroy();
  }
}

// Scenario 5: restarting the daemon with many clients programmed: the time
// until its first reconcile is done, the clients it moved (target 0) and the
// kernel lines it changed (target 0). The baseline is the original design,
// which re-adds one rule per client on every start (extrapolated from the
// loop measured by the programming scenario).

import { Lab, type PoolsJson } from '../lab/lab.js';
import { startWithClients } from './clients.js';
import type { BenchContext } from './context.js';
import { figure, type ScenarioResult } from './report.js';
import { extrapolate } from './stats.js';

/** Lines present in one snapshot and not the other, over every part. */
function changedLines(before: Record<string, string>, after: Record<string, string>): number {
  let changed = 0;
  for (const key of Object.keys(before)) {
    const a = new Set((before[key] ?? '').split('\n'));
    const b = new Set((after[key] ?? '').split('\n'));
    for (const line of a) if (!b.has(line)) changed++;
    for (const line of b) if (!a.has(line)) changed++;
  }
  return changed;
}

function assignmentOf(pools: PoolsJson): Map<string, string> {
  return new Map(pools.uplinks.flatMap((u) => u.clients.map((ip) => [ip, u.name] as const)));
}

export async function restart(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.sizes.restartClients;
  const lab = await Lab.create({ clients: 1, tag: 'b', config: { schedule: '0 0 * * * *' } });
  try {
    await startWithClients(lab, count, 60_000);
    // Let the last run persist and the probes settle.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const before = { pools: assignmentOf(await lab.cliJson<PoolsJson>(['pools'])), kernel: await lab.snapshot() };
    await lab.stop();
    const started = performance.now();
    await lab.start();
    const ms = performance.now() - started;
    const status = await lab.status();
    const after = { pools: assignmentOf(await lab.cliJson<PoolsJson>(['pools'])), kernel: await lab.snapshot() };
    const moved = [...before.pools].filter(([ip, uplink]) => after.pools.get(ip) !== uplink).length;
    const changed = changedLines(before.kernel, after.kernel);
    const loaded = Object.values(status.lastRun?.applied ?? {}).reduce((a, b) => a + b, 0);
    ctx.log(`restart with ${count} clients: reconciled in ${ms.toFixed(0)} ms; ${moved} moved, ${changed} kernel lines changed, ${loaded} payload lines loaded`);
    const baseline = ctx.baselinePoints ? extrapolate(ctx.baselinePoints, count) : null;
    const k = count.toLocaleString('en-US');
    return {
      id: 'restart',
      title: `Restart with ${k} clients`,
      baseline: 'the original design: every start re-adds one iptables rule per client (extrapolated from the loop measured in this run)',
      figures: [
        figure({ name: 'until reconciled', unit: 'ms', value: ms, baseline, baselineNote: 'extrapolated' }),
        figure({ name: 'clients moved', unit: '', value: moved, baseline: null, baselineNote: '—', target: { text: '0', max: 0 } }),
        figure({ name: 'kernel lines changed', unit: '', value: changed, baseline: null, baselineNote: '—', target: { text: '0', max: 0 } }),
        figure({ name: 'payload lines loaded', unit: '', value: loaded, baseline: count, baselineNote: 'one rule per client' }),
      ],
      notes: [
        'Clock: from `dispatcher start` being launched in the gateway namespace until it answers on its socket with its first reconcile done (that includes starting Node, one probe round of up to 1.3 s, reading the store and the kernel).',
        'Kernel lines: `iptables-save` (without comments), `ipset save`, `ip rule`, IPv4 routes of every table and the sysctls we touch, compared before the stop and after the start.',
      ],
    };
  } finally {
    await lab.destroy();
  }
}

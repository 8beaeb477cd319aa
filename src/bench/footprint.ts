// Scenario 6: the daemon's memory and CPU at idle, with no clients (the
// baseline, same run) and with many. CPU is counted for the daemon and,
// separately, with the commands it ran (ip, ipset, iptables-save) and its
// long-lived probe and monitor processes (ping, ip monitor).

import { readFile } from 'node:fs/promises';
import { Lab } from '../lab/lab.js';
import { resetGateway, startWithClients } from './clients.js';
import type { BenchContext } from './context.js';
import { figure, type ScenarioResult } from './report.js';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) / 1024;
}

/** utime + stime of a process in clock ticks, and cutime + cstime of its finished children (its commands); 0 once it is gone. */
async function cpuTicks(pid: number): Promise<{ own: number; finishedChildren: number }> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  return { own: (fields[11] ?? 0) + (fields[12] ?? 0), finishedChildren: (fields[13] ?? 0) + (fields[14] ?? 0) };
}

async function children(pid: number): Promise<number[]> {
  const text = await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8').catch(() => '');
  return text.split(' ').filter(Boolean).map(Number);
}

interface Idle {
  readonly rssMb: number;
  /** Percent of one core. */
  readonly daemonCpu: number;
  readonly withProbesCpu: number;
}

async function measureIdle(pid: number, windowS: number): Promise<Idle> {
  const kids = await children(pid);
  const before = { daemon: await cpuTicks(pid), kids: await Promise.all(kids.map(cpuTicks)) };
  const started = performance.now();
  await new Promise((resolve) => setTimeout(resolve, windowS * 1000));
  const seconds = (performance.now() - started) / 1000;
  const after = { daemon: await cpuTicks(pid), kids: await Promise.all(kids.map(cpuTicks)) };
  const share = (ticks: number): number => (ticks / TICKS_PER_SECOND / seconds) * 100;
  const daemon = share(after.daemon.own - before.daemon.own);
  const commands = share(after.daemon.finishedChildren - before.daemon.finishedChildren);
  const probes = share(after.kids.reduce((sum, t, i) => sum + Math.max(0, t.own - (before.kids[i]?.own ?? 0)), 0));
  return { rssMb: await rssMb(pid), daemonCpu: daemon, withProbesCpu: daemon + commands + probes };
}

export async function footprint(ctx: BenchContext): Promise<ScenarioResult> {
  const count = ctx.sizes.footprintClients;
  const window = ctx.sizes.footprintWindowS;
  const fullWindow = ctx.sizes.footprintFullWindowS;
  // The default scan schedule (every 30 s; routing, the neighbour table and netfilter read whole every 5 minutes): its cost is part of idling.
  const lab = await Lab.create({ clients: 1, tag: 'b' });
  try {
    const daemonPid = (): number => {
      const pid = lab.daemon?.process.pid;
      if (pid === undefined) throw new Error('the daemon has no pid');
      return pid;
    };
    await lab.start();
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const empty = await measureIdle(daemonPid(), window);
    await resetGateway(lab);
    await startWithClients(lab, count);
    // Let the burst's runs, store writes and garbage collection finish.
    await new Promise((resolve) => setTimeout(resolve, ctx.sizes.footprintSettleS * 1000));
    const runsBefore = (await lab.status()).runs;
    const full = await measureIdle(daemonPid(), fullWindow);
    const runs = (await lab.status()).runs - runsBefore;
    ctx.log(`${runs} reconcile run(s) in the window`);
    ctx.log(
      `idle, 0 clients: ${empty.rssMb.toFixed(0)} MB, ${empty.daemonCpu.toFixed(2)} % (${empty.withProbesCpu.toFixed(2)} % with probes); ${count} clients: ${full.rssMb.toFixed(0)} MB, ${full.daemonCpu.toFixed(2)} % (${full.withProbesCpu.toFixed(2)} % with probes)`,
    );
    const k = count.toLocaleString('en-US');
    return {
      id: 'footprint',
      title: `Daemon footprint at idle with ${k} clients`,
      baseline: 'the same daemon at idle with no clients, measured in this run',
      figures: [
        figure({ name: `RSS, ${k} clients`, unit: 'MB', value: full.rssMb, baseline: empty.rssMb, baselineNote: 'no clients', target: { text: '≤ 150 MB', max: 150 } }),
        figure({ name: `CPU, daemon, ${k} clients`, unit: '% core', value: full.daemonCpu, baseline: empty.daemonCpu, baselineNote: 'no clients', target: { text: '≤ 1 % of one core', max: 1 } }),
        figure({ name: 'CPU with its commands, probes, monitors', unit: '% core', value: full.withProbesCpu, baseline: empty.withProbesCpu, baselineNote: 'no clients' }),
      ],
      notes: [
        `RSS from /proc/PID/status; CPU from utime+stime in /proc over ${fullWindow} s of idle with the clients, ${ctx.sizes.footprintSettleS} s after the last was classified (${window} s without them), with the default scan schedule (every 30 s; routing, the neighbour table and netfilter are taken from their events and read whole every 5 minutes; ${runs} reconcile run(s) fell in the window) and the probes running (3 uplinks × 1 target × 10 probes a second).`,
        'The ratio is the no-client figure ÷ ours: below 1 means the clients cost something; the target is on the absolute figure.',
      ],
    };
  } finally {
    await lab.destroy();
  }
}

// The daemon's own process for the metrics (the standard process_* families
// of Prometheus' client libraries, and the event loop's delay): memory, CPU,
// open files from /proc/self, and how late the event loop ran timers since
// the previous scrape (a daemon that is late reacts late: probes, failover).

import { readdir, readFile } from 'node:fs/promises';
import { monitorEventLoopDelay, type IntervalHistogram, performance } from 'node:perf_hooks';
import type { ProcessStats } from '../core/metrics.js';

async function openFds(): Promise<number | null> {
  return readdir('/proc/self/fd').then(
    (fds) => fds.length,
    () => null,
  );
}

async function maxFds(): Promise<number | null> {
  const limits = await readFile('/proc/self/limits', 'utf8').catch(() => '');
  const soft = /^Max open files\s+([0-9]+)/m.exec(limits)?.[1];
  return soft === undefined ? null : Number(soft);
}

export class ProcessWatch {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: 20 });

  start(): void {
    this.delay.enable();
  }

  stop(): void {
    this.delay.disable();
  }

  async read(): Promise<ProcessStats> {
    const cpu = process.cpuUsage();
    const [fds, max] = await Promise.all([openFds(), maxFds()]);
    // Nanoseconds; reset so each scrape sees its own interval.
    const seconds = (ns: number): number => (Number.isFinite(ns) && this.delay.count > 0 ? ns / 1e9 : 0);
    const loopDelay = { p50: seconds(this.delay.percentile(50)), p99: seconds(this.delay.percentile(99)), max: seconds(this.delay.max) };
    this.delay.reset();
    return {
      residentBytes: process.memoryUsage.rss(),
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      openFds: fds,
      maxFds: max,
      startTimeSeconds: Math.round(performance.timeOrigin / 1000),
      loopDelay,
    };
  }
}

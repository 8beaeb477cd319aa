// The daemon's own process for the metrics (the standard process_* families
// of Prometheus' client libraries, and the event loop's delay): memory, CPU,
// open files from /proc/self, and how late the event loop ran timers since
// the previous scrape (a daemon that is late reacts late: probes, failover).
// The delay is read (and reset) by each scrape: with two Prometheus servers,
// each sees the part since the other's scrape.

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

/** How often the event-loop monitor ticks: a native timer, cheap; its period is taken off what it records. */
const RESOLUTION_MS = 20;

export class ProcessWatch {
  private readonly delay: IntervalHistogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS });

  start(): void {
    this.delay.reset();
    this.delay.enable();
  }

  stop(): void {
    this.delay.disable();
  }

  async read(): Promise<ProcessStats> {
    const cpu = process.cpuUsage();
    const [fds, max] = await Promise.all([openFds(), maxFds()]);
    // Nanoseconds between the monitor's own ticks: the resolution is not lateness. Reset so each scrape sees its own interval.
    const seconds = (ns: number): number => (Number.isFinite(ns) && this.delay.count > 0 ? Math.max(0, ns / 1e9 - RESOLUTION_MS / 1000) : 0);
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

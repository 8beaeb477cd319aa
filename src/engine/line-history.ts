// Samples every line for the web page's charts while the dashboard is on:
// every 5 s its verdict, RTT and loss (from the probes) and its throughput
// (the interface counters, ip -s link: one command for all lines), kept for
// an hour (core/history.ts). Each new sample set is handed to whoever listens
// (the open pages).

import { History, type LineSample, lineQuality } from '../core/history.js';
import { rates } from '../core/traffic.js';
import type { Traffic } from '../schema/control.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import type { Runner } from '../system/exec.js';
import type { Logger } from '../system/logger.js';
import { readUplinkCounters } from '../system/traffic.js';
import type { HealthMonitor } from './health.js';
import type { Reconciler } from './reconciler.js';

export const SAMPLE_MS = 5_000;
const HOUR_OF_SAMPLES = 3600_000 / SAMPLE_MS;

export interface LineHistoryDeps {
  readonly runner: Runner;
  readonly log: Logger;
  readonly clock: Clock;
  readonly health: HealthMonitor;
  readonly reconciler: Reconciler;
}

export class LineHistory {
  private readonly history = new History(HOUR_OF_SAMPLES);
  private previous: Traffic | null = null;
  private timer: TimerHandle | null = null;
  /** Bumped by every start and stop: a sample in flight from an older loop does not schedule the next one. */
  private generation = 0;
  private failing = false;
  private readonly listeners = new Set<(samples: Record<string, LineSample>) => void>();

  constructor(private readonly deps: LineHistoryDeps) {}

  start(): void {
    if (this.timer !== null) return;
    const generation = ++this.generation;
    const tick = (): void => {
      void this.sample().finally(() => {
        if (generation === this.generation) this.timer = this.deps.clock.after(SAMPLE_MS, tick);
      });
    };
    this.timer = this.deps.clock.after(0, tick);
  }

  stop(): void {
    this.generation += 1;
    this.deps.clock.clear(this.timer);
    this.timer = null;
    // Rates after a pause would average over all of it.
    this.previous = null;
  }

  all(): Record<string, readonly LineSample[]> {
    return this.history.all();
  }

  /** Calls `listener` with each new set of samples until the returned function is called. */
  subscribe(listener: (samples: Record<string, LineSample>) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async sample(): Promise<void> {
    const { runner, log, health, reconciler, clock } = this.deps;
    let counters: Traffic['uplinks'] = {};
    try {
      counters = await readUplinkCounters(runner, reconciler.currentConfig);
      if (this.failing) log.info('reading the line counters works again');
      this.failing = false;
    } catch (error) {
      // The chart shows a gap for the throughput; RTT and loss go on.
      if (!this.failing) log.warn('could not read the line counters for the dashboard', { error: (error as Error).message });
      this.failing = true;
    }
    const reading: Traffic = { at: clock.now(), pools: {}, uplinks: counters };
    const previous = this.previous;
    const speed = previous ? rates(previous, reading) : null;
    this.previous = reading;
    const probes = health.snapshot();
    const samples: Record<string, LineSample> = {};
    for (const uplink of reconciler.uplinks) {
      // A rate needs both readings: a line added by a reload, or after a failed read, starts with a gap.
      const counted = speed !== null && counters[uplink.name] != null && previous?.uplinks[uplink.name] != null;
      samples[uplink.name] = {
        t: reading.at,
        state: uplink.state,
        ...lineQuality(probes.get(uplink.name)),
        rx: counted ? (speed.uplinks[uplink.name]?.rx ?? null) : null,
        tx: counted ? (speed.uplinks[uplink.name]?.tx ?? null) : null,
      };
    }
    this.history.add(new Map(Object.entries(samples)));
    for (const listener of this.listeners) listener(samples);
  }
}

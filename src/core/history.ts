// Each line's recent past, for the charts of the web page: RTT, loss and
// throughput sampled at a fixed step and kept in a bounded ring per line
// (an hour at 5 s is 720 samples a line; 16 lines about 1 MB as JSON). Pure: the
// engine reads the probes and the counters and adds the samples.

import type { UplinkHealthSnapshot } from '../schema/control.js';

export interface LineSample {
  /** Milliseconds since the epoch. */
  readonly t: number;
  readonly state: 'up' | 'down' | 'unknown';
  /** Average RTT over the targets that answer, ms; null when none does. */
  readonly rttMs: number | null;
  /** The worst target's recent loss, percent. */
  readonly lossPercent: number;
  /** Bytes per second received and sent on the line's interface since the previous sample; null for the first. */
  readonly rx: number | null;
  readonly tx: number | null;
}

/** A line's probes in two figures: the average RTT of the targets that answer, and the worst target's loss. */
export function lineQuality(health: UplinkHealthSnapshot | null | undefined): { rttMs: number | null; lossPercent: number } {
  const targets = health?.targets ?? [];
  const live = targets.filter((t) => t.avgRttMs !== null);
  const rttMs = live.length > 0 ? live.reduce((sum, t) => sum + (t.avgRttMs as number), 0) / live.length : null;
  return { rttMs, lossPercent: Math.max(0, ...targets.map((t) => t.lossPercent)) };
}

export class History {
  private readonly lines = new Map<string, LineSample[]>();

  constructor(private readonly capacity: number) {}

  /** One sample per named line; lines not named any more (removed by a reload) are forgotten. */
  add(samples: ReadonlyMap<string, LineSample>): void {
    for (const name of this.lines.keys()) if (!samples.has(name)) this.lines.delete(name);
    for (const [name, sample] of samples) {
      const ring = this.lines.get(name) ?? [];
      ring.push(sample);
      if (ring.length > this.capacity) ring.splice(0, ring.length - this.capacity);
      this.lines.set(name, ring);
    }
  }

  /** Every line's samples, oldest first. */
  all(): Record<string, readonly LineSample[]> {
    return Object.fromEntries(this.lines);
  }
}

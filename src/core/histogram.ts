// Prometheus histograms (pure): observations counted into fixed buckets, so
// a dashboard can draw percentiles and an alert can ask "how many runs took
// over a second". Cumulative as the exposition format wants them, ending
// with +Inf (the count).

export interface HistogramSnapshot {
  /** Each bucket's upper bound (seconds) and the observations at or below it, cumulative; the last bound is +Inf. */
  readonly buckets: readonly (readonly [number, number])[];
  readonly sum: number;
  readonly count: number;
}

/** Probe round trips: from a LAN-like 0.5 ms to a satellite line's 2.5 s. */
export const RTT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5] as const;
/** Reconcile runs: a few ms for a new client, seconds for 50,000 at once. */
export const RUN_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] as const;

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    if (!Number.isFinite(value)) return;
    this.sum += value;
    this.count += 1;
    const at = this.bounds.findIndex((bound) => value <= bound);
    if (at >= 0) this.counts[at] = (this.counts[at] as number) + 1;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    const buckets = this.bounds.map((bound, i): [number, number] => [bound, (running += this.counts[i] as number)]);
    return { buckets: [...buckets, [Number.POSITIVE_INFINITY, this.count]], sum: this.sum, count: this.count };
  }
}

// What each pool carried over the last minute, for `balance.assign: traffic`
// and `dispatcher rebalance`: the pool counting rules read every few seconds
// (one iptables-save -c of mangle, or one nft counter listing: the same cost
// at 10 clients or 50,000), the readings of the last minute kept. Reading
// only runs while something needs it (assign: traffic, balance.rebalance's
// schedule); a rebalance without it measures a few seconds on the spot.

import { poolRates, type PoolBytes, type PoolSample } from '../core/traffic.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import type { Logger } from '../system/logger.js';

/** How often the counters are read, and how far back the rates look. */
export const SAMPLE_MS = 5_000;
export const WINDOW_MS = 60_000;

export class PoolTraffic {
  private samples: PoolSample[] = [];
  private timer: TimerHandle | null = null;
  private reading = false;

  constructor(
    private readonly read: () => Promise<Record<string, PoolBytes>>,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.sample();
    this.timer = this.clock.every(SAMPLE_MS, () => void this.sample());
  }

  /** Stops reading and forgets the readings: a later rate is measured afresh, never an old one. */
  stop(): void {
    if (this.timer) this.clock.clear(this.timer);
    this.timer = null;
    this.samples = [];
  }

  /** Bytes per second per pool over the kept readings; null before two readings. */
  rates(): Map<string, number> | null {
    return poolRates(this.samples);
  }

  /** The kept rates, or (none kept) a measurement over `ms` now. */
  async recent(ms = SAMPLE_MS): Promise<Map<string, number>> {
    const kept = this.rates();
    if (kept) return kept;
    const first = { at: this.clock.now(), pools: await this.read() };
    await new Promise<void>((resolve) => this.clock.after(ms, resolve));
    return poolRates([first, { at: this.clock.now(), pools: await this.read() }]) ?? new Map();
  }

  /** One reading; a slow one is not overlapped by the next. */
  private async sample(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const at = this.clock.now();
      const pools = await this.read();
      this.samples = [...this.samples.filter((s) => s.at >= at - WINDOW_MS), { at, pools }];
    } catch (error) {
      this.log.warn('pool counters unreadable', { error: (error as Error).message });
    } finally {
      this.reading = false;
    }
  }
}

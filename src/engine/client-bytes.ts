// The clients table's bytes: each client address's count, read from the
// kernel's own per-entry counters (the client set or map the backend looks
// every LAN packet up in, both ways: no rule per client, no extra lookup).
// Read only when a page asks, at most once per FRESH_MS however many pages
// ask, one read at a time: at 50,000 clients a read lists the whole set.

import type { Clock } from '../system/clock.js';
import type { Logger } from '../system/logger.js';

/** How long one reading answers the pages: a table refreshed by typing or paging reads once. */
export const FRESH_MS = 5_000;

export class ClientBytes {
  /** The last answer (null: the read failed), kept FRESH_MS: a failing read is not retried on every keystroke either. */
  private last: { at: number; bytes: ReadonlyMap<string, number> | null } | null = null;
  private reading: Promise<ReadonlyMap<string, number> | null> | null = null;

  constructor(
    private readonly read: () => Promise<ReadonlyMap<string, number>>,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** The counts, at most FRESH_MS old; null when the kernel's counters could not be read (logged once, until they can again). */
  get(): Promise<ReadonlyMap<string, number> | null> {
    if (this.last && this.clock.now() - this.last.at < FRESH_MS) return Promise.resolve(this.last.bytes);
    // Whether the reading before this one failed: each change is logged once.
    const failing = (): boolean => this.last !== null && this.last.bytes === null;
    this.reading ??= this.read()
      .then(
        (bytes) => {
          if (failing()) this.log.info('reading the clients’ byte counters works again');
          this.last = { at: this.clock.now(), bytes };
          return bytes;
        },
        (error: unknown) => {
          if (!failing()) this.log.warn('could not read the clients’ byte counters for the dashboard', { error: (error as Error).message });
          this.last = { at: this.clock.now(), bytes: null };
          return null;
        },
      )
      .finally(() => {
        this.reading = null;
      });
    return this.reading;
  }
}

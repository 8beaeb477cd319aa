// Something that keeps undoing our objects (a second network manager, a
// firewall script run by cron every few seconds) must not turn self-repair
// into a busy loop. Pure, on an injected time: more than LIMIT repairs within
// WINDOW_MS make it a fight (an operator trying reloads by hand stays below);
// while it lasts, repairs are spaced by a delay that doubles (BACKOFF_MIN_MS
// up to BACKOFF_MAX_MS); once no repair was needed for CALM_MS, the fight is
// over and repairs are immediate again.

export const WINDOW_MS = 60_000;
export const LIMIT = 10;
export const BACKOFF_MIN_MS = 2_000;
export const BACKOFF_MAX_MS = 60_000;
/** Longer than the longest delay: a fight held back to one repair per BACKOFF_MAX_MS is still a fight. */
export const CALM_MS = 2 * BACKOFF_MAX_MS;

export interface Fight {
  readonly since: number;
  /** Repairs within the window when it started, and since. */
  readonly repairs: number;
  readonly by: readonly string[];
  /** Earliest time of the next repair. */
  readonly nextAt: number;
}

export class RepairLoop {
  private recent: number[] = [];
  private fight: { since: number; repairs: number; by: Set<string>; delay: number; nextAt: number } | null = null;

  /** A repair was made at `now`; `by` names the programs seen changing ours (where known). */
  repaired(now: number, by: readonly string[]): void {
    this.endIfCalm(now);
    this.recent = [...this.recent.filter((at) => now - at < WINDOW_MS), now];
    if (this.fight) {
      this.fight.repairs += 1;
      for (const name of by) this.fight.by.add(name);
      this.fight.delay = Math.min(BACKOFF_MAX_MS, this.fight.delay * 2);
      this.fight.nextAt = now + this.fight.delay;
    } else if (this.recent.length > LIMIT) {
      this.fight = { since: now, repairs: this.recent.length, by: new Set(by), delay: BACKOFF_MIN_MS, nextAt: now + BACKOFF_MIN_MS };
    }
  }

  /** When a repair noticed at `now` may run: now, unless a fight holds it back. */
  allowedAt(now: number): number {
    this.endIfCalm(now);
    return this.fight ? Math.max(now, this.fight.nextAt) : now;
  }

  /** The fight going on at `now`, or null. */
  fighting(now: number): Fight | null {
    this.endIfCalm(now);
    const f = this.fight;
    return f ? { since: f.since, repairs: f.repairs, by: [...f.by].sort(), nextAt: f.nextAt } : null;
  }

  private endIfCalm(now: number): void {
    const last = this.recent.at(-1);
    if (this.fight && last !== undefined && now - last >= CALM_MS) {
      this.fight = null;
      this.recent = [];
    }
  }
}

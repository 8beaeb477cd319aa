// One of a pair: whether its conntrackd answers. conntrackd is what keeps
// the connections alive across a takeover (the backup holds the master's in
// its external cache until `conntrackd -c`); one that died says nothing of
// itself, and the next takeover resets every connection. So the daemon asks
// it (`conntrackd -C CONF -s`, one short process) every CHECK_MS while `ha`
// is configured, whether or not anyone looks: its stopping is logged and on
// the timeline before a takeover needs it. Status and the metrics read the
// last answer; they start no process of their own.

import type { Note } from '../core/timeline.js';
import { type ConntrackdStats, conntrackdComplaint, parseConntrackdStats } from '../parse/conntrackd-stats.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import { whatItSaid } from '../system/exec.js';
import type { Logger } from '../system/logger.js';

/** How often conntrackd is asked: a dead one is known within this, at one process per period. */
export const CHECK_MS = 10_000;

export interface ConntrackdHealthView {
  /** conntrackd answered. */
  readonly ok: boolean;
  /** Why it did not: what it said (not running, no socket), or that `ha render` never ran. */
  readonly problem: string | null;
  /** When it was asked (epoch ms). */
  readonly checkedAt: number;
  /** What it said of its caches and the sync link; null when it did not answer. */
  readonly stats: ConntrackdStats | null;
}

export interface ConntrackdHealthDeps {
  /** Asks conntrackd for its statistics (system/conntrackd.ts conntrackdStats): its text, or throws what it said. */
  readonly ask: () => Promise<string>;
  readonly clock: Clock;
  readonly log: Logger;
  readonly note: Note;
}

export class ConntrackdHealth {
  private last: ConntrackdHealthView | null = null;
  private checking: Promise<ConntrackdHealthView> | null = null;
  private timer: TimerHandle | null = null;

  constructor(private readonly deps: ConntrackdHealthDeps) {}

  /** Asks now, then every CHECK_MS. */
  start(): void {
    if (this.timer !== null) return;
    void this.check();
    this.timer = this.deps.clock.every(CHECK_MS, () => void this.check());
  }

  stop(): void {
    this.deps.clock.clear(this.timer);
    this.timer = null;
  }

  /** The last answer; null before the first. */
  latest(): ConntrackdHealthView | null {
    return this.last;
  }

  /** Asks conntrackd once; a check under way is joined, never doubled (a slow conntrackd gets no queue of processes). */
  check(): Promise<ConntrackdHealthView> {
    this.checking ??= this.deps
      .ask()
      .then(
        (text): ConntrackdHealthView => ({ ok: true, problem: null, checkedAt: this.deps.clock.now(), stats: parseConntrackdStats(text) }),
        (error: unknown): ConntrackdHealthView => ({ ok: false, problem: conntrackdComplaint(whatItSaid(error)) || 'no answer', checkedAt: this.deps.clock.now(), stats: null }),
      )
      .then((view) => {
        this.changed(this.last, view);
        this.last = view;
        return view;
      })
      .finally(() => {
        this.checking = null;
      });
    return this.checking;
  }

  /** Each change is told once: a conntrackd that stops answering, or answers again (and one that does not answer from the start). */
  private changed(before: ConntrackdHealthView | null, now: ConntrackdHealthView): void {
    const { log, note } = this.deps;
    if (!now.ok && (before === null || before.ok)) {
      log.error('conntrackd does not answer: connections are not synced, and a takeover would drop them', { problem: now.problem });
      note('ha', `conntrackd does not answer (${now.problem}): connections are not synced`);
    } else if (now.ok && before !== null && !before.ok) {
      log.info('conntrackd answers again');
      note('ha', 'conntrackd answers again');
    }
  }
}

// The trigger queue in front of the reconcile loop (kube-proxy's
// bounded-frequency runner, DESIGN.md §1): every trigger — a neighbour event,
// a probe verdict, a ppp hook, an operator's request, the schedule — adds its
// reason to the one pending request; one run at a time takes everything
// pending, so a burst of events becomes one run. Runs start at least
// `minIntervalMs` apart, so something firing events in a loop costs a bounded
// number of runs, never a busy loop. A failed run asks again after a backoff
// that doubles up to a ceiling and resets after a success.
//
// The queue knows nothing about what a run does: it is handed the run
// function and gives each caller the report of the run that carried its request.

import type { Clock } from '../system/clock.js';
import type { Neighbour } from '../model/kernel.js';
import type { ClientEdits } from '../model/state.js';

/** An operator's or the daemon's change to the assignments, applied at the start of the run that carries it. */
export type Edit = (assignments: ClientEdits, now: number) => void;

/** What a trigger asks of the next run. */
export interface Trigger {
  /** Read the whole neighbour table (a full resync), not just the events given. */
  readonly scan?: boolean;
  readonly neighbours?: readonly Neighbour[];
  readonly edit?: Edit;
}

/** Everything pending, as one run takes it. */
export interface Batch {
  readonly reasons: readonly string[];
  readonly scan: boolean;
  readonly neighbours: readonly Neighbour[];
  readonly edits: readonly Edit[];
}

interface Pending<R> {
  reasons: string[];
  scan: boolean;
  neighbours: Neighbour[];
  edits: Edit[];
  waiters: ((report: R) => void)[];
}

export interface TriggerQueueOptions<R> {
  readonly clock: Clock;
  /** One run; must not throw (a failure is a report with ok: false). */
  readonly run: (batch: Batch) => Promise<R>;
  readonly succeeded: (report: R) => boolean;
  /** Told after every run, before the next one starts. */
  readonly after?: (report: R) => void;
  readonly minIntervalMs?: number;
  readonly retryMinMs?: number;
  readonly retryMaxMs?: number;
}

/**
 * Runs at most this often. Short: a failover after a probe verdict or a ppp
 * ip-down must not wait; long enough that a storm of events is a few runs a second.
 */
export const MIN_RUN_INTERVAL_MS = 50;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;

export class TriggerQueue<R> {
  private pending: Pending<R> | null = null;
  private running = false;
  /** Holds not yet released: they nest (the start-up hold, a prepared failover's). */
  private held = 0;
  private stopped = false;
  private lastStart = -Infinity;
  private wakeTimer: unknown = null;
  private retryTimer: unknown = null;
  private retryDelay: number;
  /** Told when the run under way ends (settled()). */
  private settledWaiters: (() => void)[] = [];

  constructor(private readonly options: TriggerQueueOptions<R>) {
    this.retryDelay = options.retryMinMs ?? RETRY_MIN_MS;
  }

  /** Asks for a run; resolves with the report of the run that included this request. */
  request(reason: string, trigger: Trigger = {}): Promise<R> {
    const pending = (this.pending ??= { reasons: [], scan: false, neighbours: [], edits: [], waiters: [] });
    if (!pending.reasons.includes(reason)) pending.reasons.push(reason);
    pending.scan ||= trigger.scan ?? false;
    if (trigger.neighbours) pending.neighbours.push(...trigger.neighbours);
    if (trigger.edit) pending.edits.push(trigger.edit);
    const done = new Promise<R>((resolve) => pending.waiters.push(resolve));
    // Not synchronously: triggers fired in the same tick join the same run.
    this.options.clock.defer(() => this.kick());
    return done;
  }

  /** Resolves once no run is under way (at once when none is). Hold first to keep the next one from starting. */
  settled(): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise((resolve) => this.settledWaiters.push(resolve));
  }

  /** A run is under way, or one is asked for. */
  get busy(): boolean {
    return this.running || this.pending !== null;
  }

  /** Requests queue (and coalesce) without running until release(); holds nest. */
  hold(): void {
    this.held += 1;
  }

  release(): void {
    this.held = Math.max(0, this.held - 1);
    this.kick();
  }

  /** No more runs or retries; a run in flight finishes. */
  stop(): void {
    this.stopped = true;
    this.options.clock.clear(this.retryTimer);
    this.options.clock.clear(this.wakeTimer);
  }

  private kick(): void {
    if (this.running || this.held > 0 || !this.pending || this.stopped) return;
    const wait = this.lastStart + (this.options.minIntervalMs ?? MIN_RUN_INTERVAL_MS) - this.options.clock.now();
    if (wait > 0) {
      if (this.wakeTimer === null) {
        this.wakeTimer = this.options.clock.after(wait, () => {
          this.wakeTimer = null;
          this.kick();
        });
      }
      return;
    }
    const { waiters, ...batch } = this.pending;
    this.pending = null;
    this.running = true;
    this.lastStart = this.options.clock.now();
    void this.options.run(batch).then((report) => {
      this.running = false;
      for (const settled of this.settledWaiters.splice(0)) settled();
      if (this.options.succeeded(report)) this.retryDelay = this.options.retryMinMs ?? RETRY_MIN_MS;
      else this.scheduleRetry();
      for (const waiter of waiters) waiter(report);
      this.options.after?.(report);
      this.kick();
    });
  }

  /** A failed run asks for a full resync after a backoff (1 s, 2 s, … 30 s). */
  private scheduleRetry(): void {
    if (this.retryTimer !== null || this.stopped) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.options.retryMaxMs ?? RETRY_MAX_MS);
    this.retryTimer = this.options.clock.after(delay, () => {
      this.retryTimer = null;
      void this.request('retry after failure', { scan: true });
    });
  }
}

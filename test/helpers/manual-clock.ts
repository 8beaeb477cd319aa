// A Clock (src/system/clock.ts) that moves only when the test says so:
// timers fire in time order as `advance` passes them; deferred calls run on
// `flush`. Lets the engine's timing be tested without sleeping.

import type { Clock, TimerHandle } from '../../src/system/clock.js';

interface Timer {
  readonly id: number;
  at: number;
  readonly every: number | null;
  readonly fn: () => void;
}

export class ManualClock implements Clock {
  private time = 1_000_000;
  private nextId = 1;
  private timers: Timer[] = [];
  private deferred: (() => void)[] = [];

  now(): number {
    return this.time;
  }

  after(ms: number, fn: () => void): TimerHandle {
    const timer = { id: this.nextId++, at: this.time + ms, every: null, fn };
    this.timers.push(timer);
    return timer.id;
  }

  every(ms: number, fn: () => void): TimerHandle {
    const timer = { id: this.nextId++, at: this.time + ms, every: ms, fn };
    this.timers.push(timer);
    return timer.id;
  }

  clear(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t.id !== handle);
  }

  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /** Runs deferred calls and lets promise continuations settle. */
  async flush(): Promise<void> {
    for (let round = 0; round < 20; round++) {
      const calls = this.deferred;
      this.deferred = [];
      for (const fn of calls) fn();
      await new Promise((resolve) => setImmediate(resolve));
      if (this.deferred.length === 0) return;
    }
  }

  /** Moves time forward by `ms`, firing every timer due on the way, in order. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await this.flush();
    while (this.fireNext(end)) await this.flush();
    this.time = end;
    await this.flush();
  }

  /**
   * The same as `advance`, synchronously: timers and deferred calls run as
   * they fall due, without letting promise continuations in between (for code
   * driven only by timers and callbacks, e.g. a probe method).
   */
  step(ms: number): void {
    const end = this.time + ms;
    do {
      const calls = this.deferred;
      this.deferred = [];
      for (const fn of calls) fn();
    } while (this.fireNext(end));
    this.time = end;
  }

  /** Fires the earliest timer due by `end` (time moves to it); false when none is. */
  private fireNext(end: number): boolean {
    const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0];
    if (!due) return false;
    this.time = due.at;
    if (due.every === null) this.clear(due.id);
    else due.at += due.every;
    due.fn();
    return true;
  }

  pendingTimers(): number {
    return this.timers.length;
  }
}

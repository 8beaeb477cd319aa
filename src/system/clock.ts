// Time as an effect: the loop's timers go through a Clock, so tests can run
// the engine's timing (coalescing, minimum interval, retry backoff) on a
// clock they drive, and nothing else in the engine calls setTimeout for them.
// Real timers are unref'd: a pending retry never keeps a stopped daemon alive.

export type TimerHandle = unknown;

export interface Clock {
  now(): number;
  /** Calls `fn` once after `ms`. */
  after(ms: number, fn: () => void): TimerHandle;
  /** Calls `fn` every `ms`. */
  every(ms: number, fn: () => void): TimerHandle;
  clear(handle: TimerHandle): void;
  /** Calls `fn` after the current event-loop turn (what happens in this tick goes in first). */
  defer(fn: () => void): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  after: (ms, fn) => setTimeout(fn, ms).unref(),
  every: (ms, fn) => setInterval(fn, ms).unref(),
  clear: (handle) => {
    if (handle !== null && handle !== undefined) clearTimeout(handle as NodeJS.Timeout);
  },
  defer: (fn) => void setImmediate(fn),
};

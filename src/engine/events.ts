// The timeline as readers ask for it: what came after the last event they
// saw, or, when nothing has yet, the next one as soon as it happens (a long
// wait, not polling: `dispatcher events --follow` asks again only after
// each answer). A reader of another daemon's timeline (its `started`
// differs: the daemon restarted and numbers from 1 again), or with a number
// beyond the newest, starts again from the oldest kept.

import type { Timeline } from '../core/timeline.js';
import type { ResultOf } from '../schema/control.js';
import type { Clock } from '../system/clock.js';

export interface EventsAsked {
  readonly after: number;
  readonly waitMs: number;
  /** The `started` of the timeline the reader's number is from. */
  readonly started?: string;
}

/** The number a reader's events start after: its own, unless it is from another daemon's timeline (then 0). */
export function startAfter(timeline: Timeline, after: number, started?: string): number {
  const sameTimeline = started === undefined || started === timeline.started;
  return sameTimeline && after <= timeline.last ? after : 0;
}

/** The clock's timers are unref'd: a stopping daemon does not wait for a reader's wait to end. */
export function eventsAfter(timeline: Timeline, clock: Clock, asked: EventsAsked): Promise<ResultOf<'events'>> {
  const from = startAfter(timeline, asked.after, asked.started);
  const answer = (): ResultOf<'events'> => ({ events: timeline.since(from), last: timeline.last, started: timeline.started });
  if (timeline.last > from || asked.waitMs <= 0) return Promise.resolve(answer());
  return new Promise((resolve) => {
    const done = (): void => {
      clock.clear(timer);
      unsubscribe();
      resolve(answer());
    };
    const timer = clock.after(asked.waitMs, done);
    const unsubscribe = timeline.subscribe(done);
  });
}

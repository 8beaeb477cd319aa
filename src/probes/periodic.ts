// What every socket-based method (tcp, http, dns) shares: it says how one
// probe asks its target, and gets both the periodic loop and the burst from
// here. The loop sends one probe per interval, each with its own deadline, so
// a slow or silent target never delays the next probe and timeouts never add
// up; a probe settles once: answered, lost (with why), or lost at its
// deadline; forget() voids those in flight.

import type { Clock, TimerHandle } from '../system/clock.js';
import type { BurstSpec, ProbeContext, ProbeEvent, ProbeMethod, ProbeRun, ProbeTargetBase, RunningProbe } from './method.js';

/** One probe's own verdict: answered after so long, or why it was not. */
export type Asked = { readonly ok: true; readonly rttMs: number } | { readonly ok: false; readonly why: string };

/** Makes the function that sends one probe of a run (it may keep state across probes, e.g. a query id). */
export type Asker<T extends ProbeTargetBase> = (run: ProbeRun<T>, context: ProbeContext) => () => Promise<Asked>;

/** A method from its name, the packets one probe sends, its key and how one probe asks. */
export function askingMethod<T extends ProbeTargetBase>(name: T['method'], packetsPerProbe: number, key: (run: ProbeRun<T>) => string, asker: Asker<T>): ProbeMethod<T> {
  return {
    name,
    packetsPerProbe,
    key,
    start: (run, context, onEvent) => periodic(run, context, onEvent, asker(run, context)),
    burst: (run, context, spec) => burst(context.clock, spec, asker(run, context)),
  };
}

function periodic<T extends ProbeTargetBase>(run: ProbeRun<T>, { clock }: ProbeContext, onEvent: (event: ProbeEvent) => void, ask: () => Promise<Asked>): RunningProbe {
  const { intervalMs, timeoutMs } = run.timing;
  /** Probes in flight, with the timer that declares each lost. */
  const inFlight = new Map<number, TimerHandle>();
  let seq = 0;
  let stopped = false;
  const settle = (id: number, event: ProbeEvent): void => {
    const timer = inFlight.get(id);
    if (timer === undefined || stopped) return;
    clock.clear(timer);
    inFlight.delete(id);
    onEvent(event);
  };
  const send = (): void => {
    const id = ++seq;
    inFlight.set(
      id,
      clock.after(timeoutMs, () => settle(id, { kind: 'lost', why: `no answer within ${timeoutMs} ms`, seq: id })),
    );
    ask().then(
      (asked) => settle(id, asked.ok ? { kind: 'answered', rttMs: asked.rttMs, seq: id } : { kind: 'lost', why: asked.why, seq: id }),
      (error: Error) => settle(id, { kind: 'lost', why: error.message, seq: id }),
    );
  };
  const forget = (): void => {
    for (const timer of inFlight.values()) clock.clear(timer);
    inFlight.clear();
  };
  send();
  const loop = clock.every(intervalMs, send);
  return {
    // Sockets are opened per probe: nothing here ends by itself.
    ended: new Promise<number | null>(() => {}),
    forget,
    stop: () => {
      stopped = true;
      clock.clear(loop);
      forget();
    },
  };
}

/** `count` asks `spacingMs` apart; true at the first answered before the deadline. */
function burst(clock: Clock, { count, spacingMs, deadlineMs }: BurstSpec, ask: () => Promise<Asked>): Promise<boolean> {
  return new Promise((resolve) => {
    const timers: TimerHandle[] = [];
    let settled = false;
    const settle = (answered: boolean): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clock.clear(timer);
      resolve(answered);
    };
    timers.push(clock.after(deadlineMs, () => settle(false)));
    for (let i = 0; i < count; i++) {
      const send = (): void => {
        if (settled) return;
        ask().then(
          (asked) => {
            if (asked.ok) settle(true);
          },
          () => {},
        );
      };
      if (i === 0) send();
      else timers.push(clock.after(i * spacingMs, send));
    }
  });
}

// The loop every socket-based method shares: one probe per interval, each
// with its own deadline, so a slow or silent target never delays the next
// probe and timeouts never add up. A probe settles once: answered, lost
// (with why), or lost at its deadline; forget() voids those in flight.

import type { TimerHandle } from '../system/clock.js';
import type { ProbeContext, ProbeEvent, ProbeRun, ProbeTargetBase, RunningProbe } from './method.js';

/** One probe's own verdict: answered after so long, or why it was not. */
export type Asked = { readonly ok: true; readonly rttMs: number } | { readonly ok: false; readonly why: string };

export function periodic<T extends ProbeTargetBase>(run: ProbeRun<T>, { clock }: ProbeContext, onEvent: (event: ProbeEvent) => void, ask: () => Promise<Asked>): RunningProbe {
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
      clock.after(timeoutMs, () => settle(id, { kind: 'lost', why: `no answer within ${timeoutMs} ms` })),
    );
    ask().then(
      (asked) => settle(id, asked.ok ? { kind: 'answered', rttMs: asked.rttMs } : { kind: 'lost', why: asked.why }),
      (error: Error) => settle(id, { kind: 'lost', why: error.message }),
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

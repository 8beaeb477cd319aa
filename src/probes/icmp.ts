// The icmp method: one long-lived iputils `ping` per target, bound to the
// uplink's interface (-I) and carrying its connection mark (-m), so the probe
// leaves through that uplink whatever the main table or the pools say. One
// process per target rather than a loop of short-lived pings: no start-up
// cost per probe and no timeouts that add up across targets.
//
// ping -O reports a probe unanswered one interval after sending it, not when
// its timeout passes, so this method keeps the deadlines: a probe is lost
// `timeout` after it was sent unless its reply came first, and at once when
// an error (unreachable, …) came back for it.
//
// ping's lines are read when the health monitor ticks (collect), not as they
// come: ten lines a second per target would each wake the daemon. -D stamps
// every line with the time ping printed it, so a deadline counts from then
// however late the line is read, and the output is read again before a
// deadline is judged: a reply waiting unread is never taken for a loss.

import { parsePingLine } from '../parse/ping.js';
import type { TimerHandle } from '../system/clock.js';
import type { BurstSpec, ProbeMethod, ProbeRun } from './method.js';

/** A plain address probed with ICMP echo. */
export interface IcmpTarget {
  readonly method: 'icmp';
  readonly id: string;
  readonly address: string;
}

/** ping's argv: -n no name lookups, -O report unanswered probes, -D stamp each line, -W in whole seconds (at least 1). */
export function pingArgv(run: ProbeRun<IcmpTarget>): string[] {
  const { target, timing } = run;
  return ['ping', '-n', '-O', '-D', '-i', String(timing.intervalMs / 1000), '-W', String(Math.max(1, Math.ceil(timing.timeoutMs / 1000))), ...through(run), target.address];
}

/** A burst's ping: -c probes -i apart (below 2 ms needs root, which the daemon is); it is stopped at the deadline. */
export function burstArgv(run: ProbeRun<IcmpTarget>, spec: BurstSpec): string[] {
  return ['ping', '-n', '-c', String(spec.count), '-i', String(spec.spacingMs / 1000), '-W', String(Math.max(1, Math.ceil(spec.deadlineMs / 1000))), ...through(run), run.target.address];
}

/** Bound to the uplink's interface, with its connection mark. */
function through(run: ProbeRun<IcmpTarget>): string[] {
  return ['-I', run.path.interface, '-m', String(run.path.mark)];
}

/** ping's icmp_seq wraps at 65536 (under two hours at 100 ms): this numbers probes on without wrapping, taking each to be the one nearest the newest seen. */
export function unwrapper(): (raw: number) => number {
  const WRAP = 65536;
  let newest: number | null = null;
  return (raw) => {
    if (newest === null) {
      newest = raw;
      return raw;
    }
    let seq = newest - (newest % WRAP) + raw;
    if (seq - newest > WRAP / 2) seq -= WRAP;
    else if (newest - seq > WRAP / 2) seq += WRAP;
    newest = Math.max(newest, seq);
    return seq;
  };
}

export const icmpMethod: ProbeMethod<IcmpTarget> = {
  name: 'icmp',
  packetsPerProbe: 1,

  // The timeout is in the key although -W rounds it: the deadlines kept here use it exactly.
  key: (run) => `${pingArgv(run).join(' ')} timeout=${run.timing.timeoutMs}`,

  start(run, { runner, clock }, onEvent) {
    const { intervalMs, timeoutMs } = run.timing;
    /** Probes reported unanswered, by icmp_seq, with the timer that declares them lost. */
    const outstanding = new Map<number, TimerHandle>();
    let stopped = false;
    const sequence = unwrapper();
    const forget = (): void => {
      for (const timer of outstanding.values()) clock.clear(timer);
      outstanding.clear();
    };
    const settle = (seq: number): void => {
      const timer = outstanding.get(seq);
      if (timer === undefined) return;
      clock.clear(timer);
      outstanding.delete(seq);
    };
    const ping = runner.spawn(pingArgv(run), {
      readWhenAsked: true,
      onLine: (line) => {
        const event = parsePingLine(line);
        if (!event || stopped) return;
        const seq = sequence(event.seq);
        if (event.kind === 'reply') {
          settle(event.seq);
          onEvent({ kind: 'answered', rttMs: event.rttMs, seq });
        } else if (event.kind === 'error') {
          settle(event.seq);
          onEvent({ kind: 'lost', seq });
        } else if (!outstanding.has(event.seq)) {
          // Printed one interval after it was sent: its deadline is sent + timeout, counted from when it was printed.
          const raw = event.seq;
          const late = event.atMs === undefined ? 0 : clock.now() - event.atMs;
          const left = timeoutMs - intervalMs - Math.min(Math.max(0, late), timeoutMs);
          outstanding.set(
            raw,
            clock.after(Math.max(0, left), () => {
              // A reply read now settles it first.
              ping.drain?.();
              if (!outstanding.delete(raw) || stopped) return;
              onEvent({ kind: 'lost', seq });
            }),
          );
        }
      },
    });
    return {
      ended: ping.ended,
      collect: () => ping.drain?.(),
      forget,
      stop: () => {
        stopped = true;
        forget();
        ping.stop('SIGKILL');
      },
    };
  },

  burst(run, { runner, clock }, spec) {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (answered: boolean): void => {
        if (settled) return;
        settled = true;
        clock.clear(deadline);
        ping.stop('SIGKILL');
        resolve(answered);
      };
      const deadline = clock.after(spec.deadlineMs, () => settle(false));
      const ping = runner.spawn(burstArgv(run, spec), {
        onLine: (line) => {
          if (parsePingLine(line)?.kind === 'reply') settle(true);
        },
      });
      // Ended without a reply (every probe errored, or ping could not start): no answer.
      void ping.ended.then(() => settle(false));
    });
  },
};

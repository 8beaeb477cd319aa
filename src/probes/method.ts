// A probe method: how one target is asked, through one uplink, whether the
// line carries traffic. The health monitor starts one per (uplink, target)
// and hears only outcomes — a probe answered after so many milliseconds, or
// lost — so the state machine (src/core/health.ts) judges every method alike:
// k of n targets, loss window, latency limit, damping. A method runs its
// commands through the injected Runner and its timers through the Clock, so
// tests drive it with fakes of both.

import type { Clock } from '../system/clock.js';
import type { Runner } from '../system/exec.js';
import type { ProbeSockets } from '../system/probe-sockets.js';

/** Every target names its method and an id the health state machine and status know it by. */
export interface ProbeTargetBase {
  readonly method: string;
  readonly id: string;
}

/** The way out a probe must take: bound to the uplink's interface, carrying its connection mark (and from its address, when it has one). */
export interface ProbePath {
  readonly interface: string;
  readonly mark: number;
  readonly source?: string;
}

export interface ProbeTiming {
  /** Time between probes. */
  readonly intervalMs: number;
  /** A probe not answered within this is lost (a later answer is judged late by the state machine). */
  readonly timeoutMs: number;
}

export interface ProbeRun<T extends ProbeTargetBase> {
  readonly target: T;
  readonly path: ProbePath;
  readonly timing: ProbeTiming;
}

/** One probe's outcome; a lost one says why when the method knows (a refused port, HTTP 500, REFUSED). */
/** A probe's outcome; `seq` numbers the probes in the order they were sent (outcomes may arrive in another order). */
export type ProbeEvent = { readonly kind: 'answered'; readonly rttMs: number; readonly seq: number } | { readonly kind: 'lost'; readonly why?: string; readonly seq: number };

export interface ProbeContext {
  readonly runner: Runner;
  readonly clock: Clock;
  /** Sockets bound to the uplink's address (tcp, http, dns). */
  readonly sockets: ProbeSockets;
}

export interface RunningProbe {
  /**
   * Resolves when the method stopped by itself (its process ended, e.g.
   * because its interface went away), with the exit code when there is one;
   * the monitor starts it again a little later. Probes already sent may still
   * report their outcome after this.
   */
  readonly ended: Promise<number | null>;
  /** The uplink's link went down: probes in flight are void, neither answered nor lost. */
  forget(): void;
  /** Reads what the probe has to tell now, for a method whose output waits to be read (icmp: the health monitor calls it on every tick). */
  collect?(): void;
  /** Stops probing for good; no event follows. */
  stop(): void;
}

/** A burst: `count` probes `spacingMs` apart, all judged by one deadline from the first. */
export interface BurstSpec {
  readonly count: number;
  readonly spacingMs: number;
  readonly deadlineMs: number;
}

export interface ProbeMethod<T extends ProbeTargetBase> {
  readonly name: T['method'];
  /** At most how many packets one probe sends: what a line sends beyond its probes' share is clients' traffic (the passive signal samples such a line fast). */
  readonly packetsPerProbe: number;
  /** What identifies a running probe: when the key of what should run changes, the monitor restarts it. */
  key(run: ProbeRun<T>): string;
  start(run: ProbeRun<T>, context: ProbeContext, onEvent: (event: ProbeEvent) => void): RunningProbe;
  /**
   * Asks the target now, beside the periodic probes (the passive signal's
   * confirmation): resolves true at the first probe of the burst answered
   * before the deadline, false when none was. Never rejects.
   */
  burst(run: ProbeRun<T>, context: ProbeContext, spec: BurstSpec): Promise<boolean>;
}

// Which method probes a target. A method is a module of this folder with its
// target type; adding one (tcp, http, dns) means a file, a member of the
// ProbeTarget union, a row in PROBE_METHODS and a case in probeTarget — the
// health monitor and the state machine do not change.

import { icmpMethod, type IcmpTarget } from './icmp.js';
import type { ProbeMethod } from './method.js';

/** Every kind of target the config can name. */
export type ProbeTarget = IcmpTarget;

export type ProbeMethodName = ProbeTarget['method'];

/** The implementation of each method, by name (injectable: tests give the monitor fakes). */
export type ProbeMethods = { readonly [M in ProbeMethodName]: ProbeMethod<Extract<ProbeTarget, { readonly method: M }>> };

export const PROBE_METHODS: ProbeMethods = { icmp: icmpMethod };

/** A configured target: a plain address is probed with ICMP echo, and is its own id. */
export function probeTarget(entry: string): ProbeTarget {
  return { method: 'icmp', id: entry, address: entry };
}

/** The implementation for a target's method. */
export function methodFor(methods: ProbeMethods, target: ProbeTarget): ProbeMethod<ProbeTarget> {
  // The table is keyed by the target's own method, so the pair always matches; TypeScript cannot follow that through the union.
  return methods[target.method] as ProbeMethod<ProbeTarget>;
}

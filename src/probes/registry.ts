// Which method probes a target. A method is a module of this folder with its
// target type; adding one means a file, a member of the ProbeTarget union, a
// row in PROBE_METHODS and a case in probeTarget — the health monitor and the
// state machine do not change.

import { type ProbeTargetConfig, targetId } from '../core/probe-targets.js';
import { dnsMethod, type DnsTarget } from './dns.js';
import { httpMethod, type HttpTarget } from './http.js';
import { icmpMethod, type IcmpTarget } from './icmp.js';
import type { ProbeMethod } from './method.js';
import { tcpMethod, type TcpTarget } from './tcp.js';

/** Every kind of target the config can name. */
export type ProbeTarget = IcmpTarget | TcpTarget | HttpTarget | DnsTarget;

export type ProbeMethodName = ProbeTarget['method'];

/** The implementation of each method, by name (injectable: tests give the monitor fakes). */
export type ProbeMethods = { readonly [M in ProbeMethodName]: ProbeMethod<Extract<ProbeTarget, { readonly method: M }>> };

export const PROBE_METHODS: ProbeMethods = { icmp: icmpMethod, tcp: tcpMethod, http: httpMethod, dns: dnsMethod };

/** A configured target (or a gateway's address, probed with ICMP echo) with the id it is known by. */
export function probeTarget(entry: ProbeTargetConfig | string): ProbeTarget {
  const id = targetId(entry);
  return typeof entry === 'string' ? { method: 'icmp', id, address: entry } : { ...entry, id };
}

/** The implementation for a target's method. */
export function methodFor(methods: ProbeMethods, target: ProbeTarget): ProbeMethod<ProbeTarget> {
  // The table is keyed by the target's own method, so the pair always matches; TypeScript cannot follow that through the union.
  return methods[target.method] as ProbeMethod<ProbeTarget>;
}

// Change sets as the exact text loaded by the three batch commands:
//   iptables-restore --noflush   (one transaction for every table we touch)
//   ipset -exist restore         (before iptables: sets must exist to be referenced;
//                                 destroying one happens after, once unreferenced)
//   ip -batch -                  (routes first, then rules added, then old ones removed)
// Pure; `dispatcher plan` prints these and the reconcile loop loads them.

import { CLIENT_SET, CLIENT_SET_NEXT, ROUTE_PROTOCOL } from '../core/contract.js';
import { hex } from '../core/marks.js';
import type { IpRoute, IpRule, Nexthop } from '../model/kernel.js';
import type { ChangeSet, DesiredRoute, DesiredRule, NetfilterTableChange, SetChange } from '../model/plan.js';
import { joinArgs } from '../parse/iptables-save.js';

export interface Payloads {
  /** ipset restore text run before iptables (creates, adds, deletes). */
  readonly ipsetBefore: string;
  readonly iptables: string;
  readonly ip: string;
  /** ipset restore text run after iptables (destroying a set nothing references any more). */
  readonly ipsetAfter: string;
  readonly sysctls: Readonly<Record<string, string>>;
}

export function renderNetfilter(changes: readonly NetfilterTableChange[]): string {
  const lines: string[] = [];
  for (const change of changes) {
    lines.push(`*${change.table}`);
    for (const { chain } of change.writeChains) lines.push(`:${chain} - [0:0]`);
    for (const rule of change.deleteRules) lines.push(`-D ${rule.chain} ${joinArgs(rule.args)}`);
    for (const { chain, rules } of change.writeChains) for (const args of rules) lines.push(`-A ${chain} ${joinArgs(args)}`);
    for (const hook of change.addHooks) lines.push(`-I ${hook.builtin} 1 -j ${hook.chain}`);
    // Every chain is emptied before any is deleted: one of ours may still jump to another (DISPATCHER-COUNT).
    for (const chain of change.dropChains) lines.push(`-F ${chain}`);
    for (const chain of change.dropChains) lines.push(`-X ${chain}`);
    lines.push('COMMIT');
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** Room for the entries we load now, so the kernel does not rehash while loading. */
function hashsize(entries: number): number {
  let size = 1024;
  while (size < entries && size < 1 << 20) size *= 2;
  return size;
}

function createLine(name: string, change: SetChange): string {
  return `create ${name} hash:ip family inet hashsize ${hashsize(change.add.length)} maxelem ${change.maxelem} skbinfo`;
}

export function renderSetBefore(change: SetChange): string {
  const lines: string[] = change.destroyStale.map((name) => `destroy ${name}`);
  const target = change.create === 'swap' ? CLIENT_SET_NEXT : CLIENT_SET;
  if (change.create !== 'none') lines.push(createLine(target, change));
  for (const [ip, mark] of change.add) lines.push(`add ${target} ${ip} skbmark ${mark}`);
  for (const ip of change.del) lines.push(`del ${CLIENT_SET} ${ip}`);
  if (change.create === 'swap') lines.push(`swap ${CLIENT_SET_NEXT} ${CLIENT_SET}`, `destroy ${CLIENT_SET_NEXT}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function renderSetAfter(change: SetChange): string {
  return change.destroy ? `destroy ${CLIENT_SET}\n` : '';
}

function renderHop(hop: Nexthop, weighted: boolean): string {
  const via = hop.gateway ? `via ${hop.gateway} ` : '';
  return `${via}dev ${hop.dev}${weighted ? ` weight ${hop.weight}` : ''}${hop.onlink ? ' onlink' : ''}`;
}

export function renderRouteReplace(route: DesiredRoute): string {
  const [only] = route.nexthops;
  if (route.nexthops.length === 1 && only) return `route replace table ${route.table} ${route.dst} proto ${ROUTE_PROTOCOL} ${renderHop(only, false)}`;
  const hops = route.nexthops.map((hop) => `nexthop ${renderHop(hop, true)}`);
  return `route replace table ${route.table} ${route.dst} proto ${ROUTE_PROTOCOL} ${hops.join(' ')}`;
}

export function renderRouteDelete(route: IpRoute): string {
  const type = route.type === 'unicast' ? '' : `${route.type} `;
  return `route del ${type}${route.dst} table ${route.table}${route.metric ? ` metric ${route.metric}` : ''}`;
}

function ruleSelector(rule: DesiredRule | IpRule): string {
  const parts = [`priority ${rule.priority}`, `from ${rule.src}`];
  if ('iif' in rule && rule.iif) parts.push(`iif ${rule.iif}`);
  if ('oif' in rule && rule.oif) parts.push(`oif ${rule.oif}`);
  if (rule.fwmark !== undefined) parts.push(`fwmark ${hex(rule.fwmark)}/${hex(rule.fwmask ?? 0xffffffff)}`);
  if (rule.table) parts.push(`lookup ${rule.table}`);
  if (rule.suppressPrefixlength !== undefined) parts.push(`suppress_prefixlength ${rule.suppressPrefixlength}`);
  return parts.join(' ');
}

export function renderIpBatch(change: Pick<ChangeSet, 'routes' | 'rules'>): string {
  const lines = [
    ...change.routes.replace.map(renderRouteReplace),
    ...change.rules.add.map((rule) => `rule add ${ruleSelector(rule)} protocol ${ROUTE_PROTOCOL}`),
    ...change.rules.remove.map((rule) => `rule del ${ruleSelector(rule)} protocol ${ROUTE_PROTOCOL}`),
    ...change.routes.remove.map(renderRouteDelete),
  ];
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function renderPayloads(change: ChangeSet): Payloads {
  return {
    ipsetBefore: renderSetBefore(change.set),
    iptables: renderNetfilter(change.netfilter),
    ip: renderIpBatch(change),
    ipsetAfter: renderSetAfter(change.set),
    sysctls: change.sysctls,
  };
}

/** The payloads as one readable document, for `dispatcher plan`. */
export function describePayloads(payloads: Payloads): string {
  const sections: string[] = [];
  const sysctlLines = Object.entries(payloads.sysctls).map(([k, v]) => `${k}=${v}`);
  if (sysctlLines.length > 0) sections.push(`# sysctl -w\n${sysctlLines.join('\n')}\n`);
  if (payloads.ipsetBefore) sections.push(`# ipset -exist restore\n${payloads.ipsetBefore}`);
  if (payloads.iptables) sections.push(`# iptables-restore --noflush\n${payloads.iptables}`);
  if (payloads.ip) sections.push(`# ip -batch -\n${payloads.ip}`);
  if (payloads.ipsetAfter) sections.push(`# ipset -exist restore (after iptables)\n${payloads.ipsetAfter}`);
  return sections.length > 0 ? sections.join('\n') : '# nothing to change: the kernel already matches the plan\n';
}

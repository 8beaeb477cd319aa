// A run's payloads: the netfilter backend's own (src/backends/), and the
// shared part every backend has:
//   sysctl -q -w      first, so forwarding is on before anything routes
//   ip -batch -       routes first, then rules added, then old ones removed
//   ip -6 -batch -    the same for IPv6, with the gateway's LAN addresses (prefix mode)
// Pure; `dispatcher plan` prints these and the reconcile loop loads them.

import { ADDRESS_METRIC, ROUTE_PROTOCOL } from '../core/contract.js';
import { hex } from '../core/marks.js';
import type { IpRoute, IpRule, Nexthop } from '../model/kernel.js';
import type { AddressChange, DesiredRoute, DesiredRule, RoutingChange } from '../model/plan.js';

/** Lines of a payload text (each ends with a newline), for run reports and logs. */
export function countLines(text: string): number {
  return text === '' ? 0 : text.split('\n').length - 1;
}

/** Everything one run loads: the backend's payload (opaque here), the ip batch of each family and the sysctls. */
export interface KernelPayloads<P = unknown> {
  readonly netfilter: P;
  readonly ip: string;
  /** `ip -6 -batch -`: IPv6's rules and routes. */
  readonly ip6: string;
  readonly sysctls: Readonly<Record<string, string>>;
}

function renderHop(hop: Nexthop, weighted: boolean): string {
  const via = hop.gateway ? `via ${hop.gateway} ` : '';
  return `${via}dev ${hop.dev}${weighted ? ` weight ${hop.weight}` : ''}${hop.onlink ? ' onlink' : ''}`;
}

export function renderRouteReplace(route: DesiredRoute): string {
  if (route.type === 'unreachable') return `route replace unreachable ${route.dst} table ${route.table} proto ${ROUTE_PROTOCOL}`;
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

/** Routes and rules; for IPv6 also the gateway's LAN addresses, added first (their prefix routes are what the rules' main lookup finds) and removed last. */
export function renderIpBatch(change: Pick<RoutingChange, 'routes' | 'rules'> & { readonly addresses?: AddressChange }): string {
  const lines = [
    ...(change.addresses?.add ?? []).map((a) => `address add ${a.address} dev ${a.interface} metric ${ADDRESS_METRIC} nodad`),
    ...change.routes.replace.map(renderRouteReplace),
    ...change.rules.add.map((rule) => `rule add ${ruleSelector(rule)} protocol ${ROUTE_PROTOCOL}`),
    ...change.rules.remove.map((rule) => `rule del ${ruleSelector(rule)} protocol ${ROUTE_PROTOCOL}`),
    ...change.routes.remove.map(renderRouteDelete),
    ...(change.addresses?.remove ?? []).map((a) => `address del ${a.address} dev ${a.interface}`),
  ];
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function renderKernelPayloads<P>(netfilter: P, routing: Pick<RoutingChange, 'routes' | 'rules' | 'ipv6' | 'sysctls'>): KernelPayloads<P> {
  return { netfilter, ip: renderIpBatch(routing), ip6: renderIpBatch(routing.ipv6), sysctls: routing.sysctls };
}

function sysctlSection(sysctls: Readonly<Record<string, string>>): string {
  const lines = Object.entries(sysctls).map(([k, v]) => `${k}=${v}`);
  return lines.length > 0 ? `# sysctl -w\n${lines.join('\n')}\n` : '';
}

const NOTHING_TO_CHANGE = '# nothing to change: the kernel already matches the plan\n';

/** The payloads as one readable document in the order they are loaded (sysctls, the backend's, ip), for `dispatcher plan`. */
/** `describe`: the backend's own description of its payload (backend.describe). */
export function describeKernelPayloads<P>(describe: (payload: P) => string, payloads: KernelPayloads<P>): string {
  const ip = payloads.ip ? `# ip -batch -\n${payloads.ip}` : '';
  const ip6 = payloads.ip6 ? `# ip -6 -batch -\n${payloads.ip6}` : '';
  const sections = [sysctlSection(payloads.sysctls), describe(payloads.netfilter), ip, ip6].filter((s) => s !== '');
  return sections.length > 0 ? sections.join('\n') : NOTHING_TO_CHANGE;
}

// `ip -o route get DST from SRC iif IF mark M`: the kernel's own answer to
// "where would this client's packet go", which `explain` shows beside the
// planner's. The fake walks its rules and tables as the kernel's FIB lookup
// does: rules by priority (from, iif, fwmark), the longest prefix in the
// table looked up, `suppress_prefixlength` dropping a too-short answer.
// Measured on Linux 6.18: without forwarding the answer is "No route to host";
// a multipath route answers with one of its hops (the kernel hashes the flow;
// the fake takes the first live one).

import { contains, hexOf, ipv4, parseNumber, prefix, ToolFailure } from './failure.js';
import type { Link } from './links.js';
import type { Hop, Route, Routing } from './routing.js';

interface Query {
  readonly dst: string;
  readonly src: string;
  readonly iif: string;
  readonly mark: number;
}

/** Reads exactly the argv the daemon sends; null when it is something else. */
export function parseRouteGet(argv: readonly string[]): Query | null {
  const [ip, o, route, get, dst, from, src, iif, dev, markKey, mark] = argv;
  if (argv.length !== 11 || ip !== 'ip' || o !== '-o' || route !== 'route' || get !== 'get' || from !== 'from' || iif !== 'iif' || markKey !== 'mark') return null;
  const value = parseNumber(mark ?? '');
  if (ipv4(dst ?? '') === null || ipv4(src ?? '') === null || dev === undefined || value === null) return null;
  return { dst: dst as string, src: src as string, iif: dev, mark: value };
}

function lookupTable(routing: Routing, links: readonly Link[], table: string, dst: string): Route | undefined {
  const live = (hop: Hop): boolean => links.some((l) => l.name === hop.dev && l.up);
  const matching = routing.routes.filter((r) => r.table === table && contains(r.dst, dst) && (r.hops.length === 0 || r.hops.some(live)));
  return matching.sort((a, b) => (prefix(b.dst)?.[1] ?? 0) - (prefix(a.dst)?.[1] ?? 0) || (a.metric ?? 0) - (b.metric ?? 0))[0];
}

export function routeGet(routing: Routing, links: readonly Link[], forwarding: boolean, query: Query): string {
  if (!links.some((l) => l.name === query.iif)) throw new ToolFailure(1, `Cannot find device "${query.iif}"\n`);
  if (!forwarding) throw new ToolFailure(2, 'RTNETLINK answers: No route to host\n');
  for (const rule of routing.rules) {
    if (rule.src !== 'all' && !contains(`${rule.src}/${rule.srclen}`, query.src)) continue;
    if (rule.iif !== undefined && rule.iif !== query.iif) continue;
    if (rule.oif !== undefined) continue;
    if (rule.fwmark !== undefined && (query.mark & (rule.fwmask ?? 0xffffffff)) >>> 0 !== rule.fwmark) continue;
    const route = lookupTable(routing, links, rule.table, query.dst);
    if (!route || route.type === 'throw') continue;
    if (rule.suppressPrefixlength !== undefined && (prefix(route.dst)?.[1] ?? 0) <= rule.suppressPrefixlength) continue;
    if (route.type !== 'unicast' && route.type !== 'local') throw new ToolFailure(2, 'RTNETLINK answers: Network is unreachable\n');
    const hop = route.hops.find((h) => links.some((l) => l.name === h.dev && l.up)) as Hop;
    const via = hop.gateway !== undefined ? ` via ${hop.gateway}` : '';
    const table = route.table !== 'main' ? ` table ${route.table}` : '';
    const mark = query.mark !== 0 ? ` mark ${hexOf(query.mark)}` : '';
    const redirect = hop.dev === query.iif ? '<redirect> ' : '';
    return `${query.dst} from ${query.src}${via} dev ${hop.dev}${table}${mark} \\    cache ${redirect}iif ${query.iif} \n`;
  }
  throw new ToolFailure(2, 'RTNETLINK answers: Network is unreachable\n');
}

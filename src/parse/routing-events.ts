// Lines of `ip monitor rule route` (text: iproute2 6.1 has no JSON monitor),
// e.g.
//   4101:	from all fwmark 0x10000000/0xf0000000 lookup 3101 proto 211
//   Deleted 4101:	from all fwmark 0x10000000/0xf0000000 lookup 3101 proto 211
//   default via 192.0.2.1 dev ppp0 table 3101 proto 211 onlink
//   Deleted 198.51.100.0/24 table 3102 proto 211
//   	nexthop via 192.0.2.1 dev ppp0 weight 2 onlink       (continuation of a multipath route)
// Only what tells whether the change touches ours is read: a rule's
// selector and table, a route's table and destination.

import type { IpRule, RoutingEvent } from '../model/kernel.js';

/** Route types ip prints before the destination (unicast is not printed). */
const ROUTE_TYPES = new Set(['unreachable', 'blackhole', 'prohibit', 'throw', 'local', 'broadcast', 'multicast', 'anycast', 'nat', 'unicast']);

function valueAfter(tokens: readonly string[], key: string): string | undefined {
  const at = tokens.indexOf(key);
  return at >= 0 ? tokens[at + 1] : undefined;
}

function parseRule(priority: number, deleted: boolean, text: string): RoutingEvent | null {
  const tokens = text.trim().split(/\s+/);
  const src = valueAfter(tokens, 'from');
  if (!src) return null;
  const mark = valueAfter(tokens, 'fwmark');
  const [fwmark, fwmask] = mark ? mark.split('/').map((n) => Number.parseInt(n, 16)) : [];
  const table = valueAfter(tokens, 'lookup') ?? valueAfter(tokens, 'table');
  const suppress = valueAfter(tokens, 'suppress_prefixlength');
  const protocol = valueAfter(tokens, 'proto');
  const rule: IpRule = {
    priority,
    // A host prints without its length, as `ip -j rule` reads it: /32 (/128).
    src: src === 'all' || src.includes('/') ? src : `${src}/${src.includes(':') ? 128 : 32}`,
    table: table ?? '',
    ...(fwmark !== undefined && Number.isFinite(fwmark) ? { fwmark, fwmask: fwmask !== undefined && Number.isFinite(fwmask) ? fwmask : 0xffffffff } : {}),
    ...(suppress !== undefined ? { suppressPrefixlength: Number(suppress) } : {}),
    ...(protocol !== undefined ? { protocol } : {}),
  };
  return { kind: 'rule', deleted, rule };
}

/** The change a line reports, or null for continuation lines and anything else. */
export function parseRoutingEvent(line: string): RoutingEvent | null {
  if (/^\s/.test(line) || line.trim() === '') return null;
  const deleted = line.startsWith('Deleted ');
  const text = deleted ? line.slice('Deleted '.length) : line;
  const rule = /^([0-9]+):\s(.*)$/.exec(text);
  if (rule) return parseRule(Number(rule[1]), deleted, rule[2] as string);
  const tokens = text.trim().split(/\s+/);
  const start = ROUTE_TYPES.has(tokens[0] as string) ? 1 : 0;
  const dst = tokens[start];
  if (!dst || !/^(default|[0-9a-f.:]+(\/[0-9]+)?)$/.test(dst)) return null;
  return { kind: 'route', deleted, table: valueAfter(tokens, 'table') ?? 'main', dst: dst.includes('/') || dst === 'default' ? dst : `${dst}/${dst.includes(':') ? 128 : 32}` };
}

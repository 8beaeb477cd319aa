// Our table, inet dispatcher, as nft text (pure). Everything the gateway's
// packet filter must do (model/plan.ts NetfilterIntent), in one table of our
// own, loaded whole in one `nft -f` transaction:
//   pre    prerouting, priority mangle (-150): one lookup by interface,
//          into `lan` for a LAN's packets or a line's `claim` chain
//   lan    restore a LAN connection's uplink from its conntrack mark, then
//          the client's pool mark (one verdict-map lookup, whatever the
//          number of clients); a LAN connection without a line yet goes
//          through `choose`: policies (a set lookup per list), then
//          balance.mode, whose hash picks a pool (core/balance/policies.ts,
//          spread.ts); count sent bytes per pool (one lookup)
//   claim  one per uplink: a connection with no line yet belongs to the
//          line it arrived by (from `pre`) or first left by (from `post`)
//   out    output (route), priority mangle: the gateway's own connections
//          keep their uplink; `dispatcher exec --uplink` groups get its mark
//   post   postrouting, priority mangle: one lookup by interface, into
//          `count` (received bytes per pool) or the line's `claim` chain
//   fence   prerouting, priority mangle - 10, only while one of a pair is not
//          master: what it would forward from the LAN and what arrives for
//          a line's shared address is dropped until the connections are
//          committed (model/plan.ts FenceIntent)
//   nat    postrouting, priority srcnat (100): masquerade per uplink (IPv4),
//          or SNAT to the line's shared address in a pair;
//          in IPv6 nat mode the LAN's prefix onto each uplink's (NPTv6) or
//          masqueraded; IPv6 is otherwise left alone
// Priorities are those of iptables' mangle and nat tables, so firewalld, ufw
// and other tables at the filter priority (0) see the marks already set.
//
// Marks are set with constant and/or masks only (nft 1.0.6 cannot OR a map's
// value into a masked mark): the client map's verdict jumps to one short
// chain per pool, and the conntrack mark's field to one per uplink.

import { hex } from '../../core/marks.js';
import { hashedModes } from '../../core/balance/policies.js';
import { formatPorts } from '../../core/balance/policy-match.js';
import type { ChooseIntent, NetfilterIntent, PolicyAction, SpreadIntent } from '../../model/plan.js';
import type { ElementCounter } from './types.js';

export const TABLE = 'inet dispatcher';
export const CLIENT_MAP = 'clients';
/** IPv6 addresses → pool chains (lan.ipv6.mode nat): a second map, as a map's key has one type. */
export const CLIENT_MAP6 = 'clients6';

/** The map an address's element belongs in. */
const mapOf = (address: string): string => (address.includes(':') ? CLIENT_MAP6 : CLIENT_MAP);
/** The digest rule's comment starts with this (digestInComment reads it back). */
const DIGEST_COMMENT = 'dispatcher';

const hex8 = (value: number): string => (value >>> 0).toString(16).padStart(8, '0');
const not = (mask: number): string => hex(~mask >>> 0);

/** The chain a pool's clients jump to; its name carries the mark it sets, so the map's contents say the marks. */
export function poolChain(mark: number, mask: number): string {
  return `pool_${hex8(mark)}_${hex8(mask)}`;
}

export function parsePoolChain(name: string): { mark: number; mask: number } | null {
  const match = /^pool_([0-9a-f]{8})_([0-9a-f]{8})$/.exec(name);
  return match ? { mark: Number.parseInt(match[1] as string, 16), mask: Number.parseInt(match[2] as string, 16) } : null;
}

const connChain = (mark: number): string => `conn_${hex8(mark)}`;
/** A line's chain for a connection that has no line yet: it is claimed for the line its first packet arrived by or left by. */
const claimChain = (mark: number): string => `claim_${hex8(mark)}`;
const quoted = (name: string): string => JSON.stringify(name);

/** FNV-1a over the text: a short digest that says whether the table's rules are still what we loaded. */
export function digestOf(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hex8(hash);
}

/** Counter names per uplink (nft object names: letters, digits, underscores). */
export function counterNames(index: number): { sent: string; received: string } {
  return { sent: `sent_${index}`, received: `received_${index}` };
}

/** What the hash reads: the two addresses (destination mode), or the whole connection; per family. */
const HASHED: Record<'destination' | 'connection', Record<'ip' | 'ip6', string>> = {
  destination: { ip: 'ip saddr . ip daddr', ip6: 'ip6 saddr . ip6 daddr' },
  connection: { ip: 'ip saddr . ip daddr . meta l4proto . th sport . th dport', ip6: 'ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport' },
};

const hashChain = (mode: 'destination' | 'connection'): string => `hash_${mode}`;

/**
 * A hashing mode's chain: the bucket jumps to a pool's chain (which sets only
 * the pool field). In IPv6 nat mode a second rule hashes IPv6's addresses,
 * each rule for its own family only.
 */
function hashRules(mode: 'destination' | 'connection', spread: SpreadIntent, poolMask: number, ipv6: boolean): string[] {
  const ranges = spread.ranges.map((r) => `${r.from === r.to ? r.from : `${r.from}-${r.to}`} : jump ${poolChain(r.poolMark, poolMask)}`).join(', ');
  const rule = (family: 'ip' | 'ip6'): string => `jhash ${HASHED[mode][family]} mod ${spread.buckets} seed ${hex(spread.seed)} vmap { ${ranges} }`;
  return ipv6 ? [`meta nfproto ipv4 ${rule('ip')}`, `meta nfproto ipv6 ${rule('ip6')}`] : [rule('ip')];
}

function verdict(action: PolicyAction, poolMask: number): string {
  switch (action.kind) {
    case 'keep':
      return 'return';
    case 'pool':
      return `goto ${poolChain(action.poolMark, poolMask)}`;
    case 'hash':
      return `goto ${hashChain(action.mode)}`;
  }
}

const anonymous = (items: readonly (string | number)[]): string => (items.length === 1 ? String(items[0]) : `{ ${items.join(', ')} }`);

/** A policy's named set of client addresses (its MACs' clients, or the pinned clients): elements change with the clients, the rules do not. */
export function hostSetName(index: number, family: 'ipv4' | 'ipv6' = 'ipv4'): string {
  return `p${index + 1}_hosts${family === 'ipv6' ? '6' : ''}`;
}

/** A set's element type: its name says its family. */
const hostSetType = (name: string): string => (name.endsWith('6') ? 'ipv6_addr' : 'ipv4_addr');

/** The host sets the intent has, by name, with their elements; in IPv6 nat mode each has an IPv6 twin (the hosts' IPv6 addresses). */
export function hostSets(intent: NetfilterIntent): Map<string, readonly string[]> {
  const sets = new Map<string, readonly string[]>();
  intent.choose?.policies.forEach(({ match }, i) => {
    const hosts = match.sources?.hosts;
    if (!hosts) return;
    sets.set(hostSetName(i), intent.ipv6 ? hosts.filter((h) => !h.includes(':')) : hosts);
    if (intent.ipv6)
      sets.set(
        hostSetName(i, 'ipv6'),
        hosts.filter((h) => h.includes(':')),
      );
  });
  return sets;
}

/**
 * The choose chain's rules: each policy's match and verdict, then
 * balance.mode's. A policy's sources are an anonymous set of its networks
 * (they change with the config only) and its named host sets, one rule each.
 * A rule's matches are of one family: a destination list (IPv4 networks)
 * takes no IPv6, and the DSCP is read from the family's own header (`ip dscp`,
 * `ip6 dscp`: the traffic class), as ip6tables' dscp match does.
 */
function chooseRules(choose: ChooseIntent, poolMask: number, ipv6: boolean): string[] {
  const rules = choose.policies.flatMap(({ match, action }, i) => {
    const ports = match.ports.map((r) => formatPorts(r));
    const transport =
      match.ports.length === 0
        ? match.protocols.length > 0
          ? `meta l4proto ${anonymous(match.protocols)}`
          : ''
        : match.protocols.length === 1
          ? `${match.protocols[0]} dport ${anonymous(ports)}`
          : `meta l4proto ${anonymous(match.protocols)} th dport ${anonymous(ports)}`;
    const { sources } = match;
    const from: { source: string; family: 'ip' | 'ip6' }[] =
      sources === null
        ? [{ source: '', family: 'ip' }, ...(ipv6 && match.dscp.length > 0 ? [{ source: '', family: 'ip6' as const }] : [])]
        : [
            ...(sources.networks.length > 0 ? [{ source: `ip saddr ${anonymous(sources.networks)}`, family: 'ip' as const }] : []),
            ...(sources.hosts ? [{ source: `ip saddr @${hostSetName(i)}`, family: 'ip' as const }] : []),
            ...(sources.hosts && ipv6 ? [{ source: `ip6 saddr @${hostSetName(i, 'ipv6')}`, family: 'ip6' as const }] : []),
          ];
    return from
      .filter(({ family }) => family === 'ip' || match.destinations.length === 0)
      .map(({ source, family }) => {
        const parts = [source, match.destinations.length > 0 ? `ip daddr ${anonymous(match.destinations)}` : '', transport, match.dscp.length > 0 ? `${family} dscp ${anonymous(match.dscp)}` : '', verdict(action, poolMask)];
        return parts.filter((part) => part !== '').join(' ');
      });
  });
  return choose.otherwise.kind === 'keep' ? rules : [...rules, verdict(choose.otherwise, poolMask)];
}

/** The table's chains, rules, counters and map declaration: everything but the map's elements. */
export function renderSkeleton(intent: NetfilterIntent): string {
  const { connMask, poolMask, lans, uplinks } = intent;
  const conns = uplinks.map((u) => `${hex(u.connMark)} : jump ${connChain(u.connMark)}`).join(', ');
  const lines: string[] = [];
  const chain = (name: string, hook: string | null, rules: readonly string[]): void => {
    lines.push(`  chain ${name} {`);
    if (hook) lines.push(`    ${hook}`);
    for (const rule of rules) lines.push(`    ${rule}`);
    lines.push('  }');
  };
  uplinks.forEach((_, i) => {
    const names = counterNames(i);
    lines.push(`  counter ${names.sent} {`, '  }', `  counter ${names.received} {`, '  }');
  });
  // Each element counts the packets looked up in it (sent by `lan`, received by `count`): the clients table's bytes.
  lines.push(`  map ${CLIENT_MAP} {`, '    type ipv4_addr : verdict', `    size ${Math.max(1, intent.maxClients)}`, '    counter', '  }');
  const { ipv6 } = intent;
  if (ipv6) lines.push(`  map ${CLIENT_MAP6} {`, '    type ipv6_addr : verdict', `    size ${Math.max(1, ipv6.maxClients)}`, '    counter', '  }');
  for (const name of hostSets(intent).keys()) lines.push(`  set ${name} {`, `    type ${hostSetType(name)}`, '  }');
  const poolMarks = new Set(uplinks.map((u) => u.poolMark));
  for (const { action } of intent.choose?.policies ?? []) if (action.kind === 'pool') poolMarks.add(action.poolMark);
  for (const u of uplinks) chain(connChain(u.connMark), null, [`meta mark set meta mark and ${not(connMask)} or ${hex(u.connMark)}`]);
  for (const mark of poolMarks) chain(poolChain(mark, poolMask), null, [`meta mark set meta mark and ${not(poolMask)} or ${hex(mark)}`]);
  if (intent.choose) chain('choose', null, chooseRules(intent.choose, poolMask, ipv6 !== null));
  if (intent.spread) for (const mode of hashedModes(intent.choose)) chain(hashChain(mode), null, hashRules(mode, intent.spread, poolMask, ipv6 !== null));
  // The table is inet: without IPv6 nat mode, IPv6 packets leave our hooks first thing and get no mark of ours
  // (IPv6 off: left alone; prefix mode: routed by their source prefix alone, core/announce.ts).
  const leaveIpv6 = ipv6 ? [] : ['meta nfproto ipv6 return'];
  // Each packet takes one lookup by interface into the rules of its kind (a LAN's, or its line's), and
  // counts its pool's bytes with one lookup: a packet's rule count does not grow with LANs or uplinks.
  const byInterface = (key: 'iifname' | 'oifname', lanChain: string): string[] => {
    const entries = [...lans.map((l) => `${quoted(l)} : jump ${lanChain}`), ...uplinks.map((u) => `${quoted(u.interface)} : jump ${claimChain(u.connMark)}`)];
    return entries.length > 0 ? [`${key} vmap { ${entries.join(', ')} }`] : [];
  };
  const counted = (direction: 'sent' | 'received'): string[] =>
    uplinks.length > 0 ? [`counter name meta mark and ${hex(poolMask)} map { ${uplinks.map((u, i) => `${hex(u.poolMark)} : ${quoted(counterNames(i)[direction])}`).join(', ')} }`] : [];
  for (const u of uplinks) chain(claimChain(u.connMark), null, [`ct mark and ${hex(connMask)} == 0x0 ct mark set ct mark and ${not(connMask)} or ${hex(u.connMark)}`]);
  chain('lan', null, [
    ...(uplinks.length > 0 ? [`ct mark and ${hex(connMask)} vmap { ${conns} }`] : []),
    `ip saddr vmap @${CLIENT_MAP}`,
    ...(ipv6 ? [`ip6 saddr vmap @${CLIENT_MAP6}`] : []),
    ...(intent.choose ? [`ct mark and ${hex(connMask)} == 0x0 jump choose`] : []),
    ...counted('sent'),
  ]);
  chain('count', null, [`ip daddr vmap @${CLIENT_MAP}`, ...(ipv6 ? [`ip6 daddr vmap @${CLIENT_MAP6}`] : []), ...counted('received')]);
  chain('pre', 'type filter hook prerouting priority mangle; policy accept;', [...leaveIpv6, ...byInterface('iifname', 'lan')]);
  chain('out', 'type route hook output priority mangle; policy accept;', [
    ...leaveIpv6,
    ...(uplinks.length > 0 ? [`ct mark and ${hex(connMask)} vmap { ${conns} }`] : []),
    ...uplinks.map((u) => `meta skgid ${u.group} meta mark set meta mark and ${not(connMask)} or ${hex(u.connMark)}`),
  ]);
  chain('post', 'type filter hook postrouting priority mangle; policy accept;', [...leaveIpv6, ...byInterface('oifname', 'count')]);
  // Nothing owns the lines' NPTv6 prefixes but the translations of our own connections and the gateway's
  // inbound addresses (given to the gateway before routing, so never forwarded): anything new forwarded to
  // them (a scan, a flow whose entry expired) would follow the default route back to the ISP, and loop.
  const translated = (ipv6?.translate ?? []).flatMap((t) => (t.prefix === null ? [] : [t.prefix]));
  if (translated.length > 0) chain('guard', 'type filter hook forward priority mangle; policy accept;', [`ip6 daddr ${anonymous(translated)} ct state new drop`]);
  // The gateway's LAN address translated onto a line's prefix is its AAAA record on that line: new connections to it
  // arriving by that line, or from the LAN (whose hosts look the gateway's name up too), are the gateway's.
  const inbound = (ipv6?.translate ?? []).flatMap(({ interface: line, inbound: to }) => (to === null ? [] : [line, ...lans].map((iface) => `iifname ${quoted(iface)} ip6 daddr ${to.address} dnat ip6 to ${to.to}`)));
  if (inbound.length > 0) chain('inbound', 'type nat hook prerouting priority dstnat; policy accept;', inbound);
  // A pair (ha) while this gateway is not master: nothing it would forward from the LAN (VRRP's adverts and ARP pass)
  // and nothing for a line's shared address, until conntrackd has committed the master's connections. Before `pre`.
  const { fence } = intent;
  if (fence) {
    chain('fence', 'type filter hook prerouting priority mangle - 10; policy accept;', [
      ...fence.lans.map((lan) => `iifname ${quoted(lan)} fib daddr type unicast drop`),
      ...fence.addresses.map((address) => `ip daddr ${address} drop`),
    ]);
  }
  // IPv4 masquerades by uplink; IPv6 only in nat mode, and only the LAN's prefix: onto the uplink's routed prefix (NPTv6), else its address.
  chain('nat', 'type nat hook postrouting priority srcnat; policy accept;', [
    // A line with a shared address translates what it forwards to that address; the gateway's own packets (probes, exec --uplink) masquerade to its own address.
    ...uplinks.flatMap((u) =>
      u.snat === null
        ? [`oifname ${quoted(u.interface)} meta nfproto ipv4 masquerade`]
        : [`oifname ${quoted(u.interface)} meta nfproto ipv4 fib saddr type local masquerade`, `oifname ${quoted(u.interface)} meta nfproto ipv4 snat ip to ${u.snat}`],
    ),
    ...(ipv6?.translate ?? []).map((t) => `oifname ${quoted(t.interface)} ip6 saddr ${ipv6?.lanPrefix} ${t.prefix === null ? 'masquerade' : `snat ip6 prefix to ${t.prefix}`}`),
  ]);
  // The digest of everything above, in a chain nothing jumps to: a run compares it with what it would
  // load, and rebuilds the table when they differ (the kernel's own listing is not our text).
  chain('digest', null, [`counter comment ${quoted(`${DIGEST_COMMENT} ${digestOf(lines.join('\n'))}`)}`]);
  return lines.join('\n');
}

/** Rules per chain in our text, as the kernel will count them (the hook line is no rule). */
export function rulesPerChain(skeleton: string): Record<string, number> {
  const counts: Record<string, number> = {};
  let chain: string | null = null;
  for (const line of skeleton.split('\n')) {
    const opening = /^ {2}chain (\S+) \{$/.exec(line);
    if (opening) counts[(chain = opening[1] as string)] = 0;
    else if (line === '  }') chain = null;
    else if (chain !== null && !line.trimStart().startsWith('type ')) counts[chain] = (counts[chain] ?? 0) + 1;
  }
  return counts;
}

/** The digest a loaded table carries in its digest chain's comment rule, or null. */
export function digestInComment(comment: string): string | null {
  const match = /^dispatcher ([0-9a-f]{8})$/.exec(comment);
  return match ? (match[1] as string) : null;
}

/** The digest renderSkeleton gives a table (read back from its own comment rule). */
export function skeletonDigest(skeleton: string): string {
  return digestInComment(/comment "([^"]*)"/.exec(skeleton)?.[1] ?? '') ?? '';
}

/**
 * Map elements, address → pool chain, as nft writes a set of them. An element
 * that existed keeps its counter (`counters`): a client moved to another pool
 * is deleted and added again, a rebuilt table is new, and either would zero
 * the client's bytes.
 */
function elements(entries: readonly (readonly [string, string])[], counters: ReadonlyMap<string, ElementCounter>): string {
  return entries
    .map(([address, chain]) => {
      const counter = counters.get(address);
      return counter === undefined ? `${address} : jump ${chain}` : `${address} counter packets ${counter[0]} bytes ${counter[1]} : jump ${chain}`;
    })
    .join(', ');
}

/** Entries (or addresses) split by the map they belong in: IPv4's, then IPv6's. */
function byMap<T>(items: readonly T[], address: (item: T) => string): [string, T[]][] {
  if (!items.some((item) => address(item).includes(':'))) return [[CLIENT_MAP, [...items]]];
  return [CLIENT_MAP, CLIENT_MAP6].map((map) => [map, items.filter((item) => mapOf(address(item)) === map)]);
}

/** A host set's elements as nft takes them: bare addresses (the set's type is ipv4_addr or ipv6_addr). */
export const hostElement = (host: string): string => host.replace(/\/(32|128)$/, '');
const hostElements = (hosts: readonly string[]): string => hosts.map(hostElement).join(', ');

/** The whole table in one transaction: created if absent, emptied and rebuilt if present. */
export function renderWhole(skeleton: string, clients: ReadonlyMap<string, string>, exists: boolean, hosts: ReadonlyMap<string, readonly string[]> = new Map(), counters: ReadonlyMap<string, ElementCounter> = new Map()): string {
  const entries = [...clients];
  return [
    // `table` then `delete table` in one transaction: deletes an existing table, and is harmless when there is none.
    ...(exists ? [`table ${TABLE}`, `delete table ${TABLE}`] : []),
    `table ${TABLE} {`,
    skeleton,
    '}',
    ...byMap(entries, ([address]) => address).flatMap(([map, part]) => (part.length > 0 ? [`add element ${TABLE} ${map} { ${elements(part, counters)} }`] : [])),
    ...[...hosts].filter(([, list]) => list.length > 0).map(([name, list]) => `add element ${TABLE} ${name} { ${hostElements(list)} }`),
    '',
  ].join('\n');
}

/** Element changes of one set: what to delete and what to add. */
export interface SetElements {
  readonly remove: readonly string[];
  readonly add: readonly string[];
}

/** Only the map's and the host sets' changes: a moved client is deleted and added again in the same transaction. */
export function renderElements(remove: readonly string[], add: readonly (readonly [string, string])[], hosts: ReadonlyMap<string, SetElements> = new Map(), counters: ReadonlyMap<string, ElementCounter> = new Map()): string {
  const lines: string[] = [];
  for (const [map, part] of byMap(remove, (address) => address)) if (part.length > 0) lines.push(`delete element ${TABLE} ${map} { ${part.join(', ')} }`);
  for (const [map, part] of byMap(add, ([address]) => address)) if (part.length > 0) lines.push(`add element ${TABLE} ${map} { ${elements(part, counters)} }`);
  for (const [name, change] of hosts) {
    if (change.remove.length > 0) lines.push(`delete element ${TABLE} ${name} { ${hostElements(change.remove)} }`);
    if (change.add.length > 0) lines.push(`add element ${TABLE} ${name} { ${hostElements(change.add)} }`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

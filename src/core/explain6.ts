// `dispatcher explain IPV6` (pure): why one of a host's IPv6 addresses goes
// where it goes (lan.ipv6.mode nat; prefix mode at the end). An IPv6 address has no pool of its own:
// it is one of a host's addresses, found by the host's MAC, and takes the
// host's pool; the IPv6 classifier gives it that pool's mark, and IPv6's own
// rule list and tables (same priorities and ids as IPv4's) route it by the
// line's IPv6 next hop, judged by the line's IPv6 verdict. The same planner
// functions as explain.ts, on the IPv6 views.

import type { Config } from '../model/config.js';
import type { Assignments, UplinkView } from '../model/state.js';
import type { Explanation } from '../schema/control.js';
import { ids } from './contract.js';
import { chooseStep, describeHops, poolRoute } from './explain.js';
import { inIpv6Prefix, translate6 } from './ipv6.js';
import { connMark, hex, markLayout, poolMark } from './marks.js';
import { planAnnouncement } from './announce.js';
import { planRoutes6 } from './plan.js';
import { role } from './uplinks.js';

/** The classifier that gives a host's IPv6 addresses their mark, in the backend's words. */
const CLASSIFIER = { iptables: 'the IPv6 client set (dispatcher-clients6)', nftables: 'the IPv6 client map (clients6)' } as const;

/** How a line's IPv6 leaves: the address translated onto its prefix, or masqueraded. */
function leaving(config: Config, uplink: UplinkView, ip: string): string {
  const prefix = config.uplinks[uplink.index]?.ipv6?.prefix ?? null;
  if (prefix !== null) return `translated onto ${prefix} (NPTv6, host part kept): it is seen as ${translate6(ip, prefix)}`;
  return `masqueraded to the line's own address${uplink.inbound ? ` (${uplink.inbound})` : ''}`;
}

/** `uplinks6`: the IPv6 views, judged (core/uplinks6.ts). */
export function explain6(config: Config, uplinks6: readonly UplinkView[], assignments: Assignments, ip: string): Explanation {
  const { tables, priorities } = ids(config);
  const layout = markLayout(config.marks.mask);
  const none = { ip, mark: null, ifUplinkDies: null, pool: null, pinned: false, to: null };
  if (config.lan.ipv6.mode === 'prefix') return explainPrefixMode(config, uplinks6, ip);
  const prefix = config.lan.ipv6.prefix;
  if (config.lan.ipv6.mode === 'off' || prefix === null) {
    return { ...none, verdict: 'not a client', steps: [`IPv6 is off (lan.ipv6.mode: off): the dispatcher leaves ${ip} and all IPv6 alone`] };
  }
  if (!inIpv6Prefix(prefix, ip)) {
    return { ...none, verdict: 'not a client', steps: [`${ip} is outside lan.ipv6.prefix (${prefix}): only the LAN's own prefix is pooled and translated`] };
  }
  const host = [...assignments].find(([, record]) => record.ipv6?.[ip] !== undefined);
  const multipath = poolRoute(config, uplinks6, -1, tables.multipath);
  const connections = `open connections keep the line they started on: their connection mark selects rule ${priorities.conn(0)}+i and that line's IPv6 table, ahead of the pool rules`;
  if (!host) {
    return {
      ...none,
      verdict: 'not assigned',
      steps: [
        `${ip} is no known host's address: an IPv6 neighbour joins a host by its MAC once that host has an IPv4 address (IPv6-only hosts are not pooled)`,
        ...chooseStep(config, uplinks6),
        `its packets get no pool mark${config.policies.length > 0 || config.balance.mode !== 'host' ? ' (unless a policy or the balancing mode gives its connection one)' : ''}, so IPv6 rule ${priorities.multipath} sends them to IPv6 table ${tables.multipath}: ${describeHops(multipath, uplinks6) || 'no line carries IPv6'}`,
        connections,
      ],
      ifUplinkDies: `a line whose IPv6 dies leaves IPv6 table ${tables.multipath} at once; the others carry its share`,
    };
  }
  const [v4, record] = host;
  const uplink = uplinks6.find((u) => u.name === record.uplink);
  if (!uplink) return { ...none, verdict: 'not assigned', steps: [`${ip} belongs to host ${v4}, whose pool ${record.uplink} has no IPv6 view`] };
  const mark = `${hex(poolMark(layout, uplink.index))}/${hex(layout.poolMask)}`;
  const route = poolRoute(config, uplinks6, uplink.index);
  const now = role(uplink, uplinks6);
  const survivors = uplinks6.map((u) => (u.name === uplink.name ? { ...u, state: 'down' as const, reason: 'what if' } : u));
  const failover = poolRoute(config, survivors, uplink.index);
  const verdict = uplink.ownVerdict ? "its own IPv6 probes' verdict" : "the line's verdict";
  const steps = [
    `${ip} is one of host ${v4}'s IPv6 addresses (MAC ${record.mac} on ${record.interface}): it is in ${uplink.name}'s pool with the host${record.pinned ? ' (pinned by an operator)' : ''}, so both families leave by one line`,
    `${CLASSIFIER[config.netfilter.backend]} gives its packets the pool mark ${mark}`,
    ...chooseStep(config, uplinks6),
    `IPv6 rule ${priorities.pool(uplink.index)}: fwmark ${mark} lookup ${tables.pool(uplink.index)}`,
    `IPv6 table ${tables.pool(uplink.index)}: default via ${describeHops(route, uplinks6) || 'nothing (no line can carry IPv6)'}`,
    now === 'carrying'
      ? `${uplink.name}'s IPv6 is up (${verdict}): new connections leave by ${uplink.interface}, ${leaving(config, uplink, ip)}`
      : now === 'standby'
        ? `${uplink.name} is up but stands by (tier ${uplink.tier}): its pool is carried by the lower tier`
        : `${uplink.name}'s IPv6 is down (${uplink.reason}): its pool's IPv6 is carried by the lines whose IPv6 is up until it is back`,
    connections,
  ];
  const conn = `${hex(connMark(layout, uplink.index))}/${hex(layout.connMask)}`;
  const ifUplinkDies =
    now === 'carrying'
      ? `if ${uplink.name}'s IPv6 dies: IPv6 table ${tables.pool(uplink.index)} points at ${describeHops(failover, survivors) || 'nothing (no other line carries IPv6: routes stay as they are)'}; ` +
        `its IPv6 connections (conntrack mark ${conn}) are forgotten so the host reconnects at once; the address stays in ${uplink.name}'s pool and comes home with it`
      : now === 'standby'
        ? `${uplink.name} stands by: the host leaves by it only when every line of a lower tier is down`
        : `${uplink.name}'s IPv6 is already down: the address comes home when it is back`;
  return { ip, mark: poolMark(layout, uplink.index), verdict: 'assigned', steps, ifUplinkDies, pool: uplink.name, pinned: record.pinned === true, to: null };
}

/**
 * Prefix mode: the address's prefix is its line (core/announce.ts): a source
 * rule sends it to that line's own table, which refuses it while the line
 * cannot route; the advertisements prefer or deprecate the prefix.
 */
function explainPrefixMode(config: Config, uplinks6: readonly UplinkView[], ip: string): Explanation {
  const { tables, priorities } = ids(config);
  const none = { ip, mark: null, ifUplinkDies: null, pool: null, pinned: false, to: null };
  const index = config.uplinks.findIndex((u) => u.ipv6?.prefix && inIpv6Prefix(u.ipv6.prefix, ip));
  const line = config.uplinks[index];
  const uplink = uplinks6.find((u) => u.index === index);
  const prefix = line?.ipv6?.prefix;
  if (!line || !prefix || !uplink) {
    const announced = config.uplinks.flatMap((u) => (u.ipv6?.prefix ? [u.ipv6.prefix] : []));
    return { ...none, verdict: 'not a client', steps: [`${ip} is in no announced prefix (${announced.join(', ')}): prefix mode routes only the lines' own prefixes`] };
  }
  const table = tables.prefix(index);
  const route = planRoutes6(config, uplinks6).find((r) => r.table === String(table));
  const preferred = planAnnouncement(config, uplinks6)?.prefixes.find((p) => p.uplink === uplink.name)?.preferred === true;
  const standby = role(uplink, uplinks6) === 'standby';
  const steps = [
    `${ip} is in ${uplink.name}'s prefix ${prefix}, announced on ${config.lan.interfaces[0]} by the gateway's router advertisements: no NAT, the internet sees ${ip} itself`,
    `IPv6 rule ${priorities.source(index)}: from ${prefix} lookup ${table} (ahead of the pools: the source prefix decides the line)`,
    route === undefined || route.type === 'unreachable'
      ? `IPv6 table ${table}: unreachable — ${uplink.name}'s IPv6 is down (${uplink.reason}), so its prefix's packets are refused (ICMPv6) rather than sent out of another line, whose provider would drop them; applications try another address at once`
      : `IPv6 table ${table}: default via ${describeHops(route.nexthops, uplinks6) || uplink.interface}`,
    preferred
      ? 'the prefix is advertised preferred: hosts choose its addresses for new connections'
      : `the prefix is advertised deprecated (preferred lifetime 0): hosts choose another line's addresses for new connections${standby ? ` (${uplink.name} stands by for a lower tier; its open connections keep working)` : ''}`,
  ];
  const ifUplinkDies =
    uplink.state === 'down'
      ? `${uplink.name}'s IPv6 is down: the prefix is preferred again when it is back`
      : `if ${uplink.name}'s IPv6 dies: its prefix is deprecated at once (hosts choose another line's prefix for new connections) and table ${table} refuses its packets; connections from ${ip} end, as no NAT can move them to another line`;
  return { ...none, verdict: 'assigned', steps, ifUplinkDies, pool: uplink.name };
}

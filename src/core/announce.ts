// IPv6 prefix mode (RFC 8678, no NAT): each line's routed /64 is announced on
// the LAN by router advertisements, hosts autoconfigure an address in every
// one, and a connection leaves by the line whose prefix its source is in
// (source rules). A line that stops carrying IPv6 has its prefix deprecated
// (preferred lifetime 0, RFC 8475): hosts keep the addresses but choose
// another line's for new connections; its prefix's packets are refused with
// an ICMPv6 error rather than sent out of another line, whose provider would
// drop them (RFC 8678 §5), so applications fail over at once instead of
// waiting. Pure: the planner reads these, src/system/radvd.ts runs the
// advertisements.

import type { Config } from '../model/config.js';
import type { Nexthop } from '../model/kernel.js';
import type { Announcement, DesiredAddress, DesiredRoute, DesiredRule } from '../model/plan.js';
import type { UplinkView } from '../model/state.js';
import { formatIpv6 } from './address.js';
import { ids } from './contract.js';
import { parseIpv6Network } from './ipv6.js';
import { carrying, role, routable } from './uplinks.js';

/** The gateway's own address in an announced prefix: its first (::1), the router's conventional one. */
export function gatewayAddress6(prefix: string): string {
  const network = parseIpv6Network(prefix);
  if (network === null) throw new Error(`not an IPv6 network: ${prefix}`);
  return formatIpv6(network.network + 1n);
}

/** The lines whose prefix is announced (prefix mode), in config order. */
function announced(config: Config): { index: number; name: string; prefix: string }[] {
  if (config.lan.ipv6.mode !== 'prefix') return [];
  return config.uplinks.flatMap((u, index) => (u.ipv6?.prefix ? [{ index, name: u.name, prefix: u.ipv6.prefix }] : []));
}

/** The IPv6 views of the lines that announce a prefix: who carries is decided among them (a line with IPv6 but no prefix carries none of the LAN's). */
function announcing(config: Config, uplinks6: readonly UplinkView[]): UplinkView[] {
  const names = new Set(announced(config).map((line) => line.name));
  return uplinks6.filter((u) => names.has(u.name));
}

/** The one LAN interface the prefixes are announced on (the config allows one in prefix mode). */
function lanInterface(config: Config): string {
  return config.lan.interfaces[0] as string;
}

/** The gateway's address in every announced prefix, on the LAN interface: hosts reach it there, and its prefix route delivers the prefix's traffic to them. */
export function planAddresses6(config: Config): DesiredAddress[] {
  return announced(config).map(({ prefix }) => ({ interface: lanInterface(config), address: `${gatewayAddress6(prefix)}/${prefix.split('/')[1]}` }));
}

/**
 * Each line's prefix preferred while the line carries IPv6, deprecated
 * otherwise (down, or standing by for a lower tier). While no line carries,
 * every prefix stays preferred, as routes stay where they were
 * (core/plan.ts): probes that all fail at once more likely say something of
 * the gateway than of every line.
 */
export function planAnnouncement(config: Config, uplinks6: readonly UplinkView[]): Announcement | null {
  const lines = announced(config);
  if (lines.length === 0) return null;
  const views = announcing(config, uplinks6);
  const none = carrying(views).length === 0;
  return {
    interface: lanInterface(config),
    prefixes: lines.map(({ name, prefix }) => {
      const view = views.find((u) => u.name === name);
      return { uplink: name, prefix, preferred: view !== undefined && (none || role(view, views) === 'carrying') };
    }),
  };
}

/**
 * A source in a line's prefix looks up the line's prefix table, ahead of the
 * pools' marks (a LAN packet's pool says nothing about its source prefix).
 * The main table without its default route comes first (planRules), so the
 * LAN's own routes still win.
 */
export function planPrefixRules(config: Config): DesiredRule[] {
  const { tables, priorities } = ids(config);
  return announced(config).map(({ index, prefix }) => ({ priority: priorities.source(index), src: prefix, table: String(tables.prefix(index)) }));
}

/**
 * A prefix table routes by its line, and refuses (ICMPv6 unreachable) while
 * the line is down or cannot route IPv6, rather than letting the prefix fall
 * through to another line. (The line's own table stays: its probes find the
 * line's return by it.) While no line carries, each routes by its line.
 */
export function planPrefixTables(config: Config, uplinks6: readonly UplinkView[], spread: (via: readonly UplinkView[]) => Nexthop[]): DesiredRoute[] {
  const { tables } = ids(config);
  const views = announcing(config, uplinks6);
  const none = carrying(views).length === 0;
  return announced(config).map(({ index, name }): DesiredRoute => {
    const view = views.find((u) => u.name === name);
    const table = String(tables.prefix(index));
    return view !== undefined && routable(view) && (none || view.state === 'up') ? { table, dst: 'default', nexthops: spread([view]) } : { table, dst: 'default', nexthops: [], type: 'unreachable' };
  });
}

// `ip -j` output of iproute2 (rule, route, addr), validated and coerced into
// the kernel model. iproute2 prints marks as hex strings and tables as text
// (DESIGN.md §6), omits "table" for the main table, and varies which keys
// appear; anything not of the expected type is a ParseError, not a guess.

import { ADDRESS_METRIC } from '../core/contract.js';
import { parseMark } from '../core/marks.js';
import type { IpRoute, IpRule, Link, LinkAddress, Nexthop } from '../model/kernel.js';
import { ParseError } from './iptables-save.js';

type Json = Record<string, unknown>;

function parseArray(text: string, what: string): Json[] {
  let value: unknown;
  try {
    value = JSON.parse(text.trim() === '' ? '[]' : text);
  } catch (error) {
    throw new ParseError(what, 0, `not JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(value)) throw new ParseError(what, 0, 'expected a JSON list');
  return value.map((item, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new ParseError(what, i, 'expected an object');
    return item as Json;
  });
}

function str(item: Json, key: string, what: string, index: number): string | undefined {
  const value = item[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new ParseError(what, index, `"${key}" is not text`);
  return value;
}

function num(item: Json, key: string, what: string, index: number): number | undefined {
  const value = item[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value)) throw new ParseError(what, index, `"${key}" is not a whole number`);
  return value;
}

function mark(item: Json, key: string, what: string, index: number): number | undefined {
  const value = item[key];
  if (value === undefined) return undefined;
  const parsed = typeof value === 'number' ? value : typeof value === 'string' ? parseMark(value) : null;
  if (parsed === null || !Number.isInteger(parsed) || parsed < 0 || parsed > 0xffffffff) throw new ParseError(what, index, `"${key}" is not a mark`);
  return parsed;
}

function flags(item: Json, what: string, index: number): string[] {
  const value = item.flags;
  if (value === undefined) return [];
  if (!Array.isArray(value) || value.some((f) => typeof f !== 'string')) throw new ParseError(what, index, '"flags" is not a list of text');
  return value as string[];
}

/** `ip -j rule show` */
export function parseIpRules(text: string): IpRule[] {
  const what = 'ip -j rule';
  return parseArray(text, what).map((item, i) => {
    const priority = num(item, 'priority', what, i);
    if (priority === undefined) throw new ParseError(what, i, 'rule without a priority');
    const srcText = str(item, 'src', what, i) ?? 'all';
    const srclen = num(item, 'srclen', what, i);
    const fwmark = mark(item, 'fwmark', what, i);
    const fwmask = mark(item, 'fwmask', what, i);
    const rule: IpRule = {
      priority,
      // A host prints without its length: /32, or /128 for IPv6.
      src: srcText === 'all' ? 'all' : `${srcText}/${srclen ?? (srcText.includes(':') ? 128 : 32)}`,
      table: str(item, 'table', what, i) ?? '',
      ...(fwmark !== undefined ? { fwmark, fwmask: fwmask ?? 0xffffffff } : {}),
      ...defined('iif', str(item, 'iif', what, i)),
      ...defined('oif', str(item, 'oif', what, i)),
      ...defined('suppressPrefixlength', num(item, 'suppress_prefixlen', what, i)),
      ...defined('protocol', str(item, 'protocol', what, i)),
      ...defined('action', item.not !== undefined ? `not ${str(item, 'action', what, i) ?? 'lookup'}` : str(item, 'action', what, i)),
    };
    return rule;
  });
}

function defined<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function nexthop(item: Json, what: string, index: number): Nexthop | null {
  const dev = str(item, 'dev', what, index);
  if (dev === undefined) return null;
  return {
    ...defined('gateway', str(item, 'gateway', what, index)),
    dev,
    weight: num(item, 'weight', what, index) ?? 1,
    onlink: flags(item, what, index).includes('onlink'),
  };
}

/** `ip -4 -j route show table all` (or one table). */
export function parseIpRoutes(text: string): IpRoute[] {
  const what = 'ip -j route';
  return parseArray(text, what).map((item, i) => {
    const dst = str(item, 'dst', what, i);
    if (dst === undefined) throw new ParseError(what, i, 'route without a destination');
    const hops: Nexthop[] = [];
    let linkdown = flags(item, what, i).includes('linkdown');
    const listed = item.nexthops;
    if (listed !== undefined) {
      if (!Array.isArray(listed)) throw new ParseError(what, i, '"nexthops" is not a list');
      for (const hop of listed) {
        if (typeof hop !== 'object' || hop === null) throw new ParseError(what, i, 'bad nexthop');
        const parsed = nexthop(hop as Json, what, i);
        if (parsed) hops.push(parsed);
        linkdown ||= flags(hop as Json, what, i).some((f) => f === 'linkdown' || f === 'dead');
      }
    } else {
      const single = nexthop(item, what, i);
      if (single) hops.push(single);
    }
    return {
      table: str(item, 'table', what, i) ?? 'main',
      // ip prints a host route as a bare address; routes are compared in CIDR form.
      dst: dst === 'default' || dst.includes('/') ? dst : `${dst}/${dst.includes(':') ? 128 : 32}`,
      type: str(item, 'type', what, i) ?? 'unicast',
      ...defined('protocol', str(item, 'protocol', what, i)),
      ...defined('metric', num(item, 'metric', what, i)),
      nexthops: hops,
      linkdown,
    };
  });
}

/** `ip -j addr show`: links with their IPv4 addresses and their stable global IPv6 ones. */
export function parseIpAddr(text: string): Link[] {
  const what = 'ip -j addr';
  return parseArray(text, what).map((item, i) => {
    const name = str(item, 'ifname', what, i);
    const index = num(item, 'ifindex', what, i);
    if (name === undefined || index === undefined) throw new ParseError(what, i, 'link without a name or index');
    const linkFlags = flags(item, what, i);
    const infos = item.addr_info ?? [];
    if (!Array.isArray(infos)) throw new ParseError(what, i, '"addr_info" is not a list');
    const addresses: LinkAddress[] = [];
    const addresses6: string[] = [];
    const owned6: string[] = [];
    for (const info of infos) {
      if (typeof info !== 'object' || info === null) throw new ParseError(what, i, 'bad addr_info entry');
      const entry = info as Json;
      if (entry.family === 'inet6') {
        // The link's stable address beyond it: a source the gateway's own IPv6 connections keep.
        const local = str(entry, 'local', what, i);
        if (local !== undefined && entry.metric === ADDRESS_METRIC) owned6.push(`${local}/${num(entry, 'prefixlen', what, i) ?? 128}`);
        if (local !== undefined && entry.scope === 'global' && entry.temporary !== true && entry.deprecated !== true && entry.tentative !== true) addresses6.push(local);
        continue;
      }
      if (entry.family !== 'inet') continue;
      const local = str(entry, 'local', what, i);
      const prefixlen = num(entry, 'prefixlen', what, i);
      if (local === undefined || prefixlen === undefined) throw new ParseError(what, i, 'IPv4 address without local/prefixlen');
      addresses.push({ local, prefixlen, ...defined('peer', str(entry, 'address', what, i)) });
    }
    return {
      name,
      index,
      up: linkFlags.includes('UP'),
      lowerUp: linkFlags.includes('LOWER_UP'),
      ...defined('mac', str(item, 'address', what, i)),
      pointToPoint: linkFlags.includes('POINTOPOINT') || addresses.some((a) => a.peer !== undefined),
      addresses,
      addresses6,
      owned6,
    };
  });
}

// Checks that need more than one field: collisions between uplinks, the LAN
// against the uplinks, names used in `via` and `exclude`, the mark mask's
// capacity, per-uplink reliability against the targets (with the global
// health settings), the cron syntax. They run on whatever parts of the config
// did parse, even when others failed, so every problem is reported at once.

import { cidrContains, parseCidr, parseIpv4, type Cidr } from '../core/ipv4.js';
import { hex, markLayout } from '../core/marks.js';
import type { ConfigProblem } from '../model/errors.js';
import { MAX_UPLINKS } from '../core/contract.js';
import { DEFAULTS, HEALTH_DEFAULTS, type SectionsOutput } from '../schema/config.js';
import { describe } from '../schema/fields.js';
import { inIpv6Prefix, ipv6NetworksOverlap, isUniqueLocal6, parseIpv6Network, type Ipv6Network } from '../core/ipv6.js';
import { formatIpv6 } from '../core/address.js';

type Uplink = SectionsOutput['uplinks'][number];

/** The parts of a config that parsed, each with its position in the file. */
export interface Parsed {
  readonly lan?: SectionsOutput['lan'];
  readonly uplinks: readonly { readonly index: number; readonly uplink: Uplink }[];
  readonly health?: SectionsOutput['health'];
  /** Each static route's `via` list that parsed, by the route's index. */
  readonly via: readonly { readonly index: number; readonly names: readonly string[] }[];
  /** Each policy's `via` list that parsed, by the policy's index. */
  readonly policyVias: readonly { readonly index: number; readonly names: readonly string[] }[];
  readonly ddns?: NonNullable<SectionsOutput['ddns']>;
  /** The mask the operator wrote (undefined: the default), when it parsed. */
  readonly mask?: number;
  readonly maskWritten: boolean;
  readonly schedule?: string;
  readonly rebalance?: string;
  readonly ha?: NonNullable<SectionsOutput['ha']>;
  /** Whether the document has an ha section at all (parsed or not): an uplink's ha_address needs one. */
  readonly haWritten: boolean;
}

export interface CheckOptions {
  /** Checks a cron expression; injected so this module stays free of the cron package. */
  readonly validateSchedule?: (expression: string) => string | null;
}

export function checkConfig(parsed: Parsed, options: CheckOptions = {}): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const add = (field: string, problem: string, fix: string): void => void problems.push({ field, problem, fix });
  const accepted = checkUplinks(parsed, add);
  const names = accepted.map((u) => u.uplink.name);
  if (accepted.length > 0) {
    for (const { index, names: via } of parsed.via) {
      via.forEach((name, j) => {
        if (!names.includes(name)) add(`static_routes[${index}].via[${j}]`, `no uplink is named "${name}"`, `use one of: ${names.join(', ')}`);
      });
    }
    for (const { index, names: via } of parsed.policyVias) {
      via.forEach((name, j) => {
        if (!names.includes(name)) add(`policies[${index}].via[${j}]`, `no uplink is named "${name}"`, `use one of: ${names.join(', ')}`);
      });
    }
    parsed.ddns?.exclude.forEach((name, i) => {
      if (!names.includes(name)) add(`ddns.exclude[${i}]`, `"${name}" is not an uplink`, `use one of: ${names.join(', ')}`);
    });
  }
  checkMask(parsed, accepted.length, add);
  checkIpv6(parsed, accepted, add);
  checkPolicyPools(parsed, accepted.length, add);
  checkHa(parsed, accepted, add);
  if (parsed.schedule !== undefined) {
    const error = options.validateSchedule?.(parsed.schedule) ?? null;
    if (error) add('scan.schedule', `${describe(parsed.schedule)} ${error}`, 'write a cron expression with an optional seconds field, e.g. "*/30 * * * * *"');
  }
  if (parsed.rebalance !== undefined) {
    const error = options.validateSchedule?.(parsed.rebalance) ?? null;
    if (error) add('balance.rebalance', `${describe(parsed.rebalance)} ${error}`, 'write a cron expression with an optional seconds field, e.g. "0 */15 * * * *"');
  }
  return problems;
}

type Add = (field: string, problem: string, fix: string) => void;

/**
 * Each distinct `via` list of the policies is a pool of its own, numbered
 * after the uplinks' (core/balance/policies.ts): together they must fit in the
 * mask's pool field and in the block of pool tables.
 */
function checkPolicyPools(parsed: Parsed, uplinkCount: number, add: Add): void {
  const lists = new Set(parsed.policyVias.map((p) => p.names.join(' '))).size;
  if (lists === 0) return;
  const mask = parsed.mask ?? DEFAULTS.markMask;
  const poolValues = 2 ** popcount(markLayout(mask).poolMask) - 1;
  const room = Math.min(poolValues, MAX_UPLINKS);
  if (uplinkCount + lists > room) {
    const last = parsed.policyVias[parsed.policyVias.length - 1] as { index: number };
    add(
      `policies[${last.index}].via`,
      `the policies name ${lists} different via lists; with ${uplinkCount} uplinks that is ${uplinkCount + lists} pools, and ${hex(mask)}'s pool field holds ${room}`,
      poolValues < MAX_UPLINKS ? 'give policies that go the same way the same via list, or widen marks.mask (0xfff00000 holds 32 pools)' : 'give policies that go the same way the same via list',
    );
  }
}

function popcount(value: number): number {
  let count = 0;
  for (let v = value >>> 0; v !== 0; v >>>= 1) count += v & 1;
  return count;
}

/** Uplinks that collide with an earlier one (name, interface) are left out of the checks after them. */
function checkUplinks(parsed: Parsed, add: Add): Parsed['uplinks'] {
  const lanInterfaces = parsed.lan?.interfaces ?? [];
  const lanCidrs = (parsed.lan?.subnets ?? []).map((text) => parseCidr(text) as Cidr);
  const accepted: { index: number; uplink: Uplink }[] = [];
  for (const { index, uplink } of parsed.uplinks) {
    const field = `uplinks[${index}]`;
    const earlier = (same: (u: Uplink) => boolean): number | undefined => accepted.find((a) => same(a.uplink))?.index;
    const sameName = earlier((u) => u.name === uplink.name);
    const sameIpparam = earlier((u) => u.ipparam === uplink.ipparam);
    // Two uplinks of one name also share the ipparam that defaults to it: the name is the problem to fix.
    if (sameIpparam !== undefined && sameName === undefined) add(`${field}.ipparam`, `"${uplink.ipparam}" already identifies uplinks[${sameIpparam}]`, 'give each ppp uplink its own ipparam');
    const sameInterface = earlier((u) => u.interface === uplink.interface);
    if (sameName !== undefined) add(`${field}.name`, `"${uplink.name}" is already used by uplinks[${sameName}]`, 'give every uplink its own name');
    if (sameInterface !== undefined) add(`${field}.interface`, `${uplink.interface} is already used by uplinks[${sameInterface}]`, 'give every uplink its own interface');
    if (lanInterfaces.includes(uplink.interface)) add(`${field}.interface`, `${uplink.interface} is also a LAN interface`, 'an interface is either in lan.interfaces or an uplink, not both');
    const gateway = uplink.gateway === undefined ? null : parseIpv4(uplink.gateway);
    const inLan = gateway === null ? undefined : lanCidrs.find((c) => cidrContains(c, gateway));
    if (inLan) add(`${field}.gateway`, `${uplink.gateway} lies inside LAN subnet ${parsed.lan?.subnets[lanCidrs.indexOf(inLan)]}`, 'use the next hop on the uplink side');
    // The uplink's own reliability, else the global one, against its targets (none listed: its gateway alone).
    const reliability = uplink.probe.reliability ?? parsed.health?.reliability ?? HEALTH_DEFAULTS.reliability;
    const targets = uplink.probe.targets?.length ?? 0;
    if (reliability > Math.max(1, targets)) {
      add(`${field}.probe.reliability`, `needs ${reliability} targets to answer but ${targets === 0 ? 'only the gateway is probed' : `only ${targets} are listed`}`, 'list more targets or lower reliability');
    }
    if (sameName === undefined && sameInterface === undefined) accepted.push({ index, uplink });
  }
  // A tier takes over only when every line below it is down: a tier with no line below it would never carry, or carry first.
  for (const { index, uplink } of accepted) {
    if (uplink.tier > 1 && !accepted.some((a) => a.uplink.tier === uplink.tier - 1)) {
      add(`uplinks[${index}].tier`, `tier ${uplink.tier} has no line in tier ${uplink.tier - 1} below it`, 'number the tiers from 1 without gaps: main lines 1, backup lines 2');
    }
  }
  return accepted;
}

/**
 * A pair (ha): the clients' gateway address inside the LAN, on its one
 * interface; each line's shared address outside it and its own; the sync link
 * a link of its own. An uplink's ha_address means nothing without the pair.
 */
function checkHa(parsed: Parsed, accepted: Parsed['uplinks'], add: Add): void {
  const lanCidrs = (parsed.lan?.subnets ?? []).map((text) => parseCidr(text) as Cidr);
  const inLan = (address: string): string | undefined => parsed.lan?.subnets[lanCidrs.findIndex((c) => cidrContains(c, parseIpv4(address) as number))];
  const shared = accepted.filter(({ uplink }) => uplink.haAddress !== undefined);
  const sessions = accepted.filter(({ uplink }) => uplink.haSession !== undefined);
  for (const { index, uplink } of sessions) {
    if (uplink.haSession?.connect && uplink.haSession.disconnect === null)
      add(`uplinks[${index}].ha_connect`, 'is set without ha_disconnect: a gateway that stops being master would keep the session', 'add ha_disconnect, e.g. [/usr/bin/poff, dsl-provider]');
    if (uplink.haSession?.connect === null) add(`uplinks[${index}].ha_disconnect`, 'is set without ha_connect', 'add ha_connect (the command that brings the session up on the master), or leave ha_disconnect out');
    if (uplink.haAddress !== undefined)
      add(`uplinks[${index}].ha_address`, "is set on a line whose session only the master holds (ha_connect): the session's address is its own", 'leave ha_address out (or ha_connect, for a line both gateways are on)');
  }
  if (!parsed.haWritten) {
    for (const { index } of shared) add(`uplinks[${index}].ha_address`, 'is set, but this gateway is not one of a pair (no ha section)', 'add the ha section, or leave ha_address out');
    for (const { index, uplink } of sessions) if (uplink.haSession?.connect) add(`uplinks[${index}].ha_connect`, 'is set, but this gateway is not one of a pair (no ha section)', 'add the ha section, or leave ha_connect out');
    return;
  }
  const { ha, lan } = parsed;
  if (!ha) return;
  if (lan && lan.interfaces.length > 1)
    add('ha.lan_address', `a pair holds one LAN address, on one interface, but lan.interfaces lists ${lan.interfaces.length}`, 'bridge the LAN ports into one interface (e.g. br0) and list only it');
  if (lanCidrs.length > 0 && inLan(ha.lanAddress.address) === undefined)
    add('ha.lan_address', `${ha.lanAddress.address} lies outside lan.subnets (${parsed.lan?.subnets.join(', ')})`, 'use an address of the LAN the clients are on');
  if (parsed.ddns)
    add('ddns', 'is set on one of a pair: both gateways would publish their own lines and overwrite each other', 'leave ddns out of a pair in this version (publish the shared addresses by other means), or leave ha out');
  // The fence and the shared addresses are IPv4; both gateways would announce and route the LAN's IPv6.
  if (lan && lan.ipv6.mode !== 'off')
    add('lan.ipv6.mode', `is ${lan.ipv6.mode}, but a pair of gateways carries IPv4 only in this version (both would announce and route the LAN's IPv6)`, 'set lan.ipv6.mode: off on both gateways of the pair, or leave ha out');
  if (lan?.interfaces.includes(ha.interface)) add('ha.interface', `${ha.interface} is also a LAN interface`, 'give the pair a link of its own (conntrackd floods it with connection updates)');
  for (const { index, uplink } of accepted) {
    if (uplink.interface === ha.interface) add('ha.interface', `${ha.interface} is also the interface of uplinks[${index}]`, 'give the pair a link of its own (conntrackd floods it with connection updates)');
  }
  const seen = new Map<string, number>();
  for (const { index, uplink } of shared) {
    const address = (uplink.haAddress as { address: string }).address;
    const lanSubnet = inLan(address);
    if (lanSubnet !== undefined) add(`uplinks[${index}].ha_address`, `${address} lies inside LAN subnet ${lanSubnet}`, "use an address of the line's provider subnet");
    const other = seen.get(address);
    if (other !== undefined) add(`uplinks[${index}].ha_address`, `${address} is already the shared address of uplinks[${other}]`, 'give each line its own shared address');
    else seen.set(address, index);
  }
}

/**
 * IPv6 across sections: an uplink's ipv6 needs lan.ipv6 on; NPTv6 maps the
 * LAN's prefix onto each line's, so a line's prefix must hold it (no longer)
 * and no two prefixes (the LAN's, the lines') may overlap; a fixed global
 * next hop cannot lie on the LAN.
 */
function checkIpv6(parsed: Parsed, accepted: Parsed['uplinks'], add: Add): void {
  const mode = parsed.lan?.ipv6.mode;
  if (mode === undefined) return;
  const lanPrefix = parsed.lan?.ipv6.prefix ?? null;
  const lan = lanPrefix === null ? null : (parseIpv6Network(lanPrefix) as Ipv6Network);
  // What lies on the LAN: its own prefix (nat), or every announced prefix (prefix mode).
  const onLan = mode === 'prefix' ? accepted.flatMap(({ uplink }) => (uplink.ipv6?.prefix ? [uplink.ipv6.prefix] : [])) : lanPrefix === null ? [] : [lanPrefix];
  if (mode === 'prefix') checkPrefixMode(parsed, accepted, add);
  const seen: { index: number; network: Ipv6Network }[] = [];
  for (const { index, uplink } of accepted) {
    const field = `uplinks[${index}].ipv6`;
    if (uplink.ipv6 === undefined) continue;
    if (mode === 'off') {
      add(field, 'has no effect while lan.ipv6.mode is off', 'set lan.ipv6.mode: nat (with lan.ipv6.prefix) or prefix, or remove it');
      continue;
    }
    const { gateway, prefix, targets } = uplink.ipv6;
    targets.forEach((target, j) => {
      const inside = onLan.find((p) => inIpv6Prefix(p, target));
      if (inside !== undefined) add(`${field}.probe.targets[${j}]`, `${target} lies inside the LAN's prefix ${inside}`, "probe an address beyond the line, e.g. a public resolver or the provider's router");
    });
    const gatewayInside = gateway === null ? undefined : onLan.find((p) => inIpv6Prefix(p, gateway));
    if (gatewayInside !== undefined) add(`${field}.gateway`, `${gateway} lies inside the LAN's prefix ${gatewayInside}`, "use the next hop on the uplink side, e.g. its router's link-local address fe80::1");
    if (prefix === null) continue;
    const network = parseIpv6Network(prefix) as Ipv6Network;
    if (lan !== null && ipv6NetworksOverlap(lan, network)) {
      add(`${field}.prefix`, `${prefix} overlaps the LAN's prefix ${lanPrefix}`, "give the prefix your provider routes to this line; the LAN's own prefix must lie outside it");
      continue;
    }
    if (lan !== null && network.prefix > lan.prefix) {
      add(`${field}.prefix`, `${prefix} is longer than the LAN's prefix ${lanPrefix}: NPTv6 maps the LAN's prefix onto it, host bits and all`, `give a prefix of /${lan.prefix} or shorter`);
      continue;
    }
    const clash = seen.find((other) => ipv6NetworksOverlap(other.network, network));
    if (clash) add(`${field}.prefix`, `${prefix} overlaps uplinks[${clash.index}].ipv6.prefix`, 'give each line the prefix routed to it over that line');
    else seen.push({ index, network });
  }
}

/**
 * Prefix mode announces each line's prefix on one link for hosts to
 * autoconfigure in: one LAN interface, a global /64 per line (the internet
 * must route it back to that line), and at least one line with one.
 */
function checkPrefixMode(parsed: Parsed, accepted: Parsed['uplinks'], add: Add): void {
  const interfaces = parsed.lan?.interfaces ?? [];
  if (interfaces.length > 1)
    add('lan.interfaces', `lists ${interfaces.length} interfaces, and prefix mode announces each line's /64 on one link`, 'list the one interface your hosts are on (a bridge joins several ports), or use lan.ipv6.mode: nat');
  for (const { index, uplink } of accepted) {
    if (uplink.ipv6 === undefined) continue;
    const field = `uplinks[${index}].ipv6.prefix`;
    const { prefix } = uplink.ipv6;
    if (prefix === null) {
      add(
        field,
        'is missing: prefix mode announces the prefix routed to you over this line',
        `give the /64 your provider routes to ${uplink.name}, e.g. 2001:db8:1:100::/64, or remove uplinks[${index}].ipv6 to leave the line out of the LAN's IPv6`,
      );
      continue;
    }
    const network = parseIpv6Network(prefix) as Ipv6Network;
    if (isUniqueLocal6(network.network)) add(field, `${prefix} is unique local: the internet cannot route it back to ${uplink.name}`, 'give the global prefix your provider routes to this line');
    else if (network.prefix !== 64)
      add(field, `${prefix} is a /${network.prefix}: prefix mode announces it for autoconfiguration (SLAAC), which takes a /64`, `give the /64 of it the LAN uses, e.g. ${formatIpv6(network.network)}/64`);
  }
  if (accepted.every(({ uplink }) => !uplink.ipv6?.prefix))
    add('lan.ipv6.mode', 'is prefix, and no line has a prefix to announce', "give each IPv6 line the /64 routed to it (uplinks[].ipv6.prefix), or use mode: nat with the LAN's own prefix");
}

function checkMask(parsed: Parsed, uplinkCount: number, add: Add): void {
  if (!parsed.maskWritten) {
    const capacity = markLayout(DEFAULTS.markMask).capacity;
    if (uplinkCount > capacity) {
      add(
        'marks.mask',
        `the default mask ${hex(DEFAULTS.markMask)} holds ${capacity} uplinks, not ${uplinkCount}`,
        'set marks.mask to 10 bits no other software here uses: 0xffc00000 when Tailscale (0xff0000) is not installed, or 0xff000003 when nothing uses the low bits',
      );
    }
    return;
  }
  if (parsed.mask === undefined) return;
  const layout = markLayout(parsed.mask);
  if (layout.capacity < Math.max(1, uplinkCount)) {
    add('marks.mask', `${hex(parsed.mask)} holds ${layout.capacity} uplinks, fewer than the ${uplinkCount} configured`, 'widen the mask: each of its two fields needs enough bits for every uplink plus one');
  }
}

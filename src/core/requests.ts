// Checks of what operators and pppd send the daemon (client addresses,
// assignments, hook arguments): the control protocol (schema/control.ts)
// and the CLI use them, so a bad value gets the same message either way.

import type { Config } from '../model/config.js';
import { RequestError } from '../model/errors.js';
import { inLanSubnets } from './clients.js';
import { formatIpv6, parseIpv6 } from './address.js';
import { isUnicastHost, parseIpv4 } from './ipv4.js';
import { isRoutable6 } from './ipv6.js';
import { isInterfaceName } from './names.js';

/** pppd's ip-up/ip-down arguments: interface tty speed local-IP remote-IP [ipparam]. */
export interface PppHook {
  readonly cmd: 'hook';
  readonly event: 'ip-up' | 'ip-down';
  readonly interface: string;
  readonly tty: string;
  readonly speed: string;
  readonly local: string;
  readonly remote: string;
  readonly ipparam?: string;
}

/** A client address as typed by an operator: a unicast IPv4 address. */
export function checkClientAddress(ip: unknown): string {
  const address = typeof ip === 'string' ? parseIpv4(ip) : null;
  if (address === null || !isUnicastHost(address)) throw new RequestError(`${JSON.stringify(ip)?.slice(0, 60)} is not a unicast IPv4 address`);
  return ip as string;
}

/**
 * The address `explain` is asked about: a unicast IPv4 address, or an IPv6
 * address a LAN host can have (not link-local or multicast), in its canonical
 * form (the neighbour table's, which the host records keep).
 */
export function checkExplainAddress(ip: unknown): string {
  const v6 = typeof ip === 'string' && ip.includes(':') ? parseIpv6(ip) : null;
  if (v6 !== null && isRoutable6(v6)) return formatIpv6(v6);
  if (typeof ip === 'string' && ip.includes(':')) throw new RequestError(`${JSON.stringify(ip).slice(0, 60)} is not a unicast IPv4 address or an IPv6 address a LAN host can have (not link-local or multicast)`);
  return checkClientAddress(ip);
}

/** An operator's assignment must name a configured uplink and, when lan.subnets is set, an address inside it. */
export function checkAssignment(config: Config, ip: string, uplink: string): void {
  if (!config.uplinks.some((u) => u.name === uplink)) {
    throw new RequestError(`no uplink named "${uplink}"; configured: ${config.uplinks.map((u) => u.name).join(', ')}`);
  }
  const address = parseIpv4(checkClientAddress(ip)) as number;
  if (!inLanSubnets(config)(address)) {
    throw new RequestError(`${ip} is outside lan.subnets (${config.lan.subnets.join(', ')})`);
  }
}

const PRINTABLE = /^[\x21-\x7e]{0,64}$/;

/** pppd's arguments, checked field by field: they go into logs, store and commands. */
export function checkHook(body: Record<string, unknown>): PppHook {
  const { event, tty, speed, local, remote, ipparam } = body;
  const iface = body.interface;
  if (event !== 'ip-up' && event !== 'ip-down') throw new RequestError(`${JSON.stringify(event)?.slice(0, 40)} is not ip-up or ip-down`);
  if (typeof iface !== 'string' || !isInterfaceName(iface)) throw new RequestError(`${JSON.stringify(iface)?.slice(0, 40)} is not an interface name`);
  for (const [name, value] of [
    ['tty', tty],
    ['speed', speed],
  ] as const) {
    if (typeof value !== 'string' || !PRINTABLE.test(value)) throw new RequestError(`${name} ${JSON.stringify(value)?.slice(0, 40)} is not plain text`);
  }
  for (const [name, value] of [
    ['local', local],
    ['remote', remote],
  ] as const) {
    if (typeof value !== 'string' || (value !== '' && parseIpv4(value) === null)) throw new RequestError(`${name} address ${JSON.stringify(value)?.slice(0, 40)} is not an IPv4 address`);
  }
  if (ipparam !== undefined && (typeof ipparam !== 'string' || !/^[A-Za-z0-9_.:-]{0,64}$/.test(ipparam))) {
    throw new RequestError(`ipparam ${JSON.stringify(ipparam)?.slice(0, 40)} is not plain text`);
  }
  return { cmd: 'hook', event, interface: iface, tty: tty as string, speed: speed as string, local: local as string, remote: remote as string, ...(ipparam ? { ipparam } : {}) };
}

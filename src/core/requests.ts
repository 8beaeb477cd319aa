// Requests on the control socket (newline-delimited JSON). Everything that
// arrives is validated here before the daemon acts on it.

import type { Config } from '../model/config.js';
import { RequestError } from '../model/errors.js';
import { cidrContains, isUnicastHost, parseCidr, parseIpv4, type Cidr } from './ipv4.js';
import { isUplinkName } from './names.js';

export type ControlRequest =
  | { readonly cmd: 'ping' }
  | { readonly cmd: 'pools' }
  | { readonly cmd: 'status' }
  | { readonly cmd: 'scan' }
  | { readonly cmd: 'reload' }
  | { readonly cmd: 'assign'; readonly ip: string; readonly uplink: string }
  | { readonly cmd: 'release'; readonly ip: string };

export type ControlResponse =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: { readonly kind: 'request' | 'config' | 'internal'; readonly message: string } };

/** Requests larger than this are refused without being parsed. */
export const MAX_REQUEST_BYTES = 64 * 1024;

/** A client address as typed by an operator: a unicast IPv4 address. */
export function checkClientAddress(ip: unknown): string {
  const address = typeof ip === 'string' ? parseIpv4(ip) : null;
  if (address === null || !isUnicastHost(address)) throw new RequestError(`${JSON.stringify(ip)?.slice(0, 60)} is not a unicast IPv4 address`);
  return ip as string;
}

export function parseRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new RequestError('request is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RequestError('request must be a JSON object');
  const body = value as Record<string, unknown>;
  const allowed = (keys: string[]): void => {
    const extra = Object.keys(body).filter((k) => k !== 'cmd' && !keys.includes(k));
    if (extra.length > 0) throw new RequestError(`unexpected field ${JSON.stringify(extra[0]).slice(0, 60)}`);
  };
  switch (body.cmd) {
    case 'ping':
    case 'pools':
    case 'status':
    case 'scan':
    case 'reload':
      allowed([]);
      return { cmd: body.cmd };
    case 'assign': {
      allowed(['ip', 'uplink']);
      const ip = checkClientAddress(body.ip);
      if (typeof body.uplink !== 'string' || !isUplinkName(body.uplink)) throw new RequestError(`${JSON.stringify(body.uplink)?.slice(0, 60)} is not an uplink name`);
      return { cmd: 'assign', ip, uplink: body.uplink };
    }
    case 'release':
      allowed(['ip']);
      return { cmd: 'release', ip: checkClientAddress(body.ip) };
    default:
      throw new RequestError(`unknown command ${JSON.stringify(body.cmd)?.slice(0, 60)}`);
  }
}

/** An operator's assignment must name a configured uplink and, when lan.subnets is set, an address inside it. */
export function checkAssignment(config: Config, ip: string, uplink: string): void {
  if (!config.uplinks.some((u) => u.name === uplink)) {
    throw new RequestError(`no uplink named "${uplink}"; configured: ${config.uplinks.map((u) => u.name).join(', ')}`);
  }
  const address = parseIpv4(checkClientAddress(ip)) as number;
  const subnets = config.lan.subnets.map((s) => parseCidr(s) as Cidr);
  if (subnets.length > 0 && !subnets.some((s) => cidrContains(s, address))) {
    throw new RequestError(`${ip} is outside lan.subnets (${config.lan.subnets.join(', ')})`);
  }
}

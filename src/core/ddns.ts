// Dynamic DNS, the pure part: which A (and, with IPv6 on, AAAA) records the
// name should have, what the server's answer says it has, and the nsupdate
// script that makes one into the other in a single transaction (RFC 2136:
// delete the RRsets, add each record, send). Nothing here runs a command.

import type { DdnsConfig } from '../model/config.js';
import { compareAddresses, formatAddress, parseAddress } from './address.js';

/** The record types the name is kept in: A, and AAAA while lan.ipv6.mode is on. */
export type RecordType = 'A' | 'AAAA';

/** What the publisher knows of one uplink after a run. */
export interface PublishableUplink {
  readonly name: string;
  readonly index: number;
  readonly up: boolean;
  /** The validated public address, or null while it is unknown. */
  readonly publicAddress: string | null;
  /** The line's IPv6 (while IPv6 is on): whether it carries IPv6 now, and the address it is reached at (core/uplinks6.ts inbound). */
  readonly ipv6?: { readonly up: boolean; readonly address: string | null };
}

/**
 * The record set: the public addresses of the live uplinks that are not
 * excluded, and the inbound IPv6 addresses of those whose IPv6 is live;
 * sorted (IPv4 first), each once.
 */
export function wantedRecords(config: DdnsConfig, uplinks: readonly PublishableUplink[]): string[] {
  const published = uplinks.filter((u) => !config.exclude.includes(u.name));
  const addresses = [...published.filter((u) => u.up && u.publicAddress !== null).map((u) => u.publicAddress as string), ...published.flatMap((u) => (u.ipv6?.up && u.ipv6.address !== null ? [u.ipv6.address] : []))];
  return sortAddresses([...new Set(addresses)]);
}

/** Addresses in their canonical text, IPv4 before IPv6, each by value. */
export function sortAddresses(addresses: readonly string[]): string[] {
  const parsed = addresses.flatMap((text) => {
    const address = parseAddress(text);
    return address ? [address] : [];
  });
  return parsed.sort(compareAddresses).map(formatAddress);
}

/** The record type an address is published in. */
const typeOf = (address: string): RecordType => (address.includes(':') ? 'AAAA' : 'A');

/**
 * The uplink a query and update leave by: any live one will do (excluded ones
 * too). The first, and after each failure the next, so a server that is
 * unreachable through one line only is still reached.
 */
export function sendingUplink(uplinks: readonly PublishableUplink[], failures = 0): PublishableUplink | null {
  const live = uplinks.filter((u) => u.up);
  return live.length === 0 ? null : (live[failures % live.length] as PublishableUplink);
}

export interface ServerRecords {
  readonly addresses: readonly string[];
  /** The TTLs the server holds, each once (none when the name has no such records). */
  readonly ttls: readonly number[];
}

export type ServerAnswer = { readonly records: ServerRecords } | { readonly error: string };

/**
 * Reads `dig +noall +comments +answer NAME TYPE`, one or more of them one
 * after the other: each header's status and the answers' A and AAAA records
 * for NAME. NXDOMAIN and an empty answer mean no records; any other status
 * (REFUSED, SERVFAIL, NOTAUTH) is an error, never "empty", and so is a
 * header missing (`queries` of them were asked).
 */
export function parseDigAnswer(output: string, name: string, queries = 1): ServerAnswer {
  const statuses = [...output.matchAll(/->>HEADER<<-.*\bstatus: ([A-Z]+)/g)].map((m) => m[1] as string);
  if (statuses.length < queries) return { error: `no answer from the server${output.trim() ? `: ${output.trim().split('\n').pop()?.slice(0, 120)}` : ''}` };
  const refused = statuses.find((status) => status !== 'NOERROR' && status !== 'NXDOMAIN');
  if (refused) return { error: `the server answered ${refused}` };
  const addresses: string[] = [];
  const ttls = new Set<number>();
  for (const line of output.split('\n')) {
    if (line.startsWith(';') || line.trim() === '') continue;
    const [owner, ttlText, klass, type, data] = line.trim().split(/\s+/);
    if (owner?.toLowerCase().replace(/\.$/, '') !== name || klass !== 'IN' || (type !== 'A' && type !== 'AAAA')) continue;
    const address = data === undefined ? null : parseAddress(data);
    if (address === null || typeOf(formatAddress(address)) !== type || !/^[0-9]+$/.test(ttlText ?? '')) continue;
    addresses.push(formatAddress(address));
    ttls.add(Number(ttlText));
  }
  return { records: { addresses: sortAddresses([...new Set(addresses)]), ttls: [...ttls].sort((a, b) => a - b) } };
}

/** Whether the server already holds exactly the wanted set (with our TTL): then nothing is sent. */
export function inSync(config: DdnsConfig, wanted: readonly string[], server: ServerRecords): boolean {
  if (wanted.length !== server.addresses.length || wanted.some((a, i) => a !== server.addresses[i])) return false;
  return wanted.length === 0 || server.ttls.every((ttl) => ttl === config.ttl);
}

/** One nsupdate transaction replacing the name's records of `types` with `records` (none: the name's records of those types go). */
export function updateScript(config: DdnsConfig, records: readonly string[], types: readonly RecordType[] = ['A']): string {
  return [
    `server ${config.server} ${config.port}`,
    `zone ${config.zone}`,
    ...types.map((type) => `update delete ${config.name}. ${type}`),
    ...records.filter((address) => types.includes(typeOf(address))).map((address) => `update add ${config.name}. ${config.ttl} ${typeOf(address)} ${address}`),
    'send',
    '',
  ].join('\n');
}

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 300_000;

/** Delay before retrying after `failures` failures in a row: 1 s, 2 s, 4 s … at most 5 min. */
export function backoffMs(failures: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, failures - 1));
}

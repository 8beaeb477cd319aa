// Dynamic DNS, the pure part: which A records the name should have, what the
// server's answer says it has, and the nsupdate script that makes one into the
// other in a single transaction (RFC 2136: delete the RRset, add each record,
// send). Nothing here runs a command.

import type { DdnsConfig } from '../model/config.js';
import { formatIpv4, parseIpv4 } from './ipv4.js';

/** What the publisher knows of one uplink after a run. */
export interface PublishableUplink {
  readonly name: string;
  readonly index: number;
  readonly up: boolean;
  /** The validated public address, or null while it is unknown. */
  readonly publicAddress: string | null;
}

/** The record set: the public addresses of the live uplinks that are not excluded, sorted, each once. */
export function wantedRecords(config: DdnsConfig, uplinks: readonly PublishableUplink[]): string[] {
  const addresses = uplinks.filter((u) => u.up && !config.exclude.includes(u.name) && u.publicAddress !== null).map((u) => u.publicAddress as string);
  return sortAddresses([...new Set(addresses)]);
}

export function sortAddresses(addresses: readonly string[]): string[] {
  return [...addresses].sort((a, b) => (parseIpv4(a) as number) - (parseIpv4(b) as number));
}

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
  /** The TTL the server holds (null when the name has no A records). */
  readonly ttl: number | null;
}

export type ServerAnswer = { readonly records: ServerRecords } | { readonly error: string };

/**
 * Reads `dig +noall +comments +answer NAME A`: the header's status and the
 * answer's A records for NAME. NXDOMAIN and an empty answer mean no records;
 * any other status (REFUSED, SERVFAIL, NOTAUTH) is an error, never "empty".
 */
export function parseDigAnswer(output: string, name: string): ServerAnswer {
  const status = /->>HEADER<<-.*\bstatus: ([A-Z]+)/.exec(output)?.[1];
  if (!status) return { error: `no answer from the server${output.trim() ? `: ${output.trim().split('\n').pop()?.slice(0, 120)}` : ''}` };
  if (status !== 'NOERROR' && status !== 'NXDOMAIN') return { error: `the server answered ${status}` };
  const addresses: string[] = [];
  let ttl: number | null = null;
  for (const line of output.split('\n')) {
    if (line.startsWith(';') || line.trim() === '') continue;
    const [owner, ttlText, klass, type, data] = line.trim().split(/\s+/);
    if (owner?.toLowerCase().replace(/\.$/, '') !== name || klass !== 'IN' || type !== 'A') continue;
    const address = data === undefined ? null : parseIpv4(data);
    if (address === null || !/^[0-9]+$/.test(ttlText ?? '')) continue;
    addresses.push(formatIpv4(address));
    ttl = Number(ttlText);
  }
  return { records: { addresses: sortAddresses([...new Set(addresses)]), ttl } };
}

/** Whether the server already holds exactly the wanted set (with our TTL): then nothing is sent. */
export function inSync(config: DdnsConfig, wanted: readonly string[], server: ServerRecords): boolean {
  if (wanted.length !== server.addresses.length || wanted.some((a, i) => a !== server.addresses[i])) return false;
  return wanted.length === 0 || server.ttl === config.ttl;
}

/** One nsupdate transaction replacing the name's A records with `records` (none: the name's A records go). */
export function updateScript(config: DdnsConfig, records: readonly string[]): string {
  return [`server ${config.server} ${config.port}`, `zone ${config.zone}`, `update delete ${config.name}. A`, ...records.map((address) => `update add ${config.name}. ${config.ttl} A ${address}`), 'send', ''].join('\n');
}

const BACKOFF_MIN_MS = 1000;
const BACKOFF_MAX_MS = 300_000;

/** Delay before retrying after `failures` failures in a row: 1 s, 2 s, 4 s … at most 5 min. */
export function backoffMs(failures: number): number {
  return Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** Math.max(0, failures - 1));
}

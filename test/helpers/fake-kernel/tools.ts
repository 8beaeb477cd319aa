// The fake's small tools: sysctl (keys of interfaces come and go with their
// links), conntrack (entries with their marks) and the one nft command the
// iptables backend uses (deleting a bare table).
// Measured: `sysctl -e` leaves out keys that do not exist; `sysctl -w` sets
// every key it can and fails at the end for the others; `conntrack -D` exits
// 1 when nothing matched (DESIGN.md §6); an nft file is one transaction.

import { hexOf, parseNumber, ToolFailure } from './failure.js';
import type { Netfilter } from './netfilter.js';
import { cidrContains, parseCidr, parseIpv4 } from '../../../src/core/ipv4.js';

export interface Connection {
  readonly proto: 'tcp' | 'udp';
  readonly src: string;
  readonly dst: string;
  readonly sport: number;
  readonly dport: number;
  readonly mark: number;
  /** The address its source was translated to; absent: not translated. */
  readonly nat?: string;
}

const CONNTRACK_BANNER = 'conntrack v1.4.7 (conntrack-tools)';

/** `sysctl -e KEY…` */
export function readSysctls(sysctls: ReadonlyMap<string, string>, keys: readonly string[]): string {
  return keys.flatMap((key) => (sysctls.has(key) ? [`${key} = ${sysctls.get(key)}\n`] : [])).join('');
}

/** `sysctl -q -w KEY=VALUE…`; null when an argument is not an assignment. */
export function writeSysctls(sysctls: Map<string, string>, assignments: readonly string[]): null | undefined {
  if (assignments.some((a) => !a.includes('='))) return null;
  const missing: string[] = [];
  for (const assignment of assignments) {
    const at = assignment.indexOf('=');
    const key = assignment.slice(0, at);
    if (sysctls.has(key)) sysctls.set(key, assignment.slice(at + 1));
    else missing.push(`sysctl: cannot stat /proc/sys/${key.replace(/\./g, '/')}: No such file or directory\n`);
  }
  if (missing.length > 0) throw new ToolFailure(1, missing.join(''));
  return undefined;
}

function describe(c: Connection): string {
  return `${c.proto}      ${c.proto === 'tcp' ? 6 : 17} 431999 ${c.proto === 'tcp' ? 'ESTABLISHED ' : ''}src=${c.src} dst=${c.dst} sport=${c.sport} dport=${c.dport} src=${c.dst} dst=${c.nat ?? c.src} sport=${c.dport} dport=${c.sport} mark=${c.mark} use=1\n`;
}

/**
 * The filter of a conntrack command after its verb: `-f ipv4|ipv6`, `-s ADDRESS[/LEN]`,
 * `-q ADDRESS` (the reply's destination; the real tool takes no network there) and
 * `--mark V[/M]`, each at most once; null for anything else.
 */
function connectionFilter(options: readonly string[]): ((c: Connection) => boolean) | null {
  const tests: ((c: Connection) => boolean)[] = [];
  for (let i = 0; i < options.length; i += 2) {
    const [option, value] = [options[i], options[i + 1] ?? ''];
    if (option === '-f' && (value === 'ipv4' || value === 'ipv6')) {
      tests.push((c) => c.src.includes(':') === (value === 'ipv6'));
      continue;
    }
    if (option === '-s') {
      const network = parseCidr(value.includes('/') ? value : `${value}/32`);
      if (network === null) return null;
      tests.push((c) => cidrContains(network, parseIpv4(c.src) ?? -1));
    } else if (option === '-q' && parseIpv4(value) !== null) {
      tests.push((c) => (c.nat ?? c.src) === value);
    } else if (option === '--mark') {
      const [v, m] = value.split('/');
      const mark = parseNumber(v ?? '');
      const mask = m === undefined ? 0xffffffff : parseNumber(m);
      if (mark === null || mask === null) return null;
      tests.push((c) => (c.mark & mask) >>> 0 === (mark & mask) >>> 0);
    } else {
      return null;
    }
  }
  return (c) => tests.every((t) => t(c));
}

/** `conntrack -L [filter]`; null when the filter does not parse. */
export function listConnections(connections: readonly Connection[], options: readonly string[] = []): { stdout: string; stderr: string; exitCode: number } | null {
  const filter = connectionFilter(options);
  if (filter === null) return null;
  const shown = connections.filter(filter);
  return { stdout: shown.map(describe).join(''), stderr: `${CONNTRACK_BANNER}: ${shown.length} flow entries have been shown.\n`, exitCode: 0 };
}

/** `conntrack -D filter`: the connections kept, and what the tool prints; null when the filter does not parse. */
export function deleteConnections(connections: readonly Connection[], options: readonly string[]): { kept: Connection[]; stdout: string; stderr: string; exitCode: number } | null {
  const filter = connectionFilter(options);
  if (filter === null || options.length === 0) return null;
  const gone = connections.filter(filter);
  return {
    kept: connections.filter((c) => !gone.includes(c)),
    stdout: gone.map(describe).join(''),
    stderr: `${CONNTRACK_BANNER}: ${gone.length} flow entries have been deleted.\n`,
    exitCode: gone.length > 0 ? 0 : 1,
  };
}

export function describeConnection(c: Connection): string {
  return `${c.proto} ${c.src}:${c.sport} -> ${c.dst}:${c.dport} mark ${hexOf(c.mark)}`;
}

/** `nft -f -` holding `delete table ip NAME` (or `ip6 NAME`) lines only; null for any other line. */
export function nftDeleteTables(netfilter: Netfilter, netfilter6: Netfilter, input: string): null | undefined {
  const lines = input.split('\n').filter((l) => l.trim() !== '');
  const tables = lines.map((line) => /^delete table (ip6?) ([a-z]+)$/.exec(line.trim()));
  if (tables.some((t) => t === null)) return null;
  const found = (tables as RegExpExecArray[]).map(([, family, name]) => ({ family: family as string, name: name as string, of: family === 'ip6' ? netfilter6 : netfilter }));
  const absent = found.find((t) => !t.of.has(t.name));
  if (absent) throw new ToolFailure(1, `Error: No such file or directory\ndelete table ${absent.family} ${absent.name}\n${' '.repeat(14 + absent.family.length)}${'^'.repeat(absent.name.length)}\n`);
  for (const table of found) table.of.deleteTable(table.name);
  return undefined;
}

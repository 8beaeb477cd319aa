// Reading the kernel's state and loading payloads into it. Reads run in
// parallel; writes run in the fixed order of DESIGN.md §1: sysctls, then one
// ipset restore, one iptables-restore --noflush, one ip -batch, and finally
// the ipset destroy a flush needs once nothing references the set.

import { CLIENT_SET, CLIENT_SET_NEXT, NETFILTER_TABLES } from '../core/contract.js';
import type { Config } from '../model/config.js';
import type { IpsetDump, KernelState, Link } from '../model/kernel.js';
import type { Payloads } from '../render/payloads.js';
import { parseIpAddr, parseIpRoutes, parseIpRules } from '../parse/ip-json.js';
import { parseIptablesSave } from '../parse/iptables-save.js';
import { parseIpsetSave } from '../parse/ipset.js';
import type { Runner } from './exec.js';

export async function readLinks(runner: Runner): Promise<Link[]> {
  return parseIpAddr((await runner.run(['ip', '-j', 'addr', 'show'])).stdout);
}

export async function readRules(runner: Runner): Promise<KernelState['rules']> {
  return parseIpRules((await runner.run(['ip', '-j', 'rule', 'show'])).stdout);
}

export async function readRoutes(runner: Runner): Promise<KernelState['routes']> {
  return parseIpRoutes((await runner.run(['ip', '-4', '-j', 'route', 'show', 'table', 'all'])).stdout);
}

/**
 * All tables at once: `iptables-save -t nat` prints a nat table even when none
 * exists, plain iptables-save prints only the tables that do, which is what
 * `flush` needs to know to leave them as it found them.
 */
export async function readNetfilter(runner: Runner): Promise<KernelState['netfilter']> {
  const tables = parseIptablesSave((await runner.run(['iptables-save'])).stdout);
  return tables.filter((t) => (NETFILTER_TABLES as readonly string[]).includes(t.name));
}

async function readSets(runner: Runner): Promise<IpsetDump> {
  const names = (await runner.run(['ipset', 'list', '-n'])).stdout.split('\n').map((n) => n.trim());
  const ours = [CLIENT_SET, CLIENT_SET_NEXT].filter((name) => names.includes(name));
  const dumps = await Promise.all(ours.map((name) => runner.run(['ipset', 'save', name])));
  const parsed = dumps.map((dump) => parseIpsetSave(dump.stdout));
  return { sets: parsed.flatMap((p) => p.sets), entries: parsed.flatMap((p) => p.entries) };
}

/** Reads the named sysctls; keys that do not exist (an absent interface) are left out. */
export async function readSysctls(runner: Runner, keys: readonly string[]): Promise<Record<string, string>> {
  if (keys.length === 0) return {};
  const result = await runner.run(['sysctl', '-e', ...keys]);
  const values: Record<string, string> = {};
  for (const line of result.stdout.split('\n')) {
    const match = /^(\S+) = (.*)$/.exec(line);
    if (match) values[match[1] as string] = (match[2] as string).trim();
  }
  return values;
}

/** The sysctl keys a config can touch, so their current values are known before any change. */
export function sysctlKeys(config: Config): string[] {
  return ['net.ipv4.ip_forward', ...config.uplinks.map((u) => `net.ipv4.conf.${u.interface}.rp_filter`)];
}

export async function observeKernel(runner: Runner, config: Config): Promise<KernelState> {
  const [netfilter, sets, rules, routes, links, sysctls] = await Promise.all([
    readNetfilter(runner),
    readSets(runner),
    readRules(runner),
    readRoutes(runner),
    readLinks(runner),
    readSysctls(runner, sysctlKeys(config)),
  ]);
  return { netfilter, sets, rules, routes, links, sysctls };
}

/**
 * For `dispatcher plan` without root: whatever can be read (ip, sysctl work
 * unprivileged; iptables-save and ipset do not) and the names of what could not.
 */
export async function observeReadable(runner: Runner, config: Config): Promise<{ state: KernelState; unreadable: string[] }> {
  const unreadable: string[] = [];
  const attempt = <T>(what: string, read: Promise<T>, fallback: T): Promise<T> =>
    read.catch(() => {
      unreadable.push(what);
      return fallback;
    });
  const [netfilter, sets, rules, routes, links, sysctls] = await Promise.all([
    attempt('iptables-save', readNetfilter(runner), []),
    attempt('ipset', readSets(runner), { sets: [], entries: [] }),
    attempt('ip rule', readRules(runner), []),
    attempt('ip route', readRoutes(runner), []),
    attempt('ip addr', readLinks(runner), []),
    attempt('sysctl', readSysctls(runner, sysctlKeys(config)), {}),
  ]);
  return { state: { netfilter, sets, rules, routes, links, sysctls }, unreadable };
}

export async function writeSysctls(runner: Runner, values: Readonly<Record<string, string>>): Promise<void> {
  const assignments = Object.entries(values).map(([key, value]) => `${key}=${value}`);
  if (assignments.length > 0) await runner.run(['sysctl', '-q', '-w', ...assignments]);
}

/** Loads payloads in dependency order; the first failing command stops the run (the next run resyncs). */
export async function applyPayloads(runner: Runner, payloads: Payloads): Promise<void> {
  await writeSysctls(runner, payloads.sysctls);
  if (payloads.ipsetBefore) await runner.run(['ipset', '-exist', 'restore'], { input: payloads.ipsetBefore });
  if (payloads.iptables) await runner.run(['iptables-restore', '--wait', '10', '--noflush'], { input: payloads.iptables });
  if (payloads.ip) await runner.run(['ip', '-batch', '-'], { input: payloads.ip });
  if (payloads.ipsetAfter) await runner.run(['ipset', '-exist', 'restore'], { input: payloads.ipsetAfter });
}

/** A table with nothing in it but the built-in chains at policy ACCEPT. */
function isBare(table: KernelState['netfilter'][number]): boolean {
  return table.rules.length === 0 && table.chains.every((c) => c.policy === 'ACCEPT');
}

/**
 * Deletes the named netfilter tables when they are bare, so a flush leaves
 * `iptables-save` as it was before the dispatcher created them. Only the
 * nf_tables backend can remove a table; legacy tables stay (they are module
 * state, invisible until used). Returns the tables deleted.
 */
export async function deleteBareTables(runner: Runner, names: readonly string[]): Promise<string[]> {
  if (names.length === 0) return [];
  const version = (await runner.run(['iptables', '-V'])).stdout;
  if (!version.includes('nf_tables')) return [];
  const tables = await readNetfilter(runner);
  const bare = names.filter((name) => {
    const table = tables.find((t) => t.name === name);
    return table !== undefined && isBare(table);
  });
  if (bare.length > 0) await runner.run(['nft', '-f', '-'], { input: bare.map((name) => `delete table ip ${name}\n`).join('') });
  return bare;
}

// Reading the kernel's state and loading payloads into it. The shared part
// (ip rules, routes, links, sysctls) is read and written here, whatever the
// netfilter backend; the packet filter's part belongs to the backend
// (src/backends/), and the engine puts the two together: reads in parallel,
// writes in the order of DESIGN.md §1 — sysctls, the backend's payload, one
// ip -batch.
//
// TRANSITIONAL: observeKernel, observeReadable, readNetfilter, applyPayloads
// and deleteBareTables below still run the iptables backend's commands
// themselves (the same commands as src/backends/iptables/adapter.ts): src/system/
// may not import src/backends/ (.dependency-cruiser.cjs), so they cannot
// delegate. They go once the engine and the CLI call the backend instead.

import { CLIENT_SET, CLIENT_SET_NEXT, NETFILTER_TABLES } from '../core/contract.js';
import { familyContract, familySysctls, type Family } from '../core/family.js';
import type { Config } from '../model/config.js';
import type { IpsetDump, KernelState, Link } from '../model/kernel.js';
import type { RoutingState } from '../model/plan.js';
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

export async function readRoutes(runner: Runner, family: Family = 'ipv4'): Promise<KernelState['routes']> {
  return parseIpRoutes((await runner.run(['ip', familyContract(family).ipFlag, '-j', 'route', 'show', 'table', 'all'])).stdout);
}

/**
 * TRANSITIONAL (`dispatcher exec`, observeKernel; becomes backend.observe +
 * backend.groupMarked). All tables at once: `iptables-save -t nat` prints a
 * nat table even when none exists, plain iptables-save prints only the tables
 * that do, which is what `flush` needs to know to leave them as it found them.
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
  return Object.keys(familySysctls(config.uplinks.map((u) => u.interface)));
}

/** The shared kernel state: ip rules, routes, links and the sysctls a config can touch. */
export async function observeRouting(runner: Runner, config: Config): Promise<RoutingState> {
  const [rules, routes, links, sysctls] = await Promise.all([readRules(runner), readRoutes(runner), readLinks(runner), readSysctls(runner, sysctlKeys(config))]);
  return { rules, routes, links, sysctls };
}

/** What-could-not-be-read names, with a fallback for each read. */
function attempts(unreadable: string[]) {
  return <T>(what: string, read: Promise<T>, fallback: T): Promise<T> =>
    read.catch(() => {
      unreadable.push(what);
      return fallback;
    });
}

/** For `dispatcher plan` without root: the shared state as far as it can be read (ip and sysctl work unprivileged). */
export async function observeRoutingReadable(runner: Runner, config: Config): Promise<{ state: RoutingState; unreadable: string[] }> {
  const unreadable: string[] = [];
  const attempt = attempts(unreadable);
  const [rules, routes, links, sysctls] = await Promise.all([
    attempt('ip rule', readRules(runner), []),
    attempt('ip route', readRoutes(runner), []),
    attempt('ip addr', readLinks(runner), []),
    attempt('sysctl', readSysctls(runner, sysctlKeys(config)), {}),
  ]);
  return { state: { rules, routes, links, sysctls }, unreadable };
}

/** TRANSITIONAL: the shared state and the iptables backend's in one KernelState, as the engine reads it today. */
export async function observeKernel(runner: Runner, config: Config): Promise<KernelState> {
  const [netfilter, sets, routing] = await Promise.all([readNetfilter(runner), readSets(runner), observeRouting(runner, config)]);
  return { netfilter, sets, ...routing };
}

/**
 * TRANSITIONAL: for `dispatcher plan` without root, whatever can be read (ip,
 * sysctl work unprivileged; iptables-save and ipset do not) and the names of
 * what could not.
 */
export async function observeReadable(runner: Runner, config: Config): Promise<{ state: KernelState; unreadable: string[] }> {
  const unreadable: string[] = [];
  const attempt = attempts(unreadable);
  const [netfilter, sets, routing] = await Promise.all([attempt('iptables-save', readNetfilter(runner), []), attempt('ipset', readSets(runner), { sets: [], entries: [] }), observeRoutingReadable(runner, config)]);
  return { state: { netfilter, sets, ...routing.state }, unreadable: [...unreadable, ...routing.unreadable] };
}

export async function writeSysctls(runner: Runner, values: Readonly<Record<string, string>>): Promise<void> {
  const assignments = Object.entries(values).map(([key, value]) => `${key}=${value}`);
  if (assignments.length > 0) await runner.run(['sysctl', '-q', '-w', ...assignments]);
}

/** Routes first, then rules added, then old ones removed: one `ip -batch` (nothing when empty). */
export async function applyIpBatch(runner: Runner, ip: string): Promise<void> {
  if (ip) await runner.run(['ip', '-batch', '-'], { input: ip });
}

/** TRANSITIONAL: loads the flat iptables Payloads in dependency order; the first failing command stops the run (the next run resyncs). */
export async function applyPayloads(runner: Runner, payloads: Payloads): Promise<void> {
  await writeSysctls(runner, payloads.sysctls);
  if (payloads.ipsetBefore) await runner.run(['ipset', '-exist', 'restore'], { input: payloads.ipsetBefore });
  if (payloads.iptables) await runner.run(['iptables-restore', '--wait', '10', '--noflush'], { input: payloads.iptables });
  await applyIpBatch(runner, payloads.ip);
  if (payloads.ipsetAfter) await runner.run(['ipset', '-exist', 'restore'], { input: payloads.ipsetAfter });
}

/** A table with nothing in it but the built-in chains at policy ACCEPT. */
function isBare(table: KernelState['netfilter'][number]): boolean {
  return table.rules.length === 0 && table.chains.every((c) => c.policy === 'ACCEPT');
}

/**
 * TRANSITIONAL (part of backend.flush now). Deletes the named netfilter tables
 * when they are bare, so a flush leaves `iptables-save` as it was before the
 * dispatcher created them. Only the nf_tables backend can remove a table;
 * legacy tables stay (they are module state, invisible until used). Returns
 * the tables deleted.
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

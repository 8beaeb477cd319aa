// The iptables backend's commands, all through the injected Runner (the exec
// seam): reads with iptables-save and ipset, writes with ipset -exist restore
// and one iptables-restore --noflush, and the nf_tables table cleanup flush needs.

import { readsOrNames } from '../../core/attempt.js';
import { CLIENT_SET, CLIENT_SET_NEXT, NETFILTER_TABLES } from '../../core/contract.js';
import { familyContract } from '../../core/family.js';
import { poolBytes, type PoolBytes } from '../../core/traffic.js';
import type { Config } from '../../model/config.js';
import type { IpsetDump, IptTable } from '../../model/kernel.js';
import { parseIpsetSave } from '../../parse/ipset.js';
import { parseIptablesSave } from '../../parse/iptables-save.js';
import type { Runner } from '../../system/exec.js';
import { type IptablesObserved, type IptablesPayload, POLICY_SET } from './types.js';

/**
 * All tables at once: `iptables-save -t nat` prints a nat table even when none
 * exists, plain iptables-save prints only the tables that do, which is what
 * `flush` needs to know to leave them as it found them.
 */
export async function readNetfilter(runner: Runner): Promise<IptTable[]> {
  const tables = parseIptablesSave((await runner.run(['iptables-save'])).stdout);
  return tables.filter((t) => (NETFILTER_TABLES as readonly string[]).includes(t.name));
}

export async function readSets(runner: Runner): Promise<IpsetDump> {
  const names = (await runner.run(['ipset', 'list', '-n'])).stdout.split('\n').map((n) => n.trim());
  const ours = names.filter((name) => name === CLIENT_SET || name === CLIENT_SET_NEXT || POLICY_SET.test(name));
  const dumps = await Promise.all(ours.map((name) => runner.run(['ipset', 'save', name])));
  const parsed = dumps.map((dump) => parseIpsetSave(dump.stdout));
  return { sets: parsed.flatMap((p) => p.sets), entries: parsed.flatMap((p) => p.entries) };
}

/**
 * The client set's header (`ipset list -t`, no members: cheap at any size):
 * how many rules use it and how many clients it holds. ipset has no change
 * events, and nft monitor does not see it; a set flushed or swapped by other
 * software (a firewall's ipset plugin on reload), or our rules using it
 * removed from iptables-legacy, change this answer.
 */
export async function checkClientSet(runner: Runner): Promise<string> {
  const result = await runner.run(['ipset', 'list', '-t', CLIENT_SET], { okExitCodes: [0, 1] });
  if (result.exitCode !== 0) return 'absent';
  const references = /^References: ([0-9]+)$/m.exec(result.stdout)?.[1] ?? '?';
  const entries = /^Number of entries: ([0-9]+)$/m.exec(result.stdout)?.[1] ?? '?';
  return `${CLIENT_SET}: ${references} references, ${entries} entries`;
}

export async function observeIptables(runner: Runner): Promise<IptablesObserved> {
  const [netfilter, sets] = await Promise.all([readNetfilter(runner), readSets(runner)]);
  return { netfilter, sets };
}

/** Without root iptables-save and ipset fail: each is read if it can be, and named if not. */
export async function observeIptablesReadable(runner: Runner): Promise<{ observed: IptablesObserved; unreadable: string[] }> {
  const unreadable: string[] = [];
  const attempt = readsOrNames(unreadable);
  const [netfilter, sets] = await Promise.all([attempt('iptables-save', readNetfilter(runner), []), attempt('ipset', readSets(runner), { sets: [], entries: [] })]);
  return { observed: { netfilter, sets }, unreadable };
}

/** In dependency order; the first failing command stops the rest (the next run resyncs). */
export async function applyIptables(runner: Runner, payload: IptablesPayload): Promise<void> {
  if (payload.ipsetBefore) await runner.run(['ipset', '-exist', 'restore'], { input: payload.ipsetBefore });
  if (payload.iptables) await runner.run(['iptables-restore', '--wait', '10', '--noflush'], { input: payload.iptables });
  if (payload.ipsetAfter) await runner.run(['ipset', '-exist', 'restore'], { input: payload.ipsetAfter });
}

/** A table with nothing in it but the built-in chains at policy ACCEPT. */
function isBare(table: IptTable): boolean {
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
  if (bare.length > 0) await runner.run(['nft', '-f', '-'], { input: bare.map((name) => `delete table ${familyContract('ipv4').nftFamily} ${name}\n`).join('') });
  return bare;
}

/** Bytes per pool from our counting rules (iptables-save -c of mangle), by uplink name. */
export async function readPoolCounters(runner: Runner, config: Config): Promise<Record<string, PoolBytes>> {
  return poolBytes(config, parseIptablesSave((await runner.run(['iptables-save', '-c', '-t', 'mangle'])).stdout));
}

// The iptables backend's commands, all through the injected Runner (the exec
// seam): reads with iptables-save, ip6tables-save and ipset, writes with ipset
// -exist restore and one iptables-restore --noflush per family, and the
// nf_tables table cleanup flush needs.

import { readsOrNames } from '../../core/attempt.js';
import { NETFILTER_TABLES } from '../../core/contract.js';
import { type Family, FAMILIES, familyContract } from '../../core/family.js';
import { poolBytes, type PoolBytes } from '../../core/traffic.js';
import type { Config } from '../../model/config.js';
import type { IpsetDump, IptTable } from '../../model/kernel.js';
import { parseIpsetSave } from '../../parse/ipset.js';
import { parseIptablesSave } from '../../parse/iptables-save.js';
import { type Runner, whatItSaid } from '../../system/exec.js';
import { type IptablesObserved, type IptablesPayload, POLICY_SET } from './types.js';

/**
 * All tables at once: `iptables-save -t nat` prints a nat table even when none
 * exists, plain iptables-save prints only the tables that do, which is what
 * `flush` needs to know to leave them as it found them.
 */
export async function readNetfilter(runner: Runner, family: Family = 'ipv4'): Promise<IptTable[]> {
  const tables = parseIptablesSave((await runner.run([familyContract(family).iptables.save])).stdout);
  return tables.filter((t) => (NETFILTER_TABLES as readonly string[]).includes(t.name));
}

/** The client sets of both families and their twins. */
const CLIENT_SETS: readonly string[] = FAMILIES.flatMap((family) => [familyContract(family).clientSet, familyContract(family).clientSetNext]);

export async function readSets(runner: Runner): Promise<IpsetDump> {
  const names = (await runner.run(['ipset', 'list', '-n'])).stdout.split('\n').map((n) => n.trim());
  const ours = names.filter((name) => CLIENT_SETS.includes(name) || POLICY_SET.test(name));
  const dumps = await Promise.all(ours.map((name) => runner.run(['ipset', 'save', name])));
  const parsed = dumps.map((dump) => parseIpsetSave(dump.stdout));
  return { sets: parsed.flatMap((p) => p.sets), entries: parsed.flatMap((p) => p.entries) };
}

export async function observeIptables(runner: Runner): Promise<IptablesObserved> {
  const [netfilter, netfilter6, sets] = await Promise.all([readNetfilter(runner), readNetfilter(runner, 'ipv6').catch((error: unknown) => ({ error: whatItSaid(error) })), readSets(runner)]);
  return 'error' in netfilter6 ? { netfilter, netfilter6: null, netfilter6Error: netfilter6.error, sets } : { netfilter, netfilter6, sets };
}

/** Without root iptables-save and ipset fail: each is read if it can be, and named if not. */
export async function observeIptablesReadable(runner: Runner): Promise<{ observed: IptablesObserved; unreadable: string[] }> {
  const unreadable: string[] = [];
  const attempt = readsOrNames(unreadable);
  const [netfilter, netfilter6, sets] = await Promise.all([
    attempt('iptables-save', readNetfilter(runner), []),
    attempt('ip6tables-save', readNetfilter(runner, 'ipv6'), []),
    attempt('ipset', readSets(runner), { sets: [], entries: [] }),
  ]);
  return { observed: { netfilter, netfilter6, sets }, unreadable };
}

/** In dependency order; the first failing command stops the rest (the next run resyncs). */
export async function applyIptables(runner: Runner, payload: IptablesPayload): Promise<void> {
  if (payload.ipsetBefore) await runner.run(['ipset', '-exist', 'restore'], { input: payload.ipsetBefore });
  if (payload.iptables) await runner.run(['iptables-restore', '--wait', '10', '--noflush'], { input: payload.iptables });
  if (payload.ip6tables) await runner.run(['ip6tables-restore', '--wait', '10', '--noflush'], { input: payload.ip6tables });
  if (payload.ipsetAfter) await runner.run(['ipset', '-exist', 'restore'], { input: payload.ipsetAfter });
}

/** A table with nothing in it but the built-in chains at policy ACCEPT. */
function isBare(table: IptTable): boolean {
  return table.rules.length === 0 && table.chains.every((c) => c.policy === 'ACCEPT');
}

/** A recorded table's family and name: "mangle" is IPv4's, "ip6 mangle" IPv6's (render.ts tablesTouched). */
function recordedTable(record: string): { family: Family; name: string } {
  const [first, second] = record.split(' ');
  return second === undefined ? { family: 'ipv4', name: record } : { family: first === familyContract('ipv6').nftFamily ? 'ipv6' : 'ipv4', name: second };
}

/**
 * Deletes the named netfilter tables when they are bare, so a flush leaves
 * `iptables-save` and `ip6tables-save` as they were before the dispatcher
 * created them. Only the nf_tables variant can remove a table; legacy tables
 * stay (they are module state, invisible until used). Each family is asked
 * which variant it is (Debian switches iptables and ip6tables apart) and
 * deleted in its own transaction. Returns the tables deleted.
 */
export async function deleteBareTables(runner: Runner, records: readonly string[]): Promise<string[]> {
  const deleted: string[] = [];
  for (const family of FAMILIES) {
    const wanted = records.filter((record) => recordedTable(record).family === family);
    if (wanted.length === 0) continue;
    const { iptables, nftFamily } = familyContract(family);
    if (!(await runner.run([iptables.tool, '-V'])).stdout.includes('nf_tables')) continue;
    const tables = await readNetfilter(runner, family);
    const bare = wanted.filter((record) => tables.some((t) => t.name === recordedTable(record).name && isBare(t)));
    if (bare.length === 0) continue;
    await runner.run(['nft', '-f', '-'], { input: bare.map((record) => `delete table ${nftFamily} ${recordedTable(record).name}\n`).join('') });
    deleted.push(...bare);
  }
  return deleted;
}

/** Bytes per pool from our counting rules (iptables-save -c of mangle, and ip6tables-save's in IPv6 nat mode), by uplink name. */
export async function readPoolCounters(runner: Runner, config: Config): Promise<Record<string, PoolBytes>> {
  const families: Family[] = config.lan.ipv6.mode === 'nat' ? ['ipv4', 'ipv6'] : ['ipv4'];
  const counted = await Promise.all(families.map(async (family) => poolBytes(config, parseIptablesSave((await runner.run([familyContract(family).iptables.save, '-c', '-t', 'mangle'])).stdout))));
  const total: Record<string, PoolBytes> = {};
  for (const bytes of counted) {
    for (const [name, { sent, received }] of Object.entries(bytes)) total[name] = { sent: (total[name]?.sent ?? 0) + sent, received: (total[name]?.received ?? 0) + received };
  }
  return total;
}

/**
 * Each client address's bytes, sent and received, from the client sets'
 * per-entry counters (our rules look every LAN packet up in them both ways).
 * A set made by an older version has no counters and counts nothing until
 * the next run swaps it.
 */
export async function readClientBytes(runner: Runner): Promise<Map<string, number>> {
  const dumps = await Promise.all(FAMILIES.map((family) => runner.run(['ipset', 'save', familyContract(family).clientSet], { okExitCodes: [0, 1] })));
  const bytes = new Map<string, number>();
  for (const dump of dumps) {
    if (dump.exitCode !== 0) {
      if (dump.stderr.includes('does not exist')) continue;
      throw new Error(`ipset save failed: ${dump.stderr.trim()}`);
    }
    for (const entry of parseIpsetSave(dump.stdout).entries) {
      if (typeof entry.options.bytes === 'string') bytes.set(entry.member, Number(entry.options.bytes));
    }
  }
  return bytes;
}

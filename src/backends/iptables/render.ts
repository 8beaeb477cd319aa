// The iptables backend's change as the exact text its batch commands load
// (pure):
//   ipset -exist restore          before iptables: sets must exist to be referenced
//   iptables-restore --noflush    one transaction for every table we touch
//   ip6tables-restore --noflush   the same for IPv6 (lan.ipv6.mode nat, or ours to remove)
//   ipset -exist restore          after iptables: destroying a set nothing references any more

import { familyContract } from '../../core/family.js';
import { joinArgs } from '../../parse/iptables-save.js';
import type { IptablesChange, IptablesPayload, NetfilterTableChange, PolicySetsChange, SetChange } from './types.js';
import { countLines } from '../../render/payloads.js';

export function renderNetfilter(changes: readonly NetfilterTableChange[]): string {
  const lines: string[] = [];
  for (const change of changes) {
    lines.push(`*${change.table}`);
    for (const { chain } of change.writeChains) lines.push(`:${chain} - [0:0]`);
    for (const rule of change.deleteRules) lines.push(`-D ${rule.chain} ${joinArgs(rule.args)}`);
    for (const { chain, rules } of change.writeChains) for (const args of rules) lines.push(`-A ${chain} ${joinArgs(args)}`);
    for (const hook of change.addHooks) lines.push(`-I ${hook.builtin} 1 -j ${hook.chain}`);
    // Every chain is emptied before any is deleted: one of ours may still jump to another (DISPATCHER-COUNT).
    for (const chain of change.dropChains) lines.push(`-F ${chain}`);
    for (const chain of change.dropChains) lines.push(`-X ${chain}`);
    lines.push('COMMIT');
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

/** Room for the entries we load now, so the kernel does not rehash while loading. */
function hashsize(entries: number): number {
  let size = 1024;
  while (size < entries && size < 1 << 20) size *= 2;
  return size;
}

function createLine(name: string, change: SetChange): string {
  return `create ${name} hash:ip family ${familyContract(change.family).setFamily} hashsize ${hashsize(change.add.length)} maxelem ${change.maxelem} counters skbinfo`;
}

export function renderSetBefore(change: SetChange): string {
  const { clientSet, clientSetNext } = familyContract(change.family);
  const lines: string[] = change.destroyStale.map((name) => `destroy ${name}`);
  const target = change.create === 'swap' ? clientSetNext : clientSet;
  if (change.create !== 'none') lines.push(createLine(target, change));
  for (const [ip, mark] of change.add) {
    const counters = change.carry.get(ip);
    lines.push(counters === undefined ? `add ${target} ${ip} skbmark ${mark}` : `add ${target} ${ip} ${counters} skbmark ${mark}`);
  }
  for (const ip of change.del) lines.push(`del ${clientSet} ${ip}`);
  if (change.create === 'swap') lines.push(`swap ${clientSetNext} ${clientSet}`, `destroy ${clientSetNext}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function renderSetAfter(change: SetChange): string {
  return change.destroy ? `destroy ${familyContract(change.family).clientSet}\n` : '';
}

/** A changed policy set is built beside the one in use and swapped in: a lookup never sees it half-filled. */
export function renderPolicySetsBefore(change: PolicySetsChange): string {
  const lines = change.destroyStale.map((name) => `destroy ${name}`);
  for (const { set, how } of change.load) {
    const target = how === 'swap' ? `${set.name}-next` : set.name;
    lines.push(`create ${target} ${set.type} family ${set.family}`, ...set.members.map((member) => `add ${target} ${member}`));
    if (how === 'swap') lines.push(`swap ${target} ${set.name}`, `destroy ${target}`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function renderIptables(change: IptablesChange): IptablesPayload {
  const after = renderSetAfter(change.set) + renderSetAfter(change.set6) + change.policySets.destroy.map((name) => `destroy ${name}\n`).join('');
  return {
    ipsetBefore: renderSetBefore(change.set) + renderSetBefore(change.set6) + renderPolicySetsBefore(change.policySets),
    iptables: renderNetfilter(change.netfilter),
    ip6tables: renderNetfilter(change.netfilter6),
    ipsetAfter: after,
  };
}

export function isIptablesPayloadEmpty(payload: IptablesPayload): boolean {
  return payload.ipsetBefore === '' && payload.iptables === '' && payload.ip6tables === '' && payload.ipsetAfter === '';
}

/** Each non-empty part under the command that loads it, in the order they are loaded. */
export function describeIptables(payload: IptablesPayload): string {
  const sections: string[] = [];
  if (payload.ipsetBefore) sections.push(`# ipset -exist restore\n${payload.ipsetBefore}`);
  if (payload.iptables) sections.push(`# iptables-restore --noflush\n${payload.iptables}`);
  if (payload.ip6tables) sections.push(`# ip6tables-restore --noflush\n${payload.ip6tables}`);
  if (payload.ipsetAfter) sections.push(`# ipset -exist restore (after iptables)\n${payload.ipsetAfter}`);
  return sections.join('\n');
}

/**
 * The tables the restore texts touch (their "*table" lines), as flush's
 * record names them: IPv4's bare ("mangle", as always), IPv6's with nft's
 * family ("ip6 mangle").
 */
export function tablesTouched(payload: IptablesPayload): string[] {
  const touched = (text: string): string[] =>
    text
      .split('\n')
      .filter((line) => line.startsWith('*'))
      .map((line) => line.slice(1));
  return [...touched(payload.iptables), ...touched(payload.ip6tables).map((table) => `${familyContract('ipv6').nftFamily} ${table}`)];
}

/** Lines loaded per tool, for the run report (ip6tables only when it loads something: IPv4-only gateways never use it). */
export function iptablesPayloadSize(payload: IptablesPayload): Record<string, number> {
  const ip6tables = countLines(payload.ip6tables);
  return { ipset: countLines(payload.ipsetBefore) + countLines(payload.ipsetAfter), iptables: countLines(payload.iptables), ...(ip6tables > 0 ? { ip6tables } : {}) };
}

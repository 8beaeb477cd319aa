// The iptables backend's change as the exact text its two batch commands load
// (pure):
//   ipset -exist restore         before iptables: sets must exist to be referenced
//   iptables-restore --noflush   one transaction for every table we touch
//   ipset -exist restore         after iptables: destroying a set nothing references any more

import { CLIENT_SET, CLIENT_SET_NEXT } from '../../core/contract.js';
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
  return `create ${name} hash:ip family inet hashsize ${hashsize(change.add.length)} maxelem ${change.maxelem} skbinfo`;
}

export function renderSetBefore(change: SetChange): string {
  const lines: string[] = change.destroyStale.map((name) => `destroy ${name}`);
  const target = change.create === 'swap' ? CLIENT_SET_NEXT : CLIENT_SET;
  if (change.create !== 'none') lines.push(createLine(target, change));
  for (const [ip, mark] of change.add) lines.push(`add ${target} ${ip} skbmark ${mark}`);
  for (const ip of change.del) lines.push(`del ${CLIENT_SET} ${ip}`);
  if (change.create === 'swap') lines.push(`swap ${CLIENT_SET_NEXT} ${CLIENT_SET}`, `destroy ${CLIENT_SET_NEXT}`);
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function renderSetAfter(change: SetChange): string {
  return change.destroy ? `destroy ${CLIENT_SET}\n` : '';
}

/** A changed policy set is built beside the one in use and swapped in: a lookup never sees it half-filled. */
export function renderPolicySetsBefore(change: PolicySetsChange): string {
  const lines = change.destroyStale.map((name) => `destroy ${name}`);
  for (const { set, how } of change.load) {
    const target = how === 'swap' ? `${set.name}-next` : set.name;
    lines.push(`create ${target} ${set.type} family inet`, ...set.members.map((member) => `add ${target} ${member}`));
    if (how === 'swap') lines.push(`swap ${target} ${set.name}`, `destroy ${target}`);
  }
  return lines.length > 0 ? `${lines.join('\n')}\n` : '';
}

export function renderIptables(change: IptablesChange): IptablesPayload {
  const after = renderSetAfter(change.set) + change.policySets.destroy.map((name) => `destroy ${name}\n`).join('');
  return { ipsetBefore: renderSetBefore(change.set) + renderPolicySetsBefore(change.policySets), iptables: renderNetfilter(change.netfilter), ipsetAfter: after };
}

export function isIptablesPayloadEmpty(payload: IptablesPayload): boolean {
  return payload.ipsetBefore === '' && payload.iptables === '' && payload.ipsetAfter === '';
}

/** Each non-empty part under the command that loads it, in the order they are loaded. */
export function describeIptables(payload: IptablesPayload): string {
  const sections: string[] = [];
  if (payload.ipsetBefore) sections.push(`# ipset -exist restore\n${payload.ipsetBefore}`);
  if (payload.iptables) sections.push(`# iptables-restore --noflush\n${payload.iptables}`);
  if (payload.ipsetAfter) sections.push(`# ipset -exist restore (after iptables)\n${payload.ipsetAfter}`);
  return sections.join('\n');
}

/** The tables an iptables-restore text touches (its "*table" lines). */
export function tablesTouched(payload: IptablesPayload): string[] {
  return payload.iptables
    .split('\n')
    .filter((line) => line.startsWith('*'))
    .map((line) => line.slice(1));
}

/** Lines loaded per tool, for the run report. */
export function iptablesPayloadSize(payload: IptablesPayload): { ipset: number; iptables: number } {
  return { ipset: countLines(payload.ipsetBefore) + countLines(payload.ipsetAfter), iptables: countLines(payload.iptables) };
}

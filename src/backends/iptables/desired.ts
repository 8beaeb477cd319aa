// The netfilter intent in iptables' and ipset's words (pure): our chains are
// iptables/skeleton.rules filled with the intent's marks, interfaces and
// groups; the client set maps each client to its pool mark.

import { CLIENT_SET } from '../../core/contract.js';
import { hashedModes } from '../../core/balance/policies.js';
import { formatPorts, type PortRange } from '../../core/balance/policy-match.js';
import { bucketBlocks, SPREAD_BUCKETS } from '../../core/balance/spread.js';
import { extract, hex } from '../../core/marks.js';
import type { ChooseIntent, NetfilterIntent, PolicyAction, PolicyFilter, SpreadIntent } from '../../model/plan.js';
import { diffIptables } from './diff.js';
import { fillSkeleton, type Skeleton } from './skeleton.js';
import { type DesiredIptables, type DesiredPolicySet, type IptablesChange, type IptablesObserved, POLICY_SET_PREFIX, type PolicySetKind } from './types.js';

/** null intent: nothing of ours remains (flush). */
export function desiredIptables(skeleton: Skeleton, intent: NetfilterIntent | null): DesiredIptables {
  if (!intent) return { tables: [], set: null, policySets: [] };
  return {
    tables: fillSkeleton(skeleton, {
      connMask: hex(intent.connMask),
      poolMask: hex(intent.poolMask),
      notPoolMask: hex(~intent.poolMask),
      set: CLIENT_SET,
      lans: intent.lans,
      uplinks: intent.uplinks.map((u) => ({ interface: u.interface, connMark: hex(u.connMark), poolMark: hex(u.poolMark), group: String(u.group) })),
      choices: intent.choose ? choiceRules(intent.choose, intent.poolMask) : [],
      pools: viaPoolMarks(intent.choose).map((mark) => ({ value: String(extract(mark, intent.poolMask)), mark: hex(mark) })),
      hashes: hashedModes(intent.choose).map((mode) => HASHES[mode]),
      spread: intent.spread && spreadValues(intent.spread),
    }),
    // The intent's map is used as it is: no copy per run, whatever the number of clients.
    set: { name: CLIENT_SET, maxelem: intent.maxClients, entries: intent.clients, poolMask: intent.poolMask },
    policySets: intent.choose ? policySets(intent.choose) : [],
  };
}

/** Each hashing mode's chain suffix and HMARK's options as iptables-save prints them: the addresses whole (destination mode), or the ports and protocol too. */
const HASHES: Record<'destination' | 'connection', { name: string; tuple: string }> = {
  destination: { name: 'DST', tuple: '--hmark-src-prefix 32 --hmark-dst-prefix 32' },
  connection: { name: 'CONN', tuple: '--hmark-src-prefix 32 --hmark-dst-prefix 32 --hmark-sport-mask 0xffff --hmark-dport-mask 0xffff --hmark-proto-mask 0xffff' },
};

/**
 * HMARK leaves this plus the bucket as the whole mark: bit 31 is always in the
 * connection field (the upper half of the mask's bits), never in a pool mark,
 * so a block's match (bit 31 and the bucket, every other bit 0) cannot match
 * again once a pool mark is set, whatever marks.mask is.
 */
const HMARK_OFFSET = 0x80000000;
const BUCKET_BITS = SPREAD_BUCKETS - 1;

/** A mark match as iptables-save prints it: a full mask is left out ("0x8000002a", not "0x8000002a/0xffffffff"). */
const markMatch = (value: number, mask: number): string => (mask >>> 0 === 0xffffffff ? hex(value) : `${hex(value)}/${hex(mask)}`);

function spreadValues(spread: SpreadIntent) {
  return {
    seed: hex(spread.seed),
    buckets: String(spread.buckets),
    // iptables-save prints the offset in decimal.
    offset: String(HMARK_OFFSET),
    blocks: spread.ranges.flatMap((range) => bucketBlocks(range.from, range.to).map((b) => ({ match: markMatch(HMARK_OFFSET | b.value, ~BUCKET_BITS | b.mask), poolMark: hex(range.poolMark) }))),
  };
}

/** The pool marks `via` policies set, each once. */
function viaPoolMarks(choose: ChooseIntent | null): number[] {
  const marks = new Set<number>();
  for (const { action } of choose?.policies ?? []) if (action.kind === 'pool') marks.add(action.poolMark);
  return [...marks];
}

/** ipset names of a policy's lists (1-based, as the policies are numbered in messages). */
export function policySetName(index: number, kind: PolicySetKind): string {
  return `${POLICY_SET_PREFIX}${index + 1}-${kind}`;
}

/** A policy's source list for its set: the config's networks and the hosts standing for its MACs, each once. */
const sourceMembers = (match: PolicyFilter): string[] | null => (match.sources ? [...new Set([...match.sources.networks, ...(match.sources.hosts ?? [])])] : null);

/** The sets a policy's networks are looked up in: never one rule per address. A policy that takes nothing now has none. */
function policySets(choose: ChooseIntent): DesiredPolicySet[] {
  return choose.policies.flatMap(({ match }, i) => {
    const sources = sourceMembers(match);
    if (sources?.length === 0) return [];
    return [
      ...(sources ? [{ name: policySetName(i, 'src'), type: 'hash:net' as const, members: sources }] : []),
      ...(match.destinations.length > 0 ? [{ name: policySetName(i, 'dst'), type: 'hash:net' as const, members: match.destinations }] : []),
    ];
  });
}

function verdict(action: PolicyAction, poolMask: number): string {
  switch (action.kind) {
    case 'keep':
      return '-j RETURN';
    case 'pool':
      return `-g DISPATCHER-POOL-${extract(action.poolMark, poolMask)}`;
    case 'hash':
      return `-g DISPATCHER-HASH-${HASHES[action.mode].name}`;
  }
}

/** `--dports` as iptables-save prints it: ranges with a colon. */
const portList = (ports: readonly PortRange[]): string => ports.map((r) => formatPorts(r, ':')).join(',');

/**
 * DISPATCHER-CHOOSE's rules, in iptables-save's order of options (protocol
 * first). A policy is one rule per alternative it has: per protocol and per
 * DSCP value (the dscp match takes one); every rule ends in a verdict, so the
 * first that matches decides. A policy that takes nothing now has no rule.
 */
function choiceRules(choose: ChooseIntent, poolMask: number): string[] {
  const rules = choose.policies.flatMap(({ match, action }, i) => {
    if (sourceMembers(match)?.length === 0) return [];
    const protocols = match.protocols.length > 0 ? match.protocols.map((p) => `-p ${p}`) : [''];
    const source = match.sources ? `-m set --match-set ${policySetName(i, 'src')} src` : '';
    const destination = match.destinations.length > 0 ? `-m set --match-set ${policySetName(i, 'dst')} dst` : '';
    const ports = match.ports.length > 0 ? `-m multiport --dports ${portList(match.ports)}` : '';
    // iptables-save prints the DSCP as two hex digits (0x0a, 0x2e).
    const dscps = match.dscp.length > 0 ? match.dscp.map((d) => `-m dscp --dscp 0x${d.toString(16).padStart(2, '0')}`) : [''];
    return protocols.flatMap((protocol) => dscps.map((dscp) => [protocol, source, destination, ports, dscp, verdict(action, poolMask)].filter((part) => part !== '').join(' ')));
  });
  return choose.otherwise.kind === 'keep' ? rules : [...rules, verdict(choose.otherwise, poolMask)];
}

/** The change between the intent (null: nothing of ours) and what iptables-save and ipset showed. */
export function planIptablesChange(skeleton: Skeleton, intent: NetfilterIntent | null, observed: IptablesObserved): IptablesChange {
  return diffIptables(desiredIptables(skeleton, intent), observed);
}

// The netfilter intent in iptables' and ipset's words (pure): our chains are
// iptables/skeleton.rules filled with the intent's marks, interfaces and
// groups, once for iptables and (IPv6 nat mode) once for ip6tables; each
// family's client set maps each client address to its pool mark.

import { type Family, familyContract } from '../../core/family.js';
import { hashedModes } from '../../core/balance/policies.js';
import { formatPorts, type PortRange } from '../../core/balance/policy-match.js';
import { bucketBlocks, SPREAD_BUCKETS } from '../../core/balance/spread.js';
import { extract, hex } from '../../core/marks.js';
import type { ChooseIntent, NetfilterIntent, PolicyAction, PolicyFilter, SpreadIntent } from '../../model/plan.js';
import { diffIptables } from './diff.js';
import { fillSkeleton, type Skeleton, type SkeletonValues } from './skeleton.js';
import { type DesiredIptables, type DesiredPolicySet, type IptablesChange, type IptablesObserved, POLICY_SET_PREFIX, type PolicySetKind } from './types.js';

/** null intent: nothing of ours remains (flush). */
export function desiredIptables(skeleton: Skeleton, intent: NetfilterIntent | null): DesiredIptables {
  if (!intent) return { tables: [], tables6: [], set: null, set6: null, policySets: [] };
  const { ipv6 } = intent;
  return {
    tables: fillSkeleton(skeleton, skeletonValues(intent, 'ipv4')),
    tables6: ipv6 ? fillSkeleton(skeleton, skeletonValues(intent, 'ipv6')) : [],
    // The intent's maps are used as they are: no copy per run, whatever the number of clients.
    set: { family: 'ipv4', maxelem: intent.maxClients, entries: intent.clients, poolMask: intent.poolMask },
    set6: ipv6 ? { family: 'ipv6', maxelem: ipv6.maxClients, entries: ipv6.clients, poolMask: intent.poolMask } : null,
    policySets: intent.choose ? policySets(intent.choose, ipv6 !== null) : [],
  };
}

/** The skeleton's values for one family: the same marks, interfaces and pools; the family's set, policy rules, hash tuple and translations. */
function skeletonValues(intent: NetfilterIntent, family: Family): SkeletonValues {
  const ipv6 = family === 'ipv6' ? intent.ipv6 : null;
  const translate = ipv6?.translate ?? [];
  return {
    connMask: hex(intent.connMask),
    poolMask: hex(intent.poolMask),
    notPoolMask: hex(~intent.poolMask),
    set: familyContract(family).clientSet,
    lans: intent.lans,
    uplinks: intent.uplinks.map((u) => ({ interface: u.interface, connMark: hex(u.connMark), poolMark: hex(u.poolMark), group: String(u.group) })),
    nat: ipv6
      ? translate.map((t) => `-s ${ipv6.lanPrefix} -o ${t.interface} -j ${t.prefix === null ? 'MASQUERADE' : `NETMAP --to ${t.prefix}`}`)
      : // A line with a shared address translates what it forwards to that address; the gateway's own packets (probes, exec --uplink, whose source the first route lookup chose) masquerade to its own address, so the backup's probes are answered.
        intent.uplinks.flatMap((u) => (u.snat === null ? [`-o ${u.interface} -j MASQUERADE`] : [`-o ${u.interface} -m addrtype --src-type LOCAL -j MASQUERADE`, `-o ${u.interface} -j SNAT --to-source ${u.snat}`])),
    guards: translate.flatMap((t) => (t.prefix === null ? [] : [t.prefix])),
    // iptables-save prints a host match with its length.
    // By the line it belongs to, and from the LAN (whose hosts look the gateway's name up too).
    inbound: translate.flatMap(({ interface: line, inbound: to }) => (to === null ? [] : [line, ...intent.lans].map((iface) => ({ address: `${to.address}/${familyContract(family).hostPrefix}`, interface: iface, to: to.to })))),
    choices: intent.choose ? choiceRules(intent.choose, intent.poolMask, family) : [],
    pools: viaPoolMarks(intent.choose).map((mark) => ({ value: String(extract(mark, intent.poolMask)), mark: hex(mark) })),
    hashes: hashedModes(intent.choose).map((mode) => hashOf(mode, family)),
    spread: intent.spread && spreadValues(intent.spread),
    // The shared addresses are IPv4: the fence is iptables', not ip6tables'.
    fence: family === 'ipv4' ? intent.fence : null,
  };
}

/** Each hashing mode's chain suffix (DISPATCHER-HASH-…). */
const HASH_CHAIN: Record<'destination' | 'connection', string> = { destination: 'DST', connection: 'CONN' };

/** A hashing mode's chain and HMARK's options as iptables-save prints them: the family's addresses whole (destination mode), or the ports and protocol too. */
function hashOf(mode: 'destination' | 'connection', family: Family): { name: string; tuple: string } {
  const whole = familyContract(family).hostPrefix;
  const addresses = `--hmark-src-prefix ${whole} --hmark-dst-prefix ${whole}`;
  return { name: HASH_CHAIN[mode], tuple: mode === 'destination' ? addresses : `${addresses} --hmark-sport-mask 0xffff --hmark-dport-mask 0xffff --hmark-proto-mask 0xffff` };
}

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

/**
 * A policy's source list for one family's set: IPv4, the config's networks
 * and the hosts standing for its MACs, each once; IPv6, those hosts' IPv6
 * addresses (the config's networks are IPv4). null: any source.
 */
function sourceMembers(match: PolicyFilter, family: Family): string[] | null {
  if (!match.sources) return null;
  const hosts = (match.sources.hosts ?? []).filter((h) => h.includes(':') === (family === 'ipv6'));
  return family === 'ipv6' ? hosts : [...new Set([...match.sources.networks, ...hosts])];
}

/**
 * Whether a policy can take a family's connections now: it has sources of
 * that family (or any source), and, for IPv6, no destination list (the
 * config's destinations are IPv4 networks, as nftables' `ip daddr` matches).
 */
const takes = (match: PolicyFilter, family: Family): boolean => sourceMembers(match, family)?.length !== 0 && (family === 'ipv4' || match.destinations.length === 0);

/** The sets a policy's networks are looked up in: never one rule per address. A policy that takes nothing now has none. */
function policySets(choose: ChooseIntent, ipv6: boolean): DesiredPolicySet[] {
  return choose.policies.flatMap(({ match }, i) => {
    const sources = sourceMembers(match, 'ipv4');
    const sources6 = ipv6 && takes(match, 'ipv6') ? sourceMembers(match, 'ipv6') : null;
    return [
      ...(sources && takes(match, 'ipv4') ? [{ name: policySetName(i, 'src'), type: 'hash:net' as const, family: 'inet' as const, members: sources }] : []),
      ...(match.destinations.length > 0 && takes(match, 'ipv4') ? [{ name: policySetName(i, 'dst'), type: 'hash:net' as const, family: 'inet' as const, members: match.destinations }] : []),
      ...(sources6 ? [{ name: policySetName(i, 'src6'), type: 'hash:net' as const, family: 'inet6' as const, members: sources6 }] : []),
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
      return `-g DISPATCHER-HASH-${HASH_CHAIN[action.mode]}`;
  }
}

/** `--dports` as iptables-save prints it: ranges with a colon. */
const portList = (ports: readonly PortRange[]): string => ports.map((r) => formatPorts(r, ':')).join(',');

/**
 * DISPATCHER-CHOOSE's rules of one family, in iptables-save's order of
 * options (protocol first). A policy is one rule per alternative it has: per
 * protocol and per DSCP value (the dscp match takes one; ip6tables' reads the
 * traffic class); every rule ends in a verdict, so the first that matches
 * decides. A policy that takes nothing of the family now has no rule.
 */
function choiceRules(choose: ChooseIntent, poolMask: number, family: Family): string[] {
  const rules = choose.policies.flatMap(({ match, action }, i) => {
    if (!takes(match, family)) return [];
    const protocols = match.protocols.length > 0 ? match.protocols.map((p) => `-p ${p}`) : [''];
    const source = match.sources ? `-m set --match-set ${policySetName(i, family === 'ipv6' ? 'src6' : 'src')} src` : '';
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

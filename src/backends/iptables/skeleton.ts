// Reads the netfilter skeleton (iptables/skeleton.rules) and fills it for a
// config. The skeleton is data, so the contract can be read without reading
// code; this module only substitutes placeholders and repeats lines.

import type { DesiredNetfilterTable } from './types.js';
import { tokenize } from '../../parse/iptables-save.js';
import { isOurChain } from '../../core/contract.js';

type Repeat = 'lan' | 'uplink' | 'nat' | 'guard' | 'inbound' | 'choose' | 'choose-lan' | 'choice' | 'pool' | 'hash' | 'bucket' | 'fence' | 'fence-lan' | 'fence-address' | null;

export interface SkeletonRule {
  readonly repeat: Repeat;
  readonly chain: string;
  /** The rule text after "-A CHAIN", with {placeholders}. */
  readonly template: string;
}

/** A chain declaration: one chain, or (repeated) one per row, its name a template. */
export interface SkeletonChain {
  readonly repeat: Repeat;
  readonly template: string;
}

/** The single jump from a built-in chain into one of ours; repeated: only while its rows exist (the chain does too). */
export interface SkeletonHook {
  readonly repeat: Repeat;
  readonly builtin: string;
  readonly chain: string;
}

export interface SkeletonTable {
  readonly name: string;
  readonly chains: readonly SkeletonChain[];
  readonly hooks: readonly SkeletonHook[];
  readonly rules: readonly SkeletonRule[];
}

export type Skeleton = readonly SkeletonTable[];

const COMMON = ['connMask', 'poolMask', 'notPoolMask', 'set'];
const PLACEHOLDERS: Record<Exclude<Repeat, null> | 'none', readonly string[]> = {
  none: COMMON,
  lan: [...COMMON, 'lan'],
  uplink: [...COMMON, 'uplink.interface', 'uplink.connMark', 'uplink.poolMark', 'uplink.group'],
  nat: [...COMMON, 'nat.rule'],
  guard: [...COMMON, 'guard.prefix'],
  inbound: [...COMMON, 'inbound.address', 'inbound.interface', 'inbound.to'],
  choose: COMMON,
  'choose-lan': [...COMMON, 'lan'],
  choice: [...COMMON, 'choice.rule'],
  pool: [...COMMON, 'pool.value', 'pool.mark'],
  hash: [...COMMON, 'hash.name', 'hash.tuple', 'hash.seed', 'hash.buckets', 'hash.offset'],
  bucket: [...COMMON, 'bucket.match', 'bucket.poolMark'],
  fence: COMMON,
  'fence-lan': [...COMMON, 'lan'],
  'fence-address': [...COMMON, 'fence.address'],
};

/** A line's optional repeat tag, "[lan] ", then a chain declaration or a rule. */
const REPEAT = '^(?:\\[(lan|uplink|nat|guard|inbound|choose|choose-lan|choice|pool|hash|bucket|fence|fence-lan|fence-address)\\] )?';
const DECLARATION = new RegExp(REPEAT + ':(\\S+)$');
const HOOK = new RegExp(REPEAT + '-I (\\S+) -j (\\S+)$');
const RULE = new RegExp(REPEAT + '-A (\\S+) (.+)$');

export class SkeletonError extends Error {
  constructor(line: number, detail: string) {
    super(`iptables/skeleton.rules line ${line}: ${detail}`);
    this.name = 'SkeletonError';
  }
}

export function parseSkeleton(text: string): Skeleton {
  const tables: { name: string; chains: SkeletonChain[]; hooks: SkeletonHook[]; rules: SkeletonRule[] }[] = [];
  const declared = (table: { chains: SkeletonChain[] }, chain: string): boolean => table.chains.some((c) => c.template === chain);
  text.split('\n').forEach((raw, index) => {
    const lineNumber = index + 1;
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      tables.push({ name: line.slice(1), chains: [], hooks: [], rules: [] });
      return;
    }
    const table = tables[tables.length - 1];
    if (!table) throw new SkeletonError(lineNumber, 'content before the first *table');
    const declaration = DECLARATION.exec(line);
    if (declaration) {
      const chain = declaration[2] as string;
      if (!isOurChain(chain)) throw new SkeletonError(lineNumber, `chain ${chain} is not named DISPATCHER-…`);
      table.chains.push({ repeat: (declaration[1] as Repeat | undefined) ?? null, template: chain });
      return;
    }
    const hook = HOOK.exec(line);
    if (hook) {
      if (!declared(table, hook[3] as string)) throw new SkeletonError(lineNumber, `hook to undeclared chain ${hook[3]}`);
      table.hooks.push({ repeat: (hook[1] as Repeat | undefined) ?? null, builtin: hook[2] as string, chain: hook[3] as string });
      return;
    }
    const rule = RULE.exec(line);
    if (!rule) throw new SkeletonError(lineNumber, `cannot read "${line}"`);
    const repeat = (rule[1] as Repeat | undefined) ?? null;
    const chain = rule[2] as string;
    if (!declared(table, chain)) throw new SkeletonError(lineNumber, `rule for undeclared chain ${chain}`);
    const template = rule[3] as string;
    for (const [, name] of `${chain} ${template}`.matchAll(/\{([a-zA-Z.]+)\}/g)) {
      if (!PLACEHOLDERS[repeat ?? 'none'].includes(name as string)) throw new SkeletonError(lineNumber, `unknown placeholder {${name}}`);
    }
    table.rules.push({ repeat, chain, template });
  });
  return tables;
}

export interface SkeletonValues {
  readonly connMask: string;
  readonly poolMask: string;
  readonly notPoolMask: string;
  readonly set: string;
  readonly lans: readonly string[];
  readonly uplinks: readonly { readonly interface: string; readonly connMark: string; readonly poolMark: string; readonly group: string }[];
  /** DISPATCHER-NAT's rules, match and target (IPv4: masquerade per uplink; IPv6: the LAN prefix per uplink, NETMAP or masquerade). */
  readonly nat: readonly string[];
  /** Prefixes new connections may not be forwarded to (IPv6: the lines' NPTv6 prefixes); none for IPv4. */
  readonly guards: readonly string[];
  /** Addresses whose new connections arriving on an uplink are given to the gateway itself (IPv6: its LAN address translated onto the line's prefix, in iptables-save's form) and that LAN address. */
  readonly inbound: readonly { readonly address: string; readonly interface: string; readonly to: string }[];
  /** LAN connections without a line go through DISPATCHER-CHOOSE: policies, then the balancing mode (empty: they keep their client's pool). */
  readonly choices: readonly string[];
  /** The pools `via` policies mark connections with: one chain each. */
  readonly pools: readonly { readonly value: string; readonly mark: string }[];
  /** One chain per balancing mode in use: HMARK with the mode's tuple, then the buckets. */
  readonly hashes: readonly { readonly name: string; readonly tuple: string }[];
  /** The hash's parameters and the buckets' pools; null when nothing is hashed. */
  readonly spread: {
    readonly seed: string;
    readonly buckets: string;
    readonly offset: string;
    /** Each block's mark match (value/mask, or the bare value when the mask is full) and the pool mark it sets. */
    readonly blocks: readonly { readonly match: string; readonly poolMark: string }[];
  } | null;
  /** One of a pair, not master: the LANs whose forwarding and the shared addresses whose traffic is held (model/plan.ts FenceIntent); null: no fence. */
  readonly fence: { readonly lans: readonly string[]; readonly addresses: readonly string[] } | null;
}

/** The placeholder rows a repeated line is filled with. */
function rowsOf(repeat: Repeat, values: SkeletonValues): Record<string, string>[] {
  const common = { connMask: values.connMask, poolMask: values.poolMask, notPoolMask: values.notPoolMask, set: values.set };
  const { spread } = values;
  switch (repeat) {
    case null:
      return [common];
    case 'lan':
      return values.lans.map((lan) => ({ ...common, lan }));
    case 'uplink':
      return values.uplinks.map((u) => ({ ...common, 'uplink.interface': u.interface, 'uplink.connMark': u.connMark, 'uplink.poolMark': u.poolMark, 'uplink.group': u.group }));
    case 'nat':
      return values.nat.map((rule) => ({ ...common, 'nat.rule': rule }));
    case 'guard':
      return values.guards.map((prefix) => ({ ...common, 'guard.prefix': prefix }));
    case 'inbound':
      return values.inbound.map((i) => ({ ...common, 'inbound.address': i.address, 'inbound.interface': i.interface, 'inbound.to': i.to }));
    case 'choose':
      return values.choices.length > 0 ? [common] : [];
    case 'choose-lan':
      return values.choices.length > 0 ? values.lans.map((lan) => ({ ...common, lan })) : [];
    case 'choice':
      return values.choices.map((rule) => ({ ...common, 'choice.rule': rule }));
    case 'pool':
      return values.pools.map((p) => ({ ...common, 'pool.value': p.value, 'pool.mark': p.mark }));
    case 'hash':
      return spread ? values.hashes.map((h) => ({ ...common, 'hash.name': h.name, 'hash.tuple': h.tuple, 'hash.seed': spread.seed, 'hash.buckets': spread.buckets, 'hash.offset': spread.offset })) : [];
    case 'bucket':
      return (spread?.blocks ?? []).map((b) => ({ ...common, 'bucket.match': b.match, 'bucket.poolMark': b.poolMark }));
    case 'fence':
      return values.fence ? [common] : [];
    case 'fence-lan':
      return (values.fence?.lans ?? []).map((lan) => ({ ...common, lan }));
    case 'fence-address':
      return (values.fence?.addresses ?? []).map((address) => ({ ...common, 'fence.address': address }));
  }
}

const fill = (template: string, values: Record<string, string>): string => template.replace(/\{([a-zA-Z.]+)\}/g, (_, name: string) => values[name] as string);

/**
 * The skeleton's tables for these values. A repeated declaration whose name
 * has no placeholder is one chain while its rows exist (none without), and
 * so is a repeated hook's jump.
 */
export function fillSkeleton(skeleton: Skeleton, values: SkeletonValues): DesiredNetfilterTable[] {
  return skeleton.map((table) => ({
    name: table.name,
    chains: [...new Set(table.chains.flatMap((chain) => rowsOf(chain.repeat, values).map((row) => fill(chain.template, row))))],
    hooks: table.hooks.filter((hook) => rowsOf(hook.repeat, values).length > 0).map(({ builtin, chain }) => ({ builtin, chain })),
    rules: table.rules.flatMap((rule) => rowsOf(rule.repeat, values).map((row) => ({ chain: fill(rule.chain, row), args: tokenize(fill(rule.template, row)) }))),
  }));
}

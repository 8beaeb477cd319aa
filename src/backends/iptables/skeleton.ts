// Reads the netfilter skeleton (iptables/skeleton.rules) and fills it for a
// config. The skeleton is data, so the contract can be read without reading
// code; this module only substitutes placeholders and repeats lines.

import type { DesiredNetfilterTable } from './types.js';
import { tokenize } from '../../parse/iptables-save.js';
import { isOurChain } from '../../core/contract.js';

type Repeat = 'lan' | 'uplink' | 'spread-lan' | 'spread' | 'bucket' | null;

export interface SkeletonRule {
  readonly repeat: Repeat;
  readonly chain: string;
  /** The rule text after "-A CHAIN", with {placeholders}. */
  readonly template: string;
}

export interface SkeletonTable {
  readonly name: string;
  readonly chains: readonly string[];
  readonly hooks: readonly { readonly builtin: string; readonly chain: string }[];
  readonly rules: readonly SkeletonRule[];
}

export type Skeleton = readonly SkeletonTable[];

const COMMON = ['connMask', 'poolMask', 'notPoolMask', 'set'];
const PLACEHOLDERS: Record<Exclude<Repeat, null> | 'none', readonly string[]> = {
  none: COMMON,
  lan: [...COMMON, 'lan'],
  uplink: [...COMMON, 'uplink.interface', 'uplink.connMark', 'uplink.poolMark', 'uplink.group'],
  'spread-lan': [...COMMON, 'lan'],
  spread: [...COMMON, 'spread.tuple', 'spread.seed', 'spread.buckets', 'spread.offset'],
  bucket: [...COMMON, 'bucket.value', 'bucket.mask', 'bucket.poolMark'],
};

export class SkeletonError extends Error {
  constructor(line: number, detail: string) {
    super(`iptables/skeleton.rules line ${line}: ${detail}`);
    this.name = 'SkeletonError';
  }
}

export function parseSkeleton(text: string): Skeleton {
  const tables: { name: string; chains: string[]; hooks: { builtin: string; chain: string }[]; rules: SkeletonRule[] }[] = [];
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
    if (line.startsWith(':')) {
      const chain = line.slice(1);
      if (!isOurChain(chain)) throw new SkeletonError(lineNumber, `chain ${chain} is not named DISPATCHER-…`);
      table.chains.push(chain);
      return;
    }
    const hook = /^-I (\S+) -j (\S+)$/.exec(line);
    if (hook) {
      if (!table.chains.includes(hook[2] as string)) throw new SkeletonError(lineNumber, `hook to undeclared chain ${hook[2]}`);
      table.hooks.push({ builtin: hook[1] as string, chain: hook[2] as string });
      return;
    }
    const rule = /^(?:\[(lan|uplink|spread-lan|spread|bucket)\] )?-A (\S+) (.+)$/.exec(line);
    if (!rule) throw new SkeletonError(lineNumber, `cannot read "${line}"`);
    const repeat = (rule[1] as Repeat | undefined) ?? null;
    const chain = rule[2] as string;
    if (!table.chains.includes(chain)) throw new SkeletonError(lineNumber, `rule for undeclared chain ${chain}`);
    const template = rule[3] as string;
    for (const [, name] of template.matchAll(/\{([a-zA-Z.]+)\}/g)) {
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
  /** The hash of the destination and connection modes; null in host mode (no [spread…] or [bucket] rows). */
  readonly spread: {
    readonly tuple: string;
    readonly seed: string;
    readonly buckets: string;
    readonly offset: string;
    readonly blocks: readonly { readonly value: string; readonly mask: string; readonly poolMark: string }[];
  } | null;
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
    case 'spread-lan':
      return spread ? values.lans.map((lan) => ({ ...common, lan })) : [];
    case 'spread':
      return spread ? [{ ...common, 'spread.tuple': spread.tuple, 'spread.seed': spread.seed, 'spread.buckets': spread.buckets, 'spread.offset': spread.offset }] : [];
    case 'bucket':
      return (spread?.blocks ?? []).map((b) => ({ ...common, 'bucket.value': b.value, 'bucket.mask': b.mask, 'bucket.poolMark': b.poolMark }));
  }
}

function substitute(template: string, values: Record<string, string>): string[] {
  return tokenize(template.replace(/\{([a-zA-Z.]+)\}/g, (_, name: string) => values[name] as string));
}

export function fillSkeleton(skeleton: Skeleton, values: SkeletonValues): DesiredNetfilterTable[] {
  return skeleton.map((table) => ({
    name: table.name,
    chains: table.chains,
    hooks: table.hooks,
    rules: table.rules.flatMap((rule) => rowsOf(rule.repeat, values).map((row) => ({ chain: rule.chain, args: substitute(rule.template, row) }))),
  }));
}

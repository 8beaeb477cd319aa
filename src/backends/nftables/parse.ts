// `nft -j list ruleset` (nftables 1.0.6 JSON) read for the nftables backend
// (pure): our table's digest, rules per chain, client map and socket groups,
// and other software's rules that write or test mark bits.

import { ParseError } from '../../parse/iptables-save.js';
import { isOurChain } from '../../core/contract.js';
import { CLIENT_MAP, CLIENT_MAP6, digestInComment } from './render.js';
import type { ElementCounter, NftObserved } from './types.js';

const FULL = 0xffffffff;
const WHAT = 'nft -j list ruleset';

type Json = unknown;
const isObject = (value: Json): value is Record<string, Json> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** Whether an expression is the packet's or the connection's mark itself. */
function isMark(expr: Json): boolean {
  return isObject(expr) && ((isObject(expr.meta) && expr.meta.key === 'mark') || (isObject(expr.ct) && expr.ct.key === 'mark'));
}

/** The mark bits a value written to a mark changes: "mark and A or B" changes ~A | B; a plain value all 32. */
function writtenBits(value: Json): number {
  if (!isObject(value)) return FULL;
  for (const op of ['|', '^'] as const) {
    const pair = value[op];
    if (Array.isArray(pair) && pair.length === 2) {
      const [left, right] = pair;
      const constant = typeof right === 'number' ? right : 0;
      if (isMark(left)) return constant >>> 0;
      return (writtenBits(left) | constant) >>> 0;
    }
  }
  const and = value['&'];
  if (Array.isArray(and) && and.length === 2 && isMark(and[0]) && typeof and[1] === 'number') return ~and[1] >>> 0;
  return FULL;
}

/** The mark bits a match compares: "mark and M == …" compares M; the bare mark all 32. */
function testedBits(left: Json): number {
  if (isMark(left)) return FULL;
  if (isObject(left) && Array.isArray(left['&']) && isMark(left['&'][0]) && typeof left['&'][1] === 'number') return left['&'][1] >>> 0;
  return 0;
}

/** Mark bits a rule's statements write or test; 0 when it has nothing to do with marks. */
export function markBitsOfRule(expr: readonly Json[]): number {
  let bits = 0;
  for (const statement of expr) {
    if (!isObject(statement)) continue;
    const mangle = statement.mangle;
    if (isObject(mangle) && isMark(mangle.key)) bits |= writtenBits(mangle.value);
    const match = statement.match;
    if (isObject(match)) bits |= testedBits(match.left);
  }
  return bits >>> 0;
}

function groupOf(expr: readonly Json[]): number | null {
  for (const statement of expr) {
    const match = isObject(statement) ? statement.match : undefined;
    if (isObject(match) && isObject(match.left) && isObject(match.left.meta) && match.left.meta.key === 'skgid' && typeof match.right === 'number') return match.right;
  }
  return null;
}

/** An element of our map: "198.18.0.10" → its jump target and its counter (null before it counted anything), or null for forms we never write. */
function elementOf(element: Json): { address: string; target: string; counter: ElementCounter | null } | null {
  if (!Array.isArray(element) || element.length !== 2) return null;
  const [key, verdict] = element;
  const elem = isObject(key) && isObject(key.elem) ? key.elem : null;
  const address = typeof key === 'string' ? key : elem && typeof elem.val === 'string' ? elem.val : null;
  const target = isObject(verdict) && isObject(verdict.jump) && typeof verdict.jump.target === 'string' ? verdict.jump.target : null;
  if (address === null || target === null) return null;
  const counted = elem && isObject(elem.counter) ? elem.counter : null;
  const counter: ElementCounter | null = counted && typeof counted.packets === 'number' && typeof counted.bytes === 'number' && counted.packets > 0 ? [counted.packets, counted.bytes] : null;
  return { address, target, counter };
}

export function parseNftRuleset(text: string, table: { family: string; name: string }): NftObserved {
  let document: Json;
  try {
    document = JSON.parse(text);
  } catch {
    throw new ParseError(WHAT, 0, 'not JSON');
  }
  const items = isObject(document) && Array.isArray(document.nftables) ? document.nftables : null;
  if (!items) throw new ParseError(WHAT, 0, 'no "nftables" array');
  const ours = (o: Record<string, Json>): boolean => o.family === table.family && o.table === table.name;
  let exists = false;
  let digest: string | null = null;
  const clients = new Map<string, string>();
  const counters = new Map<string, ElementCounter>();
  const hostSets = new Map<string, Set<string>>();
  const groups: number[] = [];
  const rulesPerChain: Record<string, number> = {};
  const foreignMarks: { where: string; bits: number }[] = [];
  for (const item of items) {
    if (!isObject(item)) continue;
    if (isObject(item.table) && item.table.family === table.family && item.table.name === table.name) exists = true;
    if (isObject(item.chain) && ours(item.chain) && typeof item.chain.name === 'string') rulesPerChain[item.chain.name] ??= 0;
    if (isObject(item.map) && ours(item.map) && (item.map.name === CLIENT_MAP || item.map.name === CLIENT_MAP6) && Array.isArray(item.map.elem)) {
      for (const element of item.map.elem) {
        const parsed = elementOf(element);
        if (!parsed) continue;
        clients.set(parsed.address, parsed.target);
        if (parsed.counter) counters.set(parsed.address, parsed.counter);
      }
    }
    if (isObject(item.set) && ours(item.set) && typeof item.set.name === 'string' && /^p[0-9]+_hosts6?$/.test(item.set.name)) {
      hostSets.set(item.set.name, new Set((Array.isArray(item.set.elem) ? item.set.elem : []).filter((e): e is string => typeof e === 'string')));
    }
    const rule = item.rule;
    if (!isObject(rule) || typeof rule.chain !== 'string' || !Array.isArray(rule.expr)) continue;
    if (ours(rule)) {
      rulesPerChain[rule.chain] = (rulesPerChain[rule.chain] ?? 0) + 1;
      if (typeof rule.comment === 'string') digest ??= digestInComment(rule.comment);
      const group = rule.chain === 'out' ? groupOf(rule.expr) : null;
      if (group !== null) groups.push(group);
      continue;
    }
    // The iptables backend's chains are ours too (a switch of backend leaves them until the first run removes them).
    if (isOurChain(rule.chain)) continue;
    const bits = markBitsOfRule(rule.expr);
    if (bits !== 0) foreignMarks.push({ where: `${String(rule.family)} ${String(rule.table)} ${rule.chain}`, bits });
  }
  return { table: exists, digest, clients, counters, hostSets, groups, foreignMarks, rulesPerChain };
}

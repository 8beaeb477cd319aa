// nftables tables (`nft -j list ruleset`, nftables 1.0 JSON) in the firewall
// judge's model (core/firewall/model.ts): every ip and inet table with base chains on the forward or
// input hook — a hand-written `inet filter`, firewalld's `inet firewalld`, or
// whatever else is loaded. Expressions the judge does not know become opaque.

import type { Action, AddressRange, Condition, FwRule, FwTable, Hook } from '../../core/firewall/model.js';
import { cidrRange } from '../../core/ipv4.js';
import { ParseError } from '../iptables-save.js';

type Json = unknown;
type Obj = Record<string, Json>;
const isObject = (value: Json): value is Obj => typeof value === 'object' && value !== null && !Array.isArray(value);

const PROTOCOL_NUMBERS: Readonly<Record<string, string>> = { '1': 'icmp', '6': 'tcp', '17': 'udp' };
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'th', 'udplite', 'sctp', 'dccp']);
/** Statements that let the packet go on to the next one. */
const GOES_ON = new Set(['counter', 'log', 'mangle', 'set', 'map', 'notrack', 'flow', 'ct helper', 'meter', 'dup']);

/** Readable text of an expression, for findings (JSON where no short form is known). */
function exprText(expr: Json): string {
  if (typeof expr === 'string' || typeof expr === 'number') return String(expr);
  if (Array.isArray(expr)) return expr.map(exprText).join(',');
  if (!isObject(expr)) return JSON.stringify(expr);
  if (isObject(expr.meta)) return `meta ${String(expr.meta.key)}`;
  if (isObject(expr.ct)) return `ct ${String(expr.ct.key)}`;
  if (isObject(expr.payload)) return `${String(expr.payload.protocol)} ${String(expr.payload.field)}`;
  if (isObject(expr.fib)) return `fib ${exprText(expr.fib.flags)} ${String(expr.fib.result)}`;
  if (Array.isArray(expr.set)) return `{ ${expr.set.map(exprText).join(', ')} }`;
  if (isObject(expr.prefix)) return `${String(expr.prefix.addr)}/${String(expr.prefix.len)}`;
  if (Array.isArray(expr.range)) return `${exprText(expr.range[0])}-${exprText(expr.range[1])}`;
  return JSON.stringify(expr);
}

function statementText(statement: Json): string {
  if (!isObject(statement)) return JSON.stringify(statement);
  const [key, value] = Object.entries(statement)[0] ?? ['?', null];
  if (key === 'match' && isObject(value)) return `${exprText(value.left)} ${value.op === '==' || value.op === 'in' ? '' : `${String(value.op)} `}${exprText(value.right)}`;
  if ((key === 'jump' || key === 'goto') && isObject(value)) return `${key} ${String(value.target)}`;
  if (key === 'vmap' && isObject(value))
    return `${exprText(value.key)} vmap ${isObject(value.data) && Array.isArray(value.data.set) ? `{ ${value.data.set.map((e) => (Array.isArray(e) ? `${exprText(e[0])} : ${statementText(e[1])}` : exprText(e))).join(', ')} }` : exprText(value.data)}`;
  if (value === null) return key;
  if (key === 'counter' || key === 'log' || key === 'limit' || key === 'reject') return key;
  return `${key} ${JSON.stringify(value)}`;
}

/** The values a right-hand side lists, or null when it names a set we cannot see into. */
function values(right: Json): Json[] | null {
  if (typeof right === 'string' && right.startsWith('@')) return null;
  if (isObject(right) && Array.isArray(right.set)) return right.set;
  if (Array.isArray(right)) return right;
  return [right];
}

function addressValues(list: Json[]): AddressRange[] | null {
  const ranges: AddressRange[] = [];
  for (const value of list) {
    if (typeof value === 'string') {
      const range = cidrRange(value);
      if (!range) return null;
      ranges.push(range);
    } else if (isObject(value) && isObject(value.prefix)) {
      const range = cidrRange(`${String(value.prefix.addr)}/${String(value.prefix.len)}`);
      if (!range) return null;
      ranges.push(range);
    } else if (isObject(value) && Array.isArray(value.range)) {
      const [low, high] = value.range.map((v) => cidrRange(String(v)));
      if (!low || !high) return null;
      ranges.push([low[0], high[1]]);
    } else return null;
  }
  return ranges;
}

function portValues(list: Json[]): [number, number][] | null {
  const ranges: [number, number][] = [];
  for (const value of list) {
    if (typeof value === 'number') ranges.push([value, value]);
    else if (isObject(value) && Array.isArray(value.range) && typeof value.range[0] === 'number' && typeof value.range[1] === 'number') ranges.push([value.range[0], value.range[1]]);
    else return null;
  }
  return ranges;
}

/** A match "left op right" as a condition for IPv4 flows. */
function matchCondition(left: Json, op: string, right: Json, text: string): Condition {
  const opaque: Condition = { kind: 'opaque', text };
  if (op !== '==' && op !== 'in' && op !== '!=') return opaque;
  const negated = op === '!=';
  const list = values(right);
  if (!list) return opaque;
  const strings = list.every((v) => typeof v === 'string') ? (list as string[]) : null;
  if (isObject(left) && isObject(left.meta)) {
    const key = left.meta.key;
    if ((key === 'iifname' || key === 'oifname' || key === 'iif' || key === 'oif') && strings) return { kind: key.startsWith('i') ? 'iif' : 'oif', names: strings.map((s) => s.replace(/\\\*$/, '*')), negated };
    if (key === 'l4proto' && list.length > 0) return { kind: 'protocol', protocols: list.map((v) => PROTOCOL_NUMBERS[String(v)] ?? String(v)), negated };
    if (key === 'nfproto' && strings) return { kind: 'fixed', holds: strings.includes('ipv4') !== negated };
    if (key === 'protocol' && strings) return { kind: 'fixed', holds: strings.includes('ip') !== negated };
    if (key === 'pkttype' && strings) return { kind: 'fixed', holds: strings.some((s) => s === 'host' || s === 'unicast') !== negated };
    return opaque;
  }
  if (isObject(left) && isObject(left.payload)) {
    const { protocol, field } = left.payload;
    if (protocol === 'ip6' || protocol === 'icmpv6' || protocol === 'arp') return { kind: 'fixed', holds: negated };
    if (protocol === 'ip' && (field === 'saddr' || field === 'daddr')) {
      const ranges = addressValues(list);
      return ranges ? { kind: field, ranges, negated } : opaque;
    }
    if (protocol === 'ip' && field === 'protocol') return { kind: 'protocol', protocols: list.map((v) => PROTOCOL_NUMBERS[String(v)] ?? String(v)), negated };
    if (typeof protocol === 'string' && PORT_PROTOCOLS.has(protocol) && (field === 'dport' || field === 'sport')) {
      const ranges = portValues(list);
      // "tcp dport" holds only for TCP; "th dport" for any protocol with ports.
      const only = protocol === 'th' ? {} : { protocol };
      return ranges ? { kind: field, ranges, negated, ...only } : opaque;
    }
    if (protocol === 'icmp' && field === 'type' && strings) return { kind: 'icmp-type', types: strings, negated };
    return opaque;
  }
  if (isObject(left) && isObject(left.ct)) {
    if (left.ct.key === 'state' && strings) return { kind: 'state', states: strings, negated };
    // The flows judged are the gateway's clients' own connections, never port forwards.
    if (left.ct.key === 'status' && strings?.every((s) => s === 'dnat')) return { kind: 'fixed', holds: negated };
    return opaque;
  }
  if (isObject(left) && isObject(left.fib) && left.fib.result === 'type' && Array.isArray(left.fib.flags) && left.fib.flags.length === 1 && left.fib.flags[0] === 'daddr' && strings) {
    if (strings.length === 1 && strings[0] === 'local') return negated ? { kind: 'local-destination', local: false } : { kind: 'local-destination', local: true };
    return opaque;
  }
  return opaque;
}

function verdictOf(statement: Obj): Action | null {
  if ('accept' in statement) return { kind: 'accept' };
  if ('drop' in statement) return { kind: 'drop', how: 'dropped' };
  if ('reject' in statement) return { kind: 'drop', how: 'rejected' };
  if ('return' in statement) return { kind: 'return' };
  if ('continue' in statement) return { kind: 'continue' };
  if (isObject(statement.jump)) return { kind: 'jump', chain: String(statement.jump.target) };
  if (isObject(statement.goto)) return { kind: 'goto', chain: String(statement.goto.target) };
  if ('queue' in statement) return { kind: 'opaque', text: 'queue (a userspace program decides)' };
  return null;
}

/** One nft rule as one or more judge rules (a verdict map becomes one rule per entry). */
function toRules(expr: readonly Json[], where: string): FwRule[] {
  const text = `${where}: ${expr.map(statementText).join(' ')}`;
  const conditions: Condition[] = [];
  for (const statement of expr) {
    if (!isObject(statement)) return [{ conditions: [{ kind: 'opaque', text }], action: { kind: 'opaque', text }, text }];
    const key = Object.keys(statement)[0] as string;
    if (key === 'match' && isObject(statement.match)) {
      conditions.push(matchCondition(statement.match.left, String(statement.match.op), statement.match.right, text));
      continue;
    }
    if (key === 'limit' || key === 'quota') {
      conditions.push({ kind: 'some', text });
      continue;
    }
    const verdict = verdictOf(statement);
    if (verdict) return [{ conditions, action: verdict, text }];
    const vmap = statement.vmap;
    if (key === 'vmap' && isObject(vmap)) {
      const entries = isObject(vmap.data) && Array.isArray(vmap.data.set) ? vmap.data.set : null;
      if (!entries) return [{ conditions, action: { kind: 'opaque', text }, text }];
      // The entries' keys are distinct, so one rule per entry, in any order, decides the same.
      return entries.map((entry) => {
        const [value, target] = Array.isArray(entry) ? entry : [entry, null];
        const action = isObject(target) ? verdictOf(target) : null;
        return { conditions: [...conditions, matchCondition(vmap.key, '==', value, text)], action: action ?? { kind: 'opaque', text }, text };
      });
    }
    if (GOES_ON.has(key)) continue;
    // A statement the judge does not know may stop the rule before its verdict, or be one: not judged.
    conditions.push({ kind: 'opaque', text });
  }
  return [{ conditions, action: { kind: 'continue' }, text }];
}

const HOOKS: Readonly<Record<string, Hook>> = { forward: 'forward', input: 'input' };

/**
 * Every ip and inet table of `nft -j list ruleset` with a filter chain on the forward or input hook.
 * `skip`: tables judged elsewhere, as "family name" (iptables-nft's own, read through iptables-save).
 */
export function nftTables(json: string, skip: readonly string[] = []): FwTable[] {
  let parsed: Json;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new ParseError('nft -j list ruleset', 1, (error as Error).message);
  }
  const items = isObject(parsed) && Array.isArray(parsed.nftables) ? parsed.nftables : [];
  const tables = new Map<string, { family: string; name: string; chains: Map<string, FwRule[]>; baseChains: FwTable['baseChains'][number][] }>();
  const tableOf = (item: Obj): ReturnType<typeof tables.get> => {
    const id = `${String(item.family)} ${String(item.table ?? item.name)}`;
    return tables.get(id);
  };
  for (const item of items) {
    if (!isObject(item)) continue;
    if (isObject(item.table)) {
      const { family, name } = item.table;
      const id = `${String(family)} ${String(name)}`;
      if ((family === 'ip' || family === 'inet') && !skip.includes(id)) tables.set(id, { family: String(family), name: String(name), chains: new Map(), baseChains: [] });
    } else if (isObject(item.chain)) {
      const table = tableOf(item.chain);
      if (!table) continue;
      const name = String(item.chain.name);
      table.chains.set(name, []);
      const hook = HOOKS[String(item.chain.hook)];
      if (hook && item.chain.type === 'filter') table.baseChains.push({ chain: name, hook, policy: item.chain.policy === 'drop' ? 'drop' : 'accept', priority: Number(item.chain.prio ?? 0) });
    } else if (isObject(item.rule)) {
      const table = tableOf(item.rule);
      const chain = table?.chains.get(String(item.rule.chain));
      if (!table || !chain) continue;
      const expr = Array.isArray(item.rule.expr) ? item.rule.expr : [];
      chain.push(...toRules(expr, `nft ${table.family} ${table.name} ${String(item.rule.chain)}`));
    }
  }
  return [...tables.values()]
    .filter((t) => t.baseChains.length > 0)
    .map((t) => ({
      label: `nft ${t.family} ${t.name}`,
      family: t.family,
      name: t.name,
      owner: t.family === 'inet' && t.name === 'firewalld' ? 'firewalld' : 'nftables',
      chains: t.chains,
      baseChains: t.baseChains,
    }));
}

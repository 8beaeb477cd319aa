// Follows a flow through the firewall's base chains on its hook (pure) and
// says what happens to it: accepted, dropped (by which rule or policy), or
// unknown (which rule cannot be judged). Conditions a flow leaves open (the
// destination, a rate limit) fork the walk: the fork's outcome is kept as an
// exception "when this rule matches", and the walk goes on as if it did not.
// So the main path is what a connection meeting no special condition gets.
//
// Every base chain on a hook is judged on its own: an accept ends only its
// own chain, a drop anywhere is final (nftables' and netfilter's rule), so the
// hook drops a flow when any of its chains does.

import type { AddressRange, Condition, Flow, FwRule, FwTable, Hook } from './model.js';

/** One condition a fork depends on: the rule that made it, and whether it can be judged at all. */
export interface Branch {
  readonly rule: string;
  readonly opaque: boolean;
}

export interface Outcome {
  readonly verdict: 'accept' | 'drop' | 'opaque';
  /** The rule or policy that decided. */
  readonly by: string;
  /** What must match for this outcome (empty: every connection of the flow). */
  readonly when: readonly Branch[];
}

export interface ChainVerdict {
  readonly table: FwTable;
  readonly chain: string;
  readonly verdict: 'accept' | 'drop' | 'unknown';
  /** The rule or policy behind the verdict (for unknown: the rule that cannot be judged). */
  readonly by: string;
  /** Outcomes other than the verdict, for some connections only (e.g. only some destinations accepted). */
  readonly exceptions: readonly Outcome[];
}

export interface HookVerdict {
  readonly verdict: 'accept' | 'drop' | 'unknown';
  /** Every base chain on the hook, by priority. */
  readonly chains: readonly ChainVerdict[];
}

type Match = 'yes' | 'no' | 'some' | 'opaque';

/** Rules visited per flow before the walk gives up as "too complex to judge". */
const BUDGET = 20_000;
const MAX_DEPTH = 64;

function nameMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

/** Ranges that overlap or touch joined, so that covered addresses are counted once. */
function mergeRanges(ranges: readonly AddressRange[]): AddressRange[] {
  const merged: [number, number][] = [];
  for (const [low, high] of [...ranges].sort((a, b) => a[0] - b[0])) {
    const last = merged[merged.length - 1];
    if (last && low <= last[1] + 1) last[1] = Math.max(last[1], high);
    else merged.push([low, high]);
  }
  return merged;
}

/** How a set of flow addresses relates to a rule's ranges: all inside, none inside, or some. */
function rangesMatch(flow: readonly AddressRange[], rule: readonly AddressRange[]): Match {
  let inside = 0;
  let outside = 0;
  const merged = mergeRanges(rule);
  for (const [low, high] of flow) {
    const total = high - low + 1;
    const covered = merged.reduce((sum, [a, b]) => sum + Math.max(0, Math.min(high, b) - Math.max(low, a) + 1), 0);
    if (covered >= total) inside++;
    else if (covered === 0) outside++;
    else return 'some';
  }
  if (outside === 0) return 'yes';
  return inside === 0 ? 'no' : 'some';
}

const negate = (match: Match, negated: boolean): Match => (!negated ? match : match === 'yes' ? 'no' : match === 'no' ? 'yes' : match);
const known = (holds: boolean): Match => (holds ? 'yes' : 'no');

function portMatch(port: number | null, ranges: readonly (readonly [number, number])[]): Match {
  if (port === null) return 'some';
  return known(ranges.some(([low, high]) => port >= low && port <= high));
}

function conditionMatch(condition: Condition, flow: Flow): Match {
  switch (condition.kind) {
    case 'iif':
      return negate(known(condition.names.some((n) => nameMatches(n, flow.iif))), condition.negated);
    case 'oif':
      // Nothing leaves by an interface on input: "-o X" can only fail there.
      if (flow.oif === undefined) return condition.negated ? 'yes' : 'no';
      return negate(known(condition.names.some((n) => nameMatches(n, flow.oif as string))), condition.negated);
    case 'saddr':
      return negate(rangesMatch(flow.saddr, condition.ranges), condition.negated);
    case 'daddr':
      return negate(rangesMatch(flow.daddr, condition.ranges), condition.negated);
    case 'protocol':
      return negate(known(condition.protocols.includes(flow.protocol) || condition.protocols.includes('all')), condition.negated);
    case 'sport':
    case 'dport': {
      // A port of another protocol (nft's "tcp dport") never matches; neither does one of ICMP.
      if (flow.protocol === 'icmp' || (condition.protocol !== undefined && condition.protocol !== flow.protocol)) return 'no';
      return negate(portMatch(condition.kind === 'sport' ? flow.sport : flow.dport, condition.ranges), condition.negated);
    }
    case 'icmp-type':
      if (flow.protocol !== 'icmp') return 'no';
      return negate(known(condition.types.includes('any') || (flow.icmpType !== undefined && condition.types.includes(flow.icmpType))), condition.negated);
    case 'state':
      return negate(known(condition.states.includes(flow.state)), condition.negated);
    case 'local-destination':
      return known(condition.local === (flow.hook === 'input'));
    case 'fixed':
      return known(condition.holds);
    case 'some':
      return 'some';
    case 'opaque':
      return 'opaque';
  }
}

function ruleMatch(rule: FwRule, flow: Flow): Match {
  let result: Match = 'yes';
  for (const condition of rule.conditions) {
    const match = conditionMatch(condition, flow);
    if (match === 'no') return 'no';
    if (match === 'opaque' || (match === 'some' && result === 'yes')) result = match;
  }
  return result;
}

interface Walk {
  readonly table: FwTable;
  readonly flow: Flow;
  spent: number;
}

class TooComplex extends Error {}

interface Steps {
  readonly ends: Outcome[];
  /** Conditions under which the walk goes on after the rule (a chain that fell through, a non-terminal target). */
  readonly next: (readonly Branch[])[];
  /** Conditions under which the walk leaves the current chain (RETURN, a goto'ed chain that fell through). */
  readonly leave: (readonly Branch[])[];
}

interface ChainWalk {
  readonly ends: Outcome[];
  /** Conditions under which the chain returns to its caller (or, for a base chain, reaches its policy). */
  readonly returns: (readonly Branch[])[];
}

function act(walk: Walk, rule: FwRule, when: readonly Branch[], depth: number): Steps {
  const action = rule.action;
  const steps: Steps = { ends: [], next: [], leave: [] };
  switch (action.kind) {
    case 'accept':
    case 'drop':
    case 'opaque':
      steps.ends.push({ verdict: action.kind, by: rule.text, when });
      break;
    case 'continue':
      steps.next.push(when);
      break;
    case 'return':
      steps.leave.push(when);
      break;
    case 'jump':
    case 'goto': {
      if (depth >= MAX_DEPTH) throw new TooComplex(`jumps nest deeper than ${MAX_DEPTH}`);
      const inner = walkChain(walk, action.chain, 0, when, depth + 1);
      steps.ends.push(...inner.ends);
      (action.kind === 'jump' ? steps.next : steps.leave).push(...inner.returns);
      break;
    }
  }
  return steps;
}

function walkChain(walk: Walk, chain: string, from: number, when: readonly Branch[], depth: number): ChainWalk {
  const rules = walk.table.chains.get(chain) ?? [];
  const result: ChainWalk = { ends: [], returns: [] };
  for (let i = from; i < rules.length; i++) {
    walk.spent++;
    if (walk.spent > BUDGET) throw new TooComplex(`more than ${BUDGET} rules to follow`);
    const rule = rules[i] as FwRule;
    const match = ruleMatch(rule, walk.flow);
    if (match === 'no') continue;
    const sure = match === 'yes';
    const branch = sure ? when : [...when, { rule: rule.text, opaque: match === 'opaque' }];
    const steps = act(walk, rule, branch, depth);
    result.ends.push(...steps.ends);
    result.returns.push(...steps.leave);
    // Going on after a fork walks the same rules with the same flow as the main path (which goes on
    // when the rule does not match), so it can only repeat the main path's outcomes: not walked twice.
    if (!sure) continue;
    if (steps.next.some((next) => next.length === when.length)) continue;
    // The main path ended here; only what went on under a condition (a RETURN inside a jump) goes on.
    for (const next of steps.next) {
      const rest = walkChain(walk, chain, i + 1, next, depth);
      result.ends.push(...rest.ends);
      result.returns.push(...rest.returns);
    }
    return result;
  }
  result.returns.push(when);
  return result;
}

function judgeChain(table: FwTable, base: FwTable['baseChains'][number], flow: Flow): ChainVerdict {
  const policyText = `policy ${base.policy} of ${table.label} ${base.chain}`;
  let walked: ChainWalk;
  try {
    walked = walkChain({ table, flow, spent: 0 }, base.chain, 0, [], 0);
  } catch (error) {
    if (!(error instanceof TooComplex)) throw error;
    return { table, chain: base.chain, verdict: 'unknown', by: `${table.label} ${base.chain}: ${error.message}`, exceptions: [] };
  }
  const outcomes: Outcome[] = [...walked.ends, ...walked.returns.map((when) => ({ verdict: base.policy, by: policyText, when }))];
  const main = outcomes.find((o) => o.when.length === 0) as Outcome;
  const others = outcomes.filter((o) => o !== main && o.verdict !== main.verdict);
  if (main.verdict === 'opaque') return { table, chain: base.chain, verdict: 'unknown', by: main.by, exceptions: others };
  // A rule that cannot be judged and would change the verdict makes the verdict unknown: never a false ok or fail.
  const undecided = others.find((o) => o.verdict === 'opaque' || o.when.some((b) => b.opaque));
  if (undecided) {
    const rule = undecided.when.find((b) => b.opaque)?.rule ?? undecided.by;
    return { table, chain: base.chain, verdict: 'unknown', by: rule, exceptions: others };
  }
  return { table, chain: base.chain, verdict: main.verdict, by: main.by, exceptions: others };
}

/** What the hook's base chains in all tables do with the flow. */
export function judgeFlow(tables: readonly FwTable[], hook: Hook, flow: Flow): HookVerdict {
  const chains = tables
    .flatMap((table) => table.baseChains.filter((b) => b.hook === hook).map((base) => ({ table, base })))
    .sort((a, b) => a.base.priority - b.base.priority)
    .map(({ table, base }) => judgeChain(table, base, flow));
  const verdict = chains.some((c) => c.verdict === 'drop') ? 'drop' : chains.some((c) => c.verdict === 'unknown') ? 'unknown' : 'accept';
  return { verdict, chains };
}

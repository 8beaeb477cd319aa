// Our parser of iptables-save output into JSON (tables, chains, rules, and a
// structured reading of every rule). iptables-save prints rules in its own
// canonical form, so rules are compared by their parsed argument tokens.

import type { IptChain, IptRule, IptTable, Negatable, RuleSpec } from '../model/kernel.js';

export class ParseError extends Error {
  constructor(what: string, line: number, detail: string) {
    super(`${what}, line ${line}: ${detail}`);
    this.name = 'ParseError';
  }
}

/**
 * Splits a rule line the way iptables-save quotes it: arguments containing
 * spaces are double-quoted, with backslash escaping inside the quotes.
 */
export function tokenize(line: string, lineNumber = 0): string[] {
  // Most lines quote nothing (every line of a 50k-entry ipset save): split them directly.
  if (!line.includes('"')) return line.split(/[ \t]+/).filter((token) => token !== '');
  const tokens: string[] = [];
  let i = 0;
  while (i < line.length) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    let token = '';
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') {
      const char = line[i] as string;
      if (char === '"') {
        i++;
        while (i < line.length && line[i] !== '"') {
          if (line[i] === '\\' && i + 1 < line.length) i++;
          token += line[i];
          i++;
        }
        if (i >= line.length) throw new ParseError('iptables-save', lineNumber, 'unterminated quote');
        i++;
      } else {
        token += char;
        i++;
      }
    }
    tokens.push(token);
  }
  return tokens;
}

const COUNTERS = /^\[([0-9]+):([0-9]+)\]$/;

function parseCounters(text: string | undefined): readonly [number, number] | undefined {
  const match = text === undefined ? null : COUNTERS.exec(text);
  return match ? [Number(match[1]), Number(match[2])] : undefined;
}

const BASIC: Record<string, keyof Pick<RuleSpec, 'protocol' | 'source' | 'destination' | 'inInterface' | 'outInterface'>> = {
  '-p': 'protocol',
  '--protocol': 'protocol',
  '-s': 'source',
  '--source': 'source',
  '-d': 'destination',
  '--destination': 'destination',
  '-i': 'inInterface',
  '--in-interface': 'inInterface',
  '-o': 'outInterface',
  '--out-interface': 'outInterface',
};

/** Reads the arguments after "-A CHAIN" into protocol/addresses/interfaces, matches and target. */
export function parseRuleSpec(args: readonly string[]): RuleSpec {
  const spec: {
    -readonly [K in keyof RuleSpec]: RuleSpec[K];
  } & { matches: { module: string; options: string[] }[]; targetOptions: string[] } = { matches: [], targetOptions: [] };
  let negated = false;
  let current: string[] | null = null;
  for (let i = 0; i < args.length; i++) {
    const token = args[i] as string;
    const basic = BASIC[token];
    if (token === '!' && (args[i + 1] ?? '') in BASIC) {
      negated = true;
      continue;
    }
    if (basic && current !== spec.targetOptions) {
      const value: Negatable = { value: args[++i] ?? '', negated };
      spec[basic] = value;
      negated = false;
      current = null;
    } else if ((token === '-m' || token === '--match') && current !== spec.targetOptions) {
      const match = { module: args[++i] ?? '', options: [] as string[] };
      spec.matches.push(match);
      current = match.options;
    } else if ((token === '-j' || token === '--jump') && spec.jump === undefined && spec.goto === undefined) {
      spec.jump = args[++i] ?? '';
      current = spec.targetOptions;
    } else if ((token === '-g' || token === '--goto') && spec.jump === undefined && spec.goto === undefined) {
      spec.goto = args[++i] ?? '';
      current = spec.targetOptions;
    } else if (current) {
      current.push(token);
    } else {
      // An option outside any match (e.g. "-f"); keep it visible as a pseudo-match.
      spec.matches.push({ module: '', options: [token] });
    }
  }
  return spec;
}

/** Parses a whole iptables-save dump (any tables, with or without -c counters). */
export function parseIptablesSave(text: string): IptTable[] {
  const tables: { name: string; chains: IptChain[]; rules: IptRule[] }[] = [];
  let table: (typeof tables)[number] | null = null;
  const lines = text.split('\n');
  lines.forEach((rawLine, index) => {
    const lineNumber = index + 1;
    const line = rawLine.trimEnd();
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      if (table) throw new ParseError('iptables-save', lineNumber, `table ${line.slice(1)} starts before ${table.name} was committed`);
      table = { name: line.slice(1), chains: [], rules: [] };
      if (!/^[a-z]+$/.test(table.name)) throw new ParseError('iptables-save', lineNumber, `bad table name "${table.name}"`);
      return;
    }
    if (!table) throw new ParseError('iptables-save', lineNumber, 'content outside a table');
    if (line === 'COMMIT') {
      tables.push(table);
      table = null;
      return;
    }
    if (line.startsWith(':')) {
      const [name, policy, counters] = line.slice(1).split(' ');
      if (!name || !policy) throw new ParseError('iptables-save', lineNumber, 'chain line without a policy');
      table.chains.push({ name, policy: policy === '-' ? null : policy, ...optional('counters', parseCounters(counters)) });
      return;
    }
    const tokens = tokenize(line, lineNumber);
    const counters = parseCounters(tokens[0]);
    if (counters) tokens.shift();
    if (tokens[0] !== '-A' || tokens[1] === undefined) throw new ParseError('iptables-save', lineNumber, `unexpected line "${line.slice(0, 80)}"`);
    const chain = tokens[1];
    if (!table.chains.some((c) => c.name === chain)) throw new ParseError('iptables-save', lineNumber, `rule for undeclared chain ${chain}`);
    const args = tokens.slice(2);
    table.rules.push({ chain, args, ...optional('counters', counters), spec: parseRuleSpec(args) });
  });
  if (table) throw new ParseError('iptables-save', lines.length, `table ${(table as { name: string }).name} is not committed`);
  return tables;
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** Renders argument tokens back into one line, quoting the way iptables-save does. */
export function joinArgs(args: readonly string[]): string {
  return args.map((arg) => (/^[^\s"\\]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`)).join(' ');
}

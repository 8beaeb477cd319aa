// The fake's iptables (nf_tables flavour, as on the machines we run on):
// tables of chains of rules, loaded by `iptables-restore --noflush` and
// printed by `iptables-save` in the real tool's canonical form.
//
// Semantics measured on iptables 1.8.9 (nf_tables):
// - each table's block is one transaction, committed at its COMMIT: a failing
//   line (a -D of a rule that is not there, a -X of a chain still jumped to or
//   not empty) leaves that table exactly as it was; tables committed earlier
//   in the same input stay committed;
// - `:CHAIN - [0:0]` creates a user chain, or empties it when it exists;
// - a table exists once something was loaded into it, with all its built-in
//   chains; `iptables-save` prints existing tables only, `-t NAME` prints the
//   table (bare) even when it does not exist;
// - rules print with -s/-d/-i/-o/-p first, addresses as CIDR, marks in hex,
//   `-p tcp --dport` with its implicit `-m tcp`, MARK/CONNMARK --set-mark as
//   --set-xmark; user chains sorted by name after the built-in ones.

import { joinArgs, tokenize } from '../../../src/parse/iptables-save.js';
import { hexOf, parseNumber, prefix, ToolFailure } from './failure.js';

export const BUILTIN_CHAINS: Readonly<Record<string, readonly string[]>> = {
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  security: ['INPUT', 'FORWARD', 'OUTPUT'],
  raw: ['PREROUTING', 'OUTPUT'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
};
/** The order iptables-nft-save prints tables in. */
const TABLE_ORDER = ['mangle', 'security', 'raw', 'filter', 'nat'];

/** Targets that are extensions, not chains (the ones our rules and the tests use). */
const TARGETS = new Set(['ACCEPT', 'DROP', 'RETURN', 'QUEUE', 'MARK', 'CONNMARK', 'SET', 'MASQUERADE', 'SNAT', 'DNAT', 'REDIRECT', 'LOG', 'REJECT', 'TCPMSS', 'CT', 'NFLOG', 'CLASSIFY', 'HMARK', 'NETMAP']);

/** Fixed, so that save output is stable; the parsers skip comments anyway. */
export const SAVE_DATE = 'Sun Nov 22 17:02:30 2026';

interface Rule {
  readonly args: readonly string[];
  counters: [number, number];
}

interface Chain {
  policy: string | null;
  rules: Rule[];
}

type Table = Map<string, Chain>;

function freshTable(name: string): Table {
  return new Map((BUILTIN_CHAINS[name] ?? []).map((chain) => [chain, { policy: 'ACCEPT', rules: [] }]));
}

function cloneTable(table: Table): Table {
  return new Map([...table].map(([name, chain]) => [name, { policy: chain.policy, rules: chain.rules.map((r) => ({ args: r.args, counters: [...r.counters] as [number, number] })) }]));
}

const LONG_BASIC: Record<string, string> = {
  '--source': '-s',
  '--destination': '-d',
  '--in-interface': '-i',
  '--out-interface': '-o',
  '--protocol': '-p',
};
const BASIC_ORDER = ['-s', '-d', '-i', '-o', '-p'];
const LONG_OTHER: Record<string, string> = { '--jump': '-j', '--goto': '-g', '--match': '-m' };
const MARK_VALUES = new Set(['--mark', '--set-xmark', '--set-mark', '--nfmask', '--ctmask', '--mask']);

/** A mark value[/mask] in hex, as iptables-save prints it. */
function hexMark(text: string): string {
  const [value, mask] = text.split('/');
  const v = parseNumber(value ?? '');
  const m = mask === undefined ? null : parseNumber(mask);
  if (v === null || (mask !== undefined && m === null)) return text;
  return m === null ? hexOf(v) : `${hexOf(v)}/${hexOf(m)}`;
}

/** A rule's arguments in the form iptables-save prints them. */
export function canonicalRule(args: readonly string[]): string[] {
  const basic = new Map<string, string[]>();
  const rest: string[] = [];
  let target: string | undefined;
  for (let i = 0; i < args.length; i++) {
    let token = args[i] as string;
    const next = args[i + 1] ?? '';
    const negated = token === '!' && target === undefined && BASIC_ORDER.includes(LONG_BASIC[next] ?? next);
    if (negated) token = args[++i] as string;
    token = LONG_BASIC[token] ?? LONG_OTHER[token] ?? token;
    if (target === undefined && BASIC_ORDER.includes(token)) {
      let value = args[++i] ?? '';
      if ((token === '-s' || token === '-d') && prefix(value) && !value.includes('/')) value = `${value}/32`;
      basic.set(token, [...(negated ? ['!'] : []), token, value]);
      continue;
    }
    if (token === '-j' || token === '-g') target = args[i + 1];
    if (MARK_VALUES.has(token) && args[i + 1] !== undefined) {
      let value = hexMark(args[++i] as string);
      // A mark match with every bit in its mask is printed as the bare value (as the lab's iptables-save does).
      if (token === '--mark' && value.endsWith('/0xffffffff')) value = value.slice(0, -'/0xffffffff'.length);
      // MARK/CONNMARK --set-mark V[/M] is stored as --set-xmark V/M (a bare value sets every bit).
      if (token === '--set-mark' && (target === 'MARK' || target === 'CONNMARK')) {
        token = '--set-xmark';
        if (!value.includes('/')) value = `${value}/0xffffffff`;
      }
      rest.push(token, value);
      continue;
    }
    // `-p tcp --dport 80`: the protocol's match is loaded implicitly and printed.
    const protocol = basic.get('-p')?.at(-1);
    if ((token === '--dport' || token === '--sport') && protocol && !rest.includes('-m')) rest.push('-m', protocol);
    rest.push(token);
  }
  return [...BASIC_ORDER.flatMap((key) => basic.get(key) ?? []), ...rest];
}

const same = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((t, i) => t === b[i]);

function jumpTarget(args: readonly string[]): string | undefined {
  for (let i = 0; i < args.length - 1; i++) if (args[i] === '-j' || args[i] === '-g') return args[i + 1];
  return undefined;
}

export class Netfilter {
  private tables = new Map<string, Table>();

  clone(): Netfilter {
    const copy = new Netfilter();
    copy.tables = new Map([...this.tables].map(([name, table]) => [name, cloneTable(table)]));
    return copy;
  }

  has(table: string): boolean {
    return this.tables.has(table);
  }

  /** `nft delete table ip NAME`: the whole table goes, whatever it holds. */
  deleteTable(name: string): boolean {
    return this.tables.delete(name);
  }

  /** Whether any rule names the ipset (a set in use cannot be destroyed). */
  usesSet(name: string): boolean {
    for (const table of this.tables.values()) {
      for (const chain of table.values()) {
        if (chain.rules.some((r) => r.args.some((a, i) => (a === '--map-set' || a === '--match-set') && r.args[i + 1] === name))) return true;
      }
    }
    return false;
  }

  /** Sets a rule's [packets, bytes], as traffic through it would (for `iptables-save -c` readers). */
  count(table: string, chain: string, index: number, packets: number, bytes: number): void {
    const rule = this.tables.get(table)?.get(chain)?.rules[index];
    if (!rule) throw new Error(`fake kernel: no rule ${index} in ${table}/${chain}`);
    rule.counters = [packets, bytes];
  }

  /** `iptables-restore [--noflush]`: one transaction per table; without --noflush each table named starts empty. */
  restore(input: string, flush = false): void {
    let current: { name: string; table: Table } | null = null;
    const lines = input.split('\n');
    for (let index = 0; index < lines.length; index++) {
      const number = index + 1;
      const line = (lines[index] as string).trim();
      if (line === '' || line.startsWith('#')) continue;
      const fail = (detail: string, exitCode = 1): never => {
        throw new ToolFailure(exitCode, `iptables-restore: line ${number} failed: ${detail}\n`);
      };
      if (line.startsWith('*')) {
        if (current) fail(`table ${line.slice(1)} starts before ${current.name} was committed`, 2);
        const name = line.slice(1);
        if (!BUILTIN_CHAINS[name]) fail(`unable to initialize table '${name}'`);
        const existing = this.tables.get(name);
        current = { name, table: existing && !flush ? cloneTable(existing) : freshTable(name) };
        continue;
      }
      if (!current) throw new ToolFailure(2, `iptables-restore: line ${number} failed: content outside a table\n`);
      const table: Table = current.table;
      if (line === 'COMMIT') {
        this.tables.set(current.name, table);
        current = null;
        continue;
      }
      if (line.startsWith(':')) {
        const [chain = '', policy = ''] = line.slice(1).split(/\s+/);
        const builtin = (BUILTIN_CHAINS[current.name] as readonly string[]).includes(chain);
        if (builtin) {
          if (policy === '-') fail(`built-in chain ${chain} needs a policy`, 2);
          (table.get(chain) as Chain).policy = policy;
        } else {
          if (policy !== '-') fail(`user chain ${chain} cannot have a policy`, 2);
          const existing = table.get(chain);
          if (existing) existing.rules = [];
          else table.set(chain, { policy: null, rules: [] });
        }
        continue;
      }
      this.command(current.name, table, tokenize(line, number), number, fail);
    }
    if (current) throw new ToolFailure(1, `iptables-restore: COMMIT expected at line ${lines.length}\n`);
  }

  private command(tableName: string, table: Table, tokens: readonly string[], number: number, fail: (detail: string, exitCode?: number) => never): void {
    const [verb, chainName] = tokens;
    const builtins = BUILTIN_CHAINS[tableName] as readonly string[];
    const chainOf = (name: string | undefined): Chain => {
      const chain = name === undefined ? undefined : table.get(name);
      return chain ?? fail(`No chain/target/match by that name (chain ${name ?? '(none)'}).`);
    };
    const referenced = (name: string): boolean => [...table.values()].some((c) => c.rules.some((r) => jumpTarget(r.args) === name));
    const checkTarget = (args: readonly string[]): void => {
      const target = jumpTarget(args);
      if (target !== undefined && !TARGETS.has(target) && !table.has(target)) fail(`Couldn't load target \`${target}':No such file or directory`, 2);
    };
    const dropChain = (name: string): void => {
      if (builtins.includes(name)) fail(`cannot delete built-in chain ${name}`);
      const chain = chainOf(name);
      if (chain.rules.length > 0 || referenced(name)) {
        throw new ToolFailure(4, `iptables-restore v1.8.9 (nf_tables): \nline ${number}: CHAIN_DEL failed (Device or resource busy): chain ${name}\n`);
      }
      table.delete(name);
    };
    switch (verb) {
      case '-A': {
        const args = canonicalRule(tokens.slice(2));
        const chain = chainOf(chainName);
        checkTarget(args);
        chain.rules.push({ args, counters: [0, 0] });
        return;
      }
      case '-I': {
        const chain = chainOf(chainName);
        const numbered = /^[0-9]+$/.test(tokens[2] ?? '');
        const at = numbered ? Number(tokens[2]) : 1;
        const args = canonicalRule(tokens.slice(numbered ? 3 : 2));
        if (at < 1 || at > chain.rules.length + 1) fail('Index of insertion too big.');
        checkTarget(args);
        chain.rules.splice(at - 1, 0, { args, counters: [0, 0] });
        return;
      }
      case '-D': {
        const chain = chainOf(chainName);
        const byNumber = tokens.length === 3 && /^[0-9]+$/.test(tokens[2] as string);
        const args = canonicalRule(tokens.slice(2));
        const at = byNumber ? Number(tokens[2]) - 1 : chain.rules.findIndex((r) => same(r.args, args));
        if (at < 0 || at >= chain.rules.length) fail('Bad rule (does a matching rule exist in that chain?).');
        chain.rules.splice(at, 1);
        return;
      }
      case '-F':
        for (const chain of chainName === undefined ? table.values() : [chainOf(chainName)]) chain.rules = [];
        return;
      case '-X':
        for (const name of chainName === undefined ? [...table.keys()].filter((c) => !builtins.includes(c)) : [chainName]) dropChain(name);
        return;
      case '-N':
        if (chainName === undefined || table.has(chainName)) fail(`Chain already exists (${chainName ?? ''}).`);
        table.set(chainName as string, { policy: null, rules: [] });
        return;
      case '-P':
        if (!builtins.includes(chainName ?? '') || tokens[2] === undefined) fail('Bad built-in chain name or policy.');
        chainOf(chainName).policy = tokens[2] as string;
        return;
      default:
        fail(`unknown command "${tokens.join(' ')}"`, 2);
    }
  }

  private renderTable(name: string, table: Table, counters: boolean): string[] {
    const builtins = BUILTIN_CHAINS[name] as readonly string[];
    const users = [...table.keys()].filter((c) => !builtins.includes(c)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const order = [...builtins, ...users];
    const lines = [`*${name}`];
    for (const chain of order) lines.push(`:${chain} ${(table.get(chain) as Chain).policy ?? '-'} [0:0]`);
    for (const chain of order) {
      for (const rule of (table.get(chain) as Chain).rules) lines.push(`${counters ? `[${rule.counters[0]}:${rule.counters[1]}] ` : ''}-A ${chain} ${joinArgs(rule.args)}`);
    }
    lines.push('COMMIT');
    return lines;
  }

  /** `iptables-save [-c] [-t TABLE]`. */
  save(options: { counters?: boolean; table?: string } = {}): string {
    const names = options.table !== undefined ? [options.table] : TABLE_ORDER.filter((t) => this.tables.has(t));
    const out: string[] = [];
    for (const name of names) {
      if (!BUILTIN_CHAINS[name]) throw new ToolFailure(1, `iptables-save v1.8.9 (nf_tables): table '${name}' does not exist\n`);
      out.push(`# Generated by iptables-save v1.8.9 (nf_tables) on ${SAVE_DATE}`);
      out.push(...this.renderTable(name, this.tables.get(name) ?? freshTable(name), options.counters ?? false));
      out.push(`# Completed on ${SAVE_DATE}`);
    }
    return out.length > 0 ? `${out.join('\n')}\n` : '';
  }

  /** The tables as text for golden files (counters left out: they are traffic, not state). */
  dump(): string[] {
    return TABLE_ORDER.filter((t) => this.tables.has(t)).flatMap((name) => this.renderTable(name, this.tables.get(name) as Table, false));
  }
}

// The fake's ipset: hash:ip / hash:net sets with the skbinfo extension,
// loaded by `ipset -exist restore` and printed by `ipset save` / `ipset list -n`.
//
// Semantics measured on ipset 7.17:
// - restore is NOT one transaction: lines apply in order and the first bad
//   one stops it ("Error in line N"), what came before stays;
// - with -exist: `create` of the same set again is accepted, of a set with
//   other parameters (type, family, maxelem, hashsize, extensions) refused;
//   `add` of a present entry replaces its options but keeps its counters
//   unless it gives them (packets N bytes N, printed first; no traffic here,
//   so they stay what was loaded); `del` of an absent entry
//   and `destroy` of an absent set are accepted;
// - `destroy` of a set an iptables rule uses is refused;
// - `swap` exchanges two sets' contents under their names (same type only);
// - hashsize is rounded up to a power of two; a full skbmark mask is not printed;
// - family inet6 takes IPv6 members only (and inet IPv4 only); a host network
//   (/32, /128) prints bare.
// Members print sorted by address (the kernel prints hash order): stable for golden files.

import { isIPv6 } from 'node:net';
import { tokenize } from '../../../src/parse/iptables-save.js';
import { hexOf, ipv4, parseNumber, prefix, ToolFailure } from './failure.js';

const TYPES = new Set(['hash:ip', 'hash:net']);
const FLAGS = ['counters', 'comment', 'skbinfo'] as const;

interface IpSet {
  type: string;
  family: string;
  hashsize: number;
  maxelem: number;
  flags: Set<string>;
  /** Member → its options as printed ("skbmark 0x1000000/0xf000000"). */
  entries: Map<string, string>;
}

function cloneSet(set: IpSet): IpSet {
  return { ...set, flags: new Set(set.flags), entries: new Map(set.entries) };
}

function sameParameters(a: IpSet, b: IpSet): boolean {
  return a.type === b.type && a.family === b.family && a.hashsize === b.hashsize && a.maxelem === b.maxelem && FLAGS.every((f) => a.flags.has(f) === b.flags.has(f));
}

/** The kernel's per-set hash seed; derived from the name so that saves are stable. */
function initval(name: string): string {
  let h = 0x811c9dc5;
  for (const char of name) h = Math.imul(h ^ char.charCodeAt(0), 0x01000193) >>> 0;
  return hexOf(h);
}

function memberOrder(a: string, b: string): number {
  if (a.includes(':') || b.includes(':')) return a < b ? -1 : a > b ? 1 : 0;
  const [na, la] = prefix(a) ?? [0, 0];
  const [nb, lb] = prefix(b) ?? [0, 0];
  return na - nb || la - lb;
}

export class Ipsets {
  private sets = new Map<string, IpSet>();

  clone(): Ipsets {
    const copy = new Ipsets();
    copy.sets = new Map([...this.sets].map(([name, set]) => [name, cloneSet(set)]));
    return copy;
  }

  names(): string[] {
    return [...this.sets.keys()];
  }

  /** `ipset list -t NAME` (the header without members), or null when there is no such set; `references` counts the rules using it. */
  header(name: string, inUse: (name: string) => boolean): string | null {
    const set = this.sets.get(name);
    if (!set) return null;
    return `Name: ${name}\nType: ${set.type}\nRevision: 6\nHeader: family ${set.family} hashsize ${set.hashsize} maxelem ${set.maxelem}\nSize in memory: 0\nReferences: ${inUse(name) ? 1 : 0}\nNumber of entries: ${set.entries.size}\n`;
  }

  /** `ipset [-exist] restore`; `inUse` says whether iptables references a set. */
  restore(input: string, exist: boolean, inUse: (name: string) => boolean): void {
    const lines = input.split('\n');
    for (let index = 0; index < lines.length; index++) {
      const line = (lines[index] as string).trim();
      if (line === '' || line.startsWith('#')) continue;
      const fail = (detail: string): never => {
        throw new ToolFailure(1, `ipset v7.17: Error in line ${index + 1}: ${detail}\n`);
      };
      this.line(tokenize(line, index + 1), exist, inUse, fail);
    }
  }

  private line(tokens: readonly string[], exist: boolean, inUse: (name: string) => boolean, fail: (detail: string) => never): void {
    const [verb, name = '', third] = tokens;
    const missing = (): never => fail('The set with the given name does not exist');
    switch (verb) {
      case 'create': {
        const set = this.parseCreate(tokens.slice(2), fail);
        const existing = this.sets.get(name);
        if (existing && (!exist || !sameParameters(existing, set))) fail('Set cannot be created: set with the same name already exists');
        if (!existing) this.sets.set(name, set);
        return;
      }
      case 'add':
      case 'del': {
        const set = this.sets.get(name) ?? missing();
        const member = this.member(set, third, fail);
        if (verb === 'del') {
          if (!set.entries.delete(member) && !exist) fail("Element cannot be deleted from the set: it's not added");
          return;
        }
        if (set.entries.has(member) && !exist) fail("Element cannot be added to the set: it's already added");
        if (!set.entries.has(member) && set.entries.size >= set.maxelem) fail('Hash is full, cannot add more elements');
        set.entries.set(member, this.entryOptions(set, tokens.slice(3), fail, set.entries.get(member)));
        return;
      }
      case 'swap': {
        const a = this.sets.get(name) ?? missing();
        const b = this.sets.get(third ?? '') ?? missing();
        if (a.type !== b.type || a.family !== b.family) fail('The sets cannot be swapped: their type does not match');
        this.sets.set(name, b);
        this.sets.set(third as string, a);
        return;
      }
      case 'destroy': {
        if (!this.sets.has(name)) {
          if (exist) return;
          missing();
        }
        if (inUse(name)) fail('Set cannot be destroyed: it is in use by a kernel component');
        this.sets.delete(name);
        return;
      }
      case 'flush':
        (this.sets.get(name) ?? missing()).entries.clear();
        return;
      default:
        // The fake does not know this verb: refuse loudly rather than guess.
        throw new Error(`fake kernel: ipset restore verb it does not know: "${tokens.join(' ')}"`);
    }
  }

  private parseCreate(tokens: readonly string[], fail: (detail: string) => never): IpSet {
    const [type = ''] = tokens;
    if (!TYPES.has(type)) throw new Error(`fake kernel: ipset type it does not model: "${type}"`);
    const set: IpSet = { type, family: 'inet', hashsize: 1024, maxelem: 65536, flags: new Set(), entries: new Map() };
    for (let i = 1; i < tokens.length; i++) {
      const key = tokens[i] as string;
      if ((FLAGS as readonly string[]).includes(key)) {
        set.flags.add(key);
        continue;
      }
      const value = tokens[++i];
      if (value === undefined) fail(`option ${key} needs a value`);
      if (key === 'family') set.family = value as string;
      else if (key === 'hashsize' || key === 'maxelem') {
        const n = parseNumber(value as string);
        if (n === null || n < 1) fail(`${key} must be a number`);
        if (key === 'maxelem') set.maxelem = n as number;
        else set.hashsize = Math.max(64, 2 ** Math.ceil(Math.log2(n as number)));
      } else if (key !== 'bucketsize' && key !== 'initval') fail(`Unknown argument: "${key}"`);
    }
    if (set.family !== 'inet' && set.family !== 'inet6') throw new Error(`fake kernel: ipset family it does not model: "${set.family}"`);
    return set;
  }

  private member(set: IpSet, text: string | undefined, fail: (detail: string) => never): string {
    if (set.family === 'inet6') {
      const [address = '', length] = (text ?? '').split('/');
      const bits = length === undefined ? 128 : Number(length);
      const whole = set.type === 'hash:ip' ? length === undefined : Number.isInteger(bits) && bits >= 1 && bits <= 128;
      if (!isIPv6(address) || !whole) fail(`Syntax error: cannot parse ${text ?? ''}: resolving to IPv6 address failed`);
      return bits === 128 ? address : (text as string);
    }
    if (set.type === 'hash:ip') {
      if (text === undefined || ipv4(text) === null) fail(`Syntax error: cannot parse ${text ?? ''}: resolving to IPv4 address failed`);
      return text as string;
    }
    const p = text === undefined ? null : prefix(text);
    if (!p) return fail(`Syntax error: cannot parse ${text ?? ''}`);
    return text?.includes('/') && p[1] !== 32 ? (text as string) : (text as string).replace(/\/32$/, '');
  }

  /** An entry's options as ipset prints them: "packets N bytes N" first with counters (kept from `before` unless given: an -exist add), then the skbmark. */
  private entryOptions(set: IpSet, tokens: readonly string[], fail: (detail: string) => never, before?: string): string {
    const counters = { packets: /packets ([0-9]+)/.exec(before ?? '')?.[1] ?? '0', bytes: /bytes ([0-9]+)/.exec(before ?? '')?.[1] ?? '0' };
    const out: string[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const key = tokens[i] as string;
      const value = tokens[++i];
      if (key === 'packets' || key === 'bytes') {
        if (!set.flags.has('counters')) fail('Extension counters is not supported by the set');
        if (value === undefined || !/^[0-9]+$/.test(value)) fail(`Syntax error: ${key} ${value ?? ''}`);
        counters[key] = value as string;
        continue;
      }
      if (key !== 'skbmark') fail(`Unknown argument: "${key}"`);
      if (!set.flags.has('skbinfo')) fail('Extension skbinfo is not supported by the set');
      const [v, m] = (value ?? '').split('/');
      const mark = parseNumber(v ?? '');
      const mask = m === undefined ? 0xffffffff : parseNumber(m);
      if (mark === null || mask === null) fail(`Syntax error: skbmark ${value ?? ''}`);
      out.push('skbmark', mask === 0xffffffff ? hexOf(mark as number) : `${hexOf(mark as number)}/${hexOf(mask as number)}`);
    }
    return [...(set.flags.has('counters') ? ['packets', counters.packets, 'bytes', counters.bytes] : []), ...out].join(' ');
  }

  private renderSet(name: string, set: IpSet): string[] {
    const flags = FLAGS.filter((f) => set.flags.has(f));
    const header = [`create ${name} ${set.type} family ${set.family} hashsize ${set.hashsize} maxelem ${set.maxelem}`, ...flags, `bucketsize 12 initval ${initval(name)}`].join(' ');
    const members = [...set.entries].sort(([a], [b]) => memberOrder(a, b));
    return [header, ...members.map(([member, options]) => `add ${name} ${member}${options ? ` ${options}` : ''}`)];
  }

  /** `ipset save [NAME]`. */
  save(name?: string): string {
    const names = name === undefined ? this.names() : [name];
    const lines: string[] = [];
    for (const n of names) {
      const set = this.sets.get(n);
      if (!set) throw new ToolFailure(1, 'ipset v7.17: The set with the given name does not exist\n');
      lines.push(...this.renderSet(n, set));
    }
    return lines.length > 0 ? `${lines.join('\n')}\n` : '';
  }

  /** The sets as text for golden files, sorted by name. */
  dump(): string[] {
    return [...this.sets.keys()].sort().flatMap((name) => this.renderSet(name, this.sets.get(name) as IpSet));
  }
}

// `ipset save` output (the restore format): "create NAME TYPE opts…" and
// "add NAME MEMBER opts…" lines. Options are flags ("skbinfo") or key/value
// pairs ("maxelem 65536", "skbmark 0x1000000/0xf000000").

import type { IpsetDump, IpsetEntry, IpsetSet } from '../model/kernel.js';
import { detached } from './detached.js';
import { ParseError, tokenize } from './iptables-save.js';

/** Options that stand alone; every other option takes one value. "comment" is a flag on a set, text on an entry. */
const CREATE_FLAGS = new Set(['counters', 'comment', 'skbinfo', 'forceadd']);
const ADD_FLAGS = new Set(['nomatch']);

function parseOptions(tokens: readonly string[], lineNumber: number, flags: ReadonlySet<string>): Record<string, string | true> {
  const options: Record<string, string | true> = {};
  for (let i = 0; i < tokens.length; i++) {
    const key = tokens[i] as string;
    if (flags.has(key)) {
      options[key] = true;
      continue;
    }
    const value = tokens[i + 1];
    if (value === undefined) throw new ParseError('ipset save', lineNumber, `option ${key} has no value`);
    options[key] = value;
    i++;
  }
  return options;
}

export function parseIpsetSave(text: string): IpsetDump {
  const sets: IpsetSet[] = [];
  const entries: IpsetEntry[] = [];
  const lines = text.split('\n');
  for (let index = 0; index < lines.length; index++) {
    const line = (lines[index] as string).trim();
    if (line === '' || line.startsWith('#')) continue;
    const lineNumber = index + 1;
    const tokens = tokenize(line, lineNumber);
    const [verb, name, third] = tokens;
    if (name === undefined || third === undefined) throw new ParseError('ipset save', lineNumber, `incomplete line "${line.slice(0, 80)}"`);
    if (verb === 'create') {
      // A set outlives the reading (what a run leaves keeps it): none of its strings is a view into 50,000 lines of output.
      const options = parseOptions(tokens.slice(3).map(detached), lineNumber, CREATE_FLAGS);
      sets.push({ name: detached(name), type: detached(third), options });
    } else if (verb === 'add') {
      entries.push({ set: name, member: third, options: parseOptions(tokens.slice(3), lineNumber, ADD_FLAGS) });
    } else {
      throw new ParseError('ipset save', lineNumber, `unknown verb "${verb}"`);
    }
  }
  return { sets, entries };
}

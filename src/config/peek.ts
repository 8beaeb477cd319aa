// Where the daemon listens, read from the config file without verifying the
// rest: commands that only talk to the daemon (status, pools, assign, the
// ppp hooks) need just the socket, and the schema and its checks are most of
// the CLI's start-up. A config mid-edit must not cut the operator or pppd off
// from a running daemon either: anything unreadable gives the default, and
// the full load (config/load.ts) reports the problems when it is needed.
//
// Loading the YAML library alone costs about 50 ms, a third of the CLI's
// start-up, so the plain cases are read without it: a file that never says
// "socket" has none (short of a quoted key with its letters escaped, which
// no one writes), and one top-level `socket: /absolute/path` line that is
// the only mention is its value. Anything else (quotes, flow style, a second
// mention, several documents) is left to the YAML library
// (config/peek-yaml.ts, loaded only then).

import { readFile } from 'node:fs/promises';
import { DEFAULT_SOCKET } from '../schema/paths.js';

/** A top-level key line whose value is a plain absolute path, and an optional comment; the value takes none of the characters YAML may give a meaning to (a conservative set: anything else is left to the library). */
const PLAIN_LINE = /^socket:[ \t]+(\/[^\s#:'"{}[\],&*!|>%@`]*)[ \t]*(?:#.*)?$/;

/** The socket when the text says it plainly, DEFAULT_SOCKET when it never mentions one, undefined when only YAML can tell. */
export function plainSocket(text: string): string | undefined {
  if (!text.includes('socket')) return DEFAULT_SOCKET;
  // A document marker means more than one document, or directives: YAML's to read.
  if (/^(?:---|\.\.\.)/m.test(text)) return undefined;
  const mentions = text.split('\n').filter((line) => line.includes('socket'));
  const only = mentions.length === 1 ? PLAIN_LINE.exec((mentions[0] as string).replace(/\r$/, '')) : null;
  return only ? (only[1] as string) : undefined;
}

export async function peekSocket(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return DEFAULT_SOCKET;
  return plainSocket(text) ?? (await import('./peek-yaml.js')).yamlSocket(text);
}

// Where the daemon listens, read from the config file without verifying the
// rest: commands that only talk to the daemon (status, pools, assign, the
// ppp hooks) need just the socket, and the schema and its checks are most of
// the CLI's start-up. A config mid-edit must not cut the operator or pppd off
// from a running daemon either: anything unreadable gives the default, and
// the full load (config/load.ts) reports the problems when it is needed.

import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { DEFAULT_SOCKET } from '../schema/paths.js';

export async function peekSocket(path: string): Promise<string> {
  const text = await readFile(path, 'utf8').catch(() => null);
  if (text === null) return DEFAULT_SOCKET;
  let doc: unknown;
  try {
    doc = parse(text, { logLevel: 'silent', maxAliasCount: 100 });
  } catch {
    return DEFAULT_SOCKET;
  }
  const socket = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>).socket : undefined;
  // The schema's rule for the value: an absolute path.
  return typeof socket === 'string' && socket.startsWith('/') ? socket : DEFAULT_SOCKET;
}

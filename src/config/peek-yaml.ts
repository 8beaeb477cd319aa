// The socket as the YAML library reads the config (config/peek.ts asks it for
// what a plain line cannot say). A module of its own so that the library,
// about 50 ms to load, is loaded only then: peek.ts imports it lazily.

import { parse } from 'yaml';
import { DEFAULT_SOCKET } from '../schema/paths.js';

export function yamlSocket(text: string): string {
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

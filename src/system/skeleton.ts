// Reads the netfilter skeleton shipped in iptables/ (the contract as data);
// the backend that uses it parses it (src/backends/iptables/skeleton.ts).

import { readFile } from 'node:fs/promises';

/** src/system/ and dist/system/ both sit two levels below the package root. */
export const SKELETON_PATH = new URL('../../iptables/skeleton.rules', import.meta.url);

export function readSkeleton(): Promise<string> {
  return readFile(SKELETON_PATH, 'utf8');
}

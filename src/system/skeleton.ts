// Loads the netfilter skeleton shipped in iptables/ (the contract as data).

import { readFile } from 'node:fs/promises';
import { parseSkeleton, type Skeleton } from '../core/netfilter.js';

/** src/system/ and dist/system/ both sit two levels below the package root. */
export const SKELETON_PATH = new URL('../../iptables/skeleton.rules', import.meta.url);

export async function loadSkeleton(): Promise<Skeleton> {
  return parseSkeleton(await readFile(SKELETON_PATH, 'utf8'));
}

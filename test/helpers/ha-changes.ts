// The reference the state channel's journal is held to (core/ha-sync.ts):
// what changed between two whole tables, as changesAmong over every client
// of both. The daemon never compares whole tables; the tests do.

import { changesAmong, type SyncBody } from '../../src/core/ha-sync.js';
import type { Assignments, ClientRecord } from '../../src/model/state.js';

export function changesBetween(before: Assignments, after: Assignments): SyncBody | null {
  const touched = new Map<string, ClientRecord | undefined>(before);
  for (const ip of after.keys()) if (!touched.has(ip)) touched.set(ip, undefined);
  return changesAmong(touched, after);
}

// The store's format (dispatcher.json, written by src/system/store.ts): one
// definition for its type (StoreData in src/model/state.ts) and for the check
// made each time it is read. Anything that does not match is not ours, and
// the store's owner decides what to do with it (refuse it, or recover).

import { z } from 'zod';
import { isIpv4 } from '../core/ipv4.js';
import { familyOf } from '../core/address.js';

const isIpv6Text = (text: string): boolean => familyOf(text) === 'ipv6';
import { INTERFACE_NAME } from '../core/names.js';

export const clientRecordSchema = z.object({
  /** Name of the uplink whose pool holds the client. */
  uplink: z.string(),
  mac: z.string(),
  /** LAN interface it was last seen on. */
  interface: z.string(),
  /** Placed by an operator (dispatcher assign); never moved by balancing or expiry. */
  pinned: z.boolean(),
  /** Epoch milliseconds. */
  firstSeen: z.number(),
  /** Epoch milliseconds; when it was last in the neighbour table, as of the last whole write (engine/persistence.ts LAST_SEEN_SAVE_MS). */
  lastSeen: z.number(),
  /** The host's IPv6 addresses → when each was last seen (epoch milliseconds); they share its pool. */
  ipv6: z.record(z.string().refine(isIpv6Text), z.number()).optional(),
});

export const storeSchema = z.object({
  version: z.literal(1),
  /** Client address → its record. */
  clients: z.record(z.string().refine(isIpv4), clientRecordSchema),
  /** Sysctl values as they were before the dispatcher first changed them; put back by flush. */
  sysctlOriginals: z.record(z.string(), z.string()).default({}),
  /** Netfilter tables that did not exist before the dispatcher's first apply (flush removes them if left empty). */
  createdTables: z.array(z.string()).default([]),
  /** The table and rule ranges last loaded, so objects left there after a config change are still found. */
  ranges: z.object({ tables: z.object({ base: z.number() }), rules: z.object({ priority: z.number() }) }).optional(),
  /** The DDNS name's AAAA records are ours (published in IPv6 nat mode): withdrawn once after IPv6 is turned off, restart or not. */
  ddnsAaaa: z.boolean().optional(),
  /** Uplink name → the interface a ppp ip-up hook reported it on, when pppd renamed it (ppp0 → ppp1). */
  bindings: z.record(z.string(), z.string().regex(INTERFACE_NAME)).optional(),
  /** The generation of this write: the clients journal (dispatcher.journal) that names it holds the changes since (src/system/store.ts). */
  journal: z.number().int().nonnegative().optional(),
});

export type StoreFormat = z.output<typeof storeSchema>;

/** The store's data, with defaults for what older versions did not write; or why it is not a store of ours (the first problem, in a few words). */
export function readStore(data: unknown): { readonly data: StoreFormat } | { readonly problem: string } {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return { problem: 'not a JSON object' };
  const result = storeSchema.safeParse(data);
  if (result.success) return { data: result.data };
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const [section, entry] = issue.path;
  const value = (data as Record<string, unknown>)[String(section)];
  if (section === 'version') return { problem: `unknown version ${JSON.stringify(value)}` };
  if (section === 'clients' && entry !== undefined) return { problem: `client entry ${JSON.stringify(String(entry)).slice(0, 40)} is malformed` };
  return { problem: value === undefined ? `"${String(section)}" is missing` : `"${String(section)}" is malformed` };
}

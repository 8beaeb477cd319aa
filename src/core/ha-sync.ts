// What the master of a pair tells the backup about its clients (pure): the
// whole table once the channel is up, then after every run only what
// changed. The backup applies them as they come, so a takeover finds every
// client on the line the master gave it (issue 21, warm standby). The
// channel itself (authentication, acks) is system/ha-channel.ts.

import type { Assignments, ClientRecord } from '../model/state.js';

/** One message's body. */
export type SyncBody = { readonly kind: 'snapshot'; readonly clients: Readonly<Record<string, ClientRecord>> } | { readonly kind: 'changes'; readonly set: Readonly<Record<string, ClientRecord>>; readonly del: readonly string[] };

export function snapshotOf(clients: Assignments): SyncBody {
  return { kind: 'snapshot', clients: Object.fromEntries(clients) };
}

/**
 * What changed from `before` to `after`: clients added or whose record
 * changed (a move, a pin, a new IPv6 address; not lastSeen alone, which
 * changes on every neighbour event and matters to no takeover), and clients
 * gone. null when nothing did.
 */
export function changesBetween(before: Assignments, after: Assignments): SyncBody | null {
  const set: Record<string, ClientRecord> = {};
  for (const [ip, record] of after) {
    const old = before.get(ip);
    if (!old || !sameButSeen(old, record)) set[ip] = record;
  }
  const del = [...before.keys()].filter((ip) => !after.has(ip));
  return Object.keys(set).length + del.length === 0 ? null : { kind: 'changes', set, del };
}

function sameButSeen(a: ClientRecord, b: ClientRecord): boolean {
  const v6 = (r: ClientRecord): string =>
    Object.keys(r.ipv6 ?? {})
      .sort()
      .join(' ');
  return a.uplink === b.uplink && a.pinned === b.pinned && a.mac === b.mac && a.interface === b.interface && a.firstSeen === b.firstSeen && v6(a) === v6(b);
}

/** The backup's clients once a message is applied: a snapshot replaces them all, changes patch them. */
export function applySync(clients: Map<string, ClientRecord>, body: SyncBody): void {
  if (body.kind === 'snapshot') {
    clients.clear();
    for (const [ip, record] of Object.entries(body.clients)) clients.set(ip, record);
    return;
  }
  for (const [ip, record] of Object.entries(body.set)) clients.set(ip, record);
  for (const ip of body.del) clients.delete(ip);
}

/** A body as received: a SyncBody, or null for anything else (the channel is authenticated; this guards against a peer of another version). */
export function parseSyncBody(text: string): SyncBody | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const body = value as Record<string, unknown>;
  const records = (v: unknown): v is Record<string, ClientRecord> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((r) => typeof r === 'object' && r !== null && typeof (r as ClientRecord).uplink === 'string');
  if (body.kind === 'snapshot' && records(body.clients)) return { kind: 'snapshot', clients: body.clients };
  if (body.kind === 'changes' && records(body.set) && Array.isArray(body.del) && body.del.every((d) => typeof d === 'string')) return { kind: 'changes', set: body.set, del: body.del as string[] };
  return null;
}

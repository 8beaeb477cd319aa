// What the master of a pair tells the backup about its clients (pure): the
// whole table once the channel is up, then after every run only what
// changed. The backup applies them as they come, so a takeover finds every
// client on the line the master gave it (issue 21, warm standby). The
// channel itself (authentication, acks) is system/ha-channel.ts.
//
// What changed is found from a journal of the clients touched since the last
// message (ClientJournal: every edit's set, delete and clear, and what each
// run's assignment says it changed), never by comparing the whole table: a
// run costs the master by what changed, not by its 50,000 clients.

import type { AssignResult } from './assign.js';
import type { Config } from '../model/config.js';
import type { Assignments, ClientEdits, ClientRecord } from '../model/state.js';
import { hex } from './marks.js';

/** One message's body. */
export type SyncBody =
  | { readonly kind: 'snapshot'; readonly layout: string; readonly clients: Readonly<Record<string, ClientRecord>> }
  | { readonly kind: 'changes'; readonly set: Readonly<Record<string, ClientRecord>>; readonly del: readonly string[] };

/**
 * What both gateways must have alike for a client's pool to mean the same
 * line on both: a pool, and the connection mark conntrackd syncs, follow the
 * uplink's place in the list and the mark layout.
 */
export function layoutOf(config: Config): string {
  return `uplinks ${config.uplinks.map((u) => u.name).join(', ')}; marks.mask ${hex(config.marks.mask)}`;
}

/** The whole table, with the layout it means (`layout`: layoutOf the sender's config). */
export function snapshotOf(clients: Assignments, layout: string): SyncBody {
  return { kind: 'snapshot', layout, clients: Object.fromEntries(clients) };
}

/**
 * The clients whose record changed (not the times of its IPv6 addresses
 * alone) and the ones gone, among some clients only: `before` holds each
 * client that may have changed, with its record before (undefined: it was not
 * there); any other client is taken as unchanged. The work is by the clients
 * in `before`. null when nothing did.
 */
export function changesAmong(before: ReadonlyMap<string, ClientRecord | undefined>, after: Assignments): SyncBody | null {
  const set: Record<string, ClientRecord> = {};
  const del: string[] = [];
  for (const [ip, old] of before) {
    const record = after.get(ip);
    if (record === undefined) {
      if (old !== undefined) del.push(ip);
    } else if (old === undefined || !sameButSeen(old, record)) {
      set[ip] = record;
    }
  }
  return del.length === 0 && Object.keys(set).length === 0 ? null : { kind: 'changes', set, del };
}

/**
 * The clients that may have changed since the journal was last taken, each
 * with its record as it was then (undefined: not there). Whoever changes the
 * assignments notes a client before changing it; the reconciler does, for
 * every edit (journaled) and every run's assignment (noteRun).
 */
export class ClientJournal {
  private before = new Map<string, ClientRecord | undefined>();

  /** `ip` is about to change, and holds `record` now: kept only if it is the first change since the last take. */
  note(ip: string, record: ClientRecord | undefined): void {
    if (!this.before.has(ip)) this.before.set(ip, record);
  }

  /** A run's assignment replaces `before` (the assignments it started from) with `result.assignments`. */
  noteRun(before: Assignments, result: AssignResult): void {
    for (const { ip } of result.added) this.note(ip, before.get(ip));
    for (const { ip } of result.moved) this.note(ip, before.get(ip));
    for (const ip of result.expired) this.note(ip, before.get(ip));
    for (const ip of result.updated) this.note(ip, before.get(ip));
  }

  /** What changed since the last take, the assignments being `now` (null: nothing); the journal starts afresh. */
  take(now: Assignments): SyncBody | null {
    const before = this.before;
    this.before = new Map();
    return changesAmong(before, now);
  }

  /** Forgets what was noted (the whole table is about to be sent). */
  clear(): void {
    this.before = new Map();
  }

  /** How many clients are noted. */
  get size(): number {
    return this.before.size;
  }
}

/** `clients` for an edit, with every change noted in `journal` first. */
export function journaled(clients: ClientEdits & Iterable<readonly [string, ClientRecord]>, journal: ClientJournal): ClientEdits {
  return {
    get: (ip) => clients.get(ip),
    has: (ip) => clients.has(ip),
    set: (ip, record) => {
      journal.note(ip, clients.get(ip));
      clients.set(ip, record);
    },
    delete: (ip) => {
      journal.note(ip, clients.get(ip));
      clients.delete(ip);
    },
    clear: () => {
      for (const [ip, record] of clients) journal.note(ip, record);
      clients.clear();
    },
  };
}

function sameButSeen(a: ClientRecord, b: ClientRecord): boolean {
  const v6 = (r: ClientRecord): string =>
    Object.keys(r.ipv6 ?? {})
      .sort()
      .join(' ');
  return a.uplink === b.uplink && a.pinned === b.pinned && a.mac === b.mac && a.interface === b.interface && a.firstSeen === b.firstSeen && v6(a) === v6(b);
}

/** The backup's clients once a message is applied: a snapshot replaces them all, changes patch them. */
export function applySync(clients: ClientEdits, body: SyncBody): void {
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
  if (body.kind === 'snapshot' && typeof body.layout === 'string' && records(body.clients)) return { kind: 'snapshot', layout: body.layout, clients: body.clients };
  if (body.kind === 'changes' && records(body.set) && Array.isArray(body.del) && body.del.every((d) => typeof d === 'string')) return { kind: 'changes', set: body.set, del: body.del as string[] };
  return null;
}

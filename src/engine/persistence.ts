// What a run writes to the store, and when: the assignments after every
// change (at most every CLIENT_SAVE_MS; the clients changed since the last
// write, appended to the store's journal when they are few), when each was
// last seen (whole, at most every LAST_SEEN_SAVE_MS), ppp bindings,
// the owned ranges once they changed, and — before the first change to a
// sysctl or a netfilter table — how it was, so `flush` can put it back.
// Writes happen only after the kernel took the run's changes (DESIGN.md §1:
// apply, then persist); a crash in between is repaired at the next start by
// adopting the kernel's client set (core/adopt.ts).

import { sameRanges } from '../core/contract.js';
import type { Config } from '../model/config.js';
import { seenAt } from '../core/assign.js';
import type { ClientRecord, LastSeen, StoredClient } from '../model/state.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import type { Store } from '../system/store.js';

/**
 * When clients were last seen changes at every whole read of the neighbour
 * table, and is not a change of the assignments: it is written by a whole
 * write at most this often. After a crash a client expires at most this much
 * later.
 */
export const LAST_SEEN_SAVE_MS = 10 * 60_000;
/**
 * Runs that follow each other closely (clients arriving in a burst) write new
 * and expired clients at most this often, the last change always: a write of
 * 50,000 clients costs tens of milliseconds, and a burst's runs come every
 * few hundred. A crash in between loses no client: the next start adopts what
 * the kernel classifies (core/adopt.ts), with the uplink it has there.
 */
export const CLIENT_SAVE_MS = 1000;

export class RunPersistence {
  private lastSavedAt = -Infinity;
  /** When the clients were last written whole, with when each was last seen. */
  private lastWholeAt = -Infinity;
  private pendingBindings: [string, string][] = [];
  /**
   * Changes to the assignments are counted: `changes` counts them all,
   * `latestCovers` how many the assignments last handed over (`latest`)
   * include, `savedCovers` how many the store holds, `urgentAt` the count at
   * the last urgent one. A write covers only what its copy included, so a
   * change made while a write is under way is never taken as saved.
   */
  private changes = 0;
  private latestCovers = 0;
  private savedCovers = 0;
  private urgentAt = 0;
  private latest: ReadonlyMap<string, ClientRecord> = new Map();
  /** The reconciler's own map (not a copy): a write takes the times as they are then, never older than `latest`'s. */
  private latestSeen: LastSeen = new Map();
  /** When the run that handed them over began. */
  private latestAt = -Infinity;
  /**
   * The clients changed in `latest` since the last write that covered them
   * (all: not known which, as before the first); a few are appended to the
   * store's journal. Changes of the runs since `latest` was handed over wait
   * in `unsettled`: a deferred write in between writes `latest`'s records,
   * and must not take them as written.
   */
  private dirty: Set<string> | 'all' = 'all';
  private unsettled: Set<string> | 'all' = new Set();
  /** The deferred write, and a write under way. */
  private deferred: TimerHandle | null = null;
  private writing: Promise<void> | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  get data(): Store['data'] {
    return this.store.data;
  }

  /**
   * The assignments changed (an edit, a new, moved or expired client): the
   * next successful run saves them. A move or an operator's edit is saved by
   * that run whatever the pace: after a crash the store wins over the kernel
   * where both know a client, and a client must not move back.
   */
  changed(urgent = true): void {
    this.changes += 1;
    if (urgent) this.urgentAt = this.changes;
  }

  /** These clients' records changed (null: not known which); written once a run that includes the change succeeds. */
  touched(ips: ReadonlySet<string> | null): void {
    this.unsettled = merged(this.unsettled, ips ?? 'all');
  }

  /** A ppp ip-up reported `uplink` on `iface`; written at the start of the next run. */
  bind(uplink: string, iface: string): void {
    this.pendingBindings.push([uplink, iface]);
  }

  /** Writes pending bindings; a binding back to the configured interface is dropped. */
  async saveBindings(config: Config): Promise<void> {
    if (this.pendingBindings.length === 0) return;
    const bindings = this.pendingBindings;
    this.pendingBindings = [];
    await this.store.save((d) => {
      d.bindings = { ...d.bindings };
      for (const [uplink, iface] of bindings) {
        const configured = config.uplinks.find((u) => u.name === uplink)?.interface;
        if (iface === configured) delete d.bindings[uplink];
        else d.bindings[uplink] = iface;
      }
    });
  }

  /**
   * Before the first change to a sysctl, remember its value; before the
   * backend creates a netfilter table, remember that it did: flush puts back
   * the one and removes the other (once bare).
   */
  async recordOriginals(changing: Readonly<Record<string, string>>, current: Readonly<Record<string, string>>, createdTables: readonly string[]): Promise<void> {
    const data = this.store.data;
    const newSysctls = Object.keys(changing).filter((key) => !(key in data.sysctlOriginals) && current[key] !== undefined);
    const newTables = createdTables.filter((t) => !data.createdTables.includes(t));
    if (newSysctls.length === 0 && newTables.length === 0) return;
    await this.store.save((d) => {
      for (const key of newSysctls) d.sysctlOriginals[key] = current[key] as string;
      d.createdTables.push(...newTables);
    });
  }

  /** After a successful run: the ranges now loaded, and the assignments when they changed (or when they were seen was last written LAST_SEEN_SAVE_MS ago). */
  async afterSuccess(config: Config, assignments: ReadonlyMap<string, ClientRecord>, lastSeen: LastSeen, now: number): Promise<void> {
    const stored = this.store.data.ranges;
    if (!stored || !sameRanges(stored, config)) {
      const ranges = { tables: { base: config.tables.base }, rules: { priority: config.rules.priority } };
      await this.store.save((d) => {
        d.ranges = ranges;
      });
    }
    // From the first successful run on, the store writes the clients from what runs hand over here.
    if (this.latestAt === -Infinity) this.store.takeClientsFrom(() => this.storedClients());
    // These assignments include every change counted so far (a run applies its edits before this).
    this.latest = assignments;
    this.latestSeen = lastSeen;
    this.latestAt = now;
    this.latestCovers = this.changes;
    this.dirty = merged(this.dirty, this.unsettled);
    this.unsettled = new Set();
    // More than the journal takes are written whole: the list need not be kept meanwhile.
    if (this.dirty !== 'all' && !this.store.journalHolds(this.dirty.size, assignments.size)) this.dirty = 'all';
    const unsaved = this.savedCovers < this.latestCovers;
    if (!unsaved && !this.seenDue(now)) return;
    const wait = this.lastSavedAt + CLIENT_SAVE_MS - now;
    if (wait <= 0 || this.urgentAt > this.savedCovers) {
      this.clock.clear(this.deferred);
      this.deferred = null;
      return this.saveClients(now);
    }
    // A failed deferred write is tried again after the next run (nothing it covered counts as saved).
    this.deferred ??= this.clock.after(wait, () => {
      this.deferred = null;
      this.saveClients(this.clock.now()).catch(() => undefined);
    });
  }

  /** Writes what is not yet saved, when clients were seen included, after a write under way (the daemon stopping, its last run done). */
  async flush(): Promise<void> {
    this.clock.clear(this.deferred);
    this.deferred = null;
    await this.writing?.catch(() => undefined);
    if (this.savedCovers < this.latestCovers || this.lastWholeAt < this.latestAt) await this.saveClients(this.clock.now(), true);
  }

  /** The clients in the store's form, made as the store writes them and let go after (Store.takeClientsFrom). */
  private storedClients(): Record<string, StoredClient> {
    const clients: Record<string, StoredClient> = {};
    for (const [ip, record] of this.latest) clients[ip] = stored(record, seenAt(this.latestSeen, ip, record));
    return clients;
  }

  /** Whether when clients were seen is due to be written (LAST_SEEN_SAVE_MS). */
  private seenDue(now: number): boolean {
    return now - this.lastWholeAt > LAST_SEEN_SAVE_MS;
  }

  /**
   * The clients changed since the last write appended to the store's journal
   * when they are few, else all of them written whole, with when each was
   * seen; whole also when `withSeen` or when those times are due (seenDue).
   */
  private saveClients(now: number, withSeen = false): Promise<void> {
    const latest = this.latest;
    const seen = this.latestSeen;
    const covers = this.latestCovers;
    const dirty = this.dirty;
    this.dirty = new Set();
    const whole = withSeen || dirty === 'all' || !this.store.journalHolds(dirty.size, latest.size) || this.seenDue(now);
    const write = whole
      ? // The clients as they are when it writes (takeClientsFrom): never older than `latest`.
        this.store.save(() => undefined)
      : this.store.appendClients(
          new Map(
            [...dirty].map((ip) => {
              const record = latest.get(ip);
              return [ip, record === undefined ? null : stored(record, seenAt(seen, ip, record))];
            }),
          ),
        );
    this.writing = write.then(
      () => {
        this.savedCovers = Math.max(this.savedCovers, covers);
        this.lastSavedAt = now;
        if (whole) this.lastWholeAt = now;
      },
      (error: unknown) => {
        // Not written: its clients are still to be written.
        this.dirty = merged(this.dirty, dirty);
        throw error;
      },
    );
    return this.writing;
  }
}

/** A record as the store writes it: made field by field, which costs a third of a spread's time (50,000 at each whole write). */
function stored(record: ClientRecord, lastSeen: number): StoredClient {
  const { uplink, mac, interface: iface, pinned, firstSeen, ipv6 } = record;
  return ipv6 === undefined ? { uplink, mac, interface: iface, pinned, firstSeen, lastSeen } : { uplink, mac, interface: iface, pinned, firstSeen, lastSeen, ipv6 };
}

/** Two sets of clients as one ('all' absorbs the other); `into` may be written. */
function merged(into: Set<string> | 'all', more: ReadonlySet<string> | 'all'): Set<string> | 'all' {
  if (into === 'all' || more === 'all') return 'all';
  for (const ip of more) into.add(ip);
  return into;
}

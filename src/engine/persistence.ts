// What a run writes to the store, and when: the assignments after every
// change (at most every CLIENT_SAVE_MS; lastSeen alone at most every
// LAST_SEEN_SAVE_MS), ppp bindings,
// the owned ranges once they changed, and — before the first change to a
// sysctl or a netfilter table — how it was, so `flush` can put it back.
// Writes happen only after the kernel took the run's changes (DESIGN.md §1:
// apply, then persist); a crash in between is repaired at the next start by
// adopting the kernel's client set (core/adopt.ts).

import { sameRanges } from '../core/contract.js';
import type { Config } from '../model/config.js';
import type { ClientRecord } from '../model/state.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import type { Store } from '../system/store.js';

/** lastSeen alone changes every scan; it is written at most this often. */
const LAST_SEEN_SAVE_MS = 10 * 60_000;
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
  /** Assignments changed in memory since the last save. */
  private unsaved = false;
  private pendingBindings: [string, string][] = [];
  /** The assignments as the last run left them, and the deferred write that saves them. */
  private latest: ReadonlyMap<string, ClientRecord> = new Map();
  private deferred: TimerHandle | null = null;
  /** A change that must not wait for CLIENT_SAVE_MS (changed()). */
  private urgent = false;

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
    this.unsaved = true;
    this.urgent ||= urgent;
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

  /** After a successful run: the ranges now loaded, and the assignments when they changed (or lastSeen is old). */
  async afterSuccess(config: Config, assignments: ReadonlyMap<string, ClientRecord>, now: number): Promise<void> {
    const stored = this.store.data.ranges;
    if (!stored || !sameRanges(stored, config)) {
      const ranges = { tables: { base: config.tables.base }, rules: { priority: config.rules.priority } };
      await this.store.save((d) => {
        d.ranges = ranges;
      });
    }
    this.latest = assignments;
    if (!this.unsaved && now - this.lastSavedAt <= LAST_SEEN_SAVE_MS) return;
    const wait = this.lastSavedAt + CLIENT_SAVE_MS - now;
    if (wait <= 0 || this.urgent) {
      this.clock.clear(this.deferred);
      this.deferred = null;
      return this.saveClients(now);
    }
    this.deferred ??= this.clock.after(wait, () => {
      this.deferred = null;
      // A failed write is tried again after the next run.
      void this.saveClients(this.clock.now()).catch(() => this.changed(false));
    });
  }

  /** Writes a deferred save now (the daemon stopping). */
  async flush(): Promise<void> {
    if (this.deferred === null) return;
    this.clock.clear(this.deferred);
    this.deferred = null;
    await this.saveClients(this.clock.now());
  }

  private async saveClients(now: number): Promise<void> {
    const clients = Object.fromEntries(this.latest);
    // Cleared first: a change during the write marks it again.
    this.unsaved = false;
    this.urgent = false;
    this.lastSavedAt = now;
    await this.store.save((d) => {
      d.clients = clients;
    });
  }
}

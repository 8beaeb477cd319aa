// The reconcile loop (DESIGN.md §1). Triggers go through the trigger queue
// (engine/trigger.ts: coalescing, a minimum interval, retry with backoff);
// each run is one pass of
//   gather inputs (engine/inputs.ts) → plan (core/run.ts, pure)
//   → apply (one batch per tool) → forget a fallen line's connections → persist
// and ends in a report. A failed run is logged with the command, exit code
// and stderr and retried as a full resync; the daemon keeps running.
//
// Operator edits (assign/release), config reloads and ppp rebinds are queued
// and applied at the start of the next run, so a run in flight can never
// overwrite them; callers await the run that carried their change.
//
// Failover is the same loop: health verdicts mark uplinks down, the plan
// routes their pools over the survivors, and once that is loaded the
// connections that left by the fallen uplink — only those — are forgotten, so
// their clients reconnect at once over a survivor.

import type { HaRole } from '../core/netfilter.js';
import type { NetfilterBackend } from '../backends/backend.js';
import { isRoutingEmpty } from '../core/diff.js';
import { describeRepair, lanNetworks, loadedOf, type Loaded } from '../core/drift.js';
import { connMark, markLayout } from '../core/marks.js';
import { prepareTransitions, type PreparedTransition } from '../core/failover.js';
import { type ClientJournal, journaled } from '../core/ha-sync.js';
import { prepareAssignment } from '../core/assign.js';
import { computePlan } from '../core/run.js';
import { LayeredMap } from '../core/layered-map.js';
import { role, withBindings } from '../core/uplinks.js';
import type { Config } from '../model/config.js';
import type { RoutingState } from '../model/kernel.js';
import type { ClientRecord, LastSeen, OwnedRanges, UplinkView } from '../model/state.js';
import type { Announcement } from '../model/plan.js';
import type { RunReport } from '../schema/control.js';
import { countLines, renderIpBatch, renderKernelPayloads } from '../render/payloads.js';
import { systemClock, type Clock, type TimerHandle } from '../system/clock.js';
import { forgetConnections, forgetUntranslated } from '../system/conntrack.js';
import type { Runner } from '../system/exec.js';
import type { AdvertiserAction } from '../system/radvd.js';
import { applyIpBatch } from '../system/kernel.js';
import type { Store } from '../system/store.js';
import type { ToolSessions } from '../system/tool-session.js';
import type { HealthView } from './health.js';
import { gatherInputs } from './inputs.js';
import type { Logger } from '../system/logger.js';
import { PayloadLoader } from './loader.js';
import { RunPersistence } from './persistence.js';
import { RunLog } from './run-log.js';
import { TriggerQueue, type Batch, type Trigger } from './trigger.js';
import { Histogram, type HistogramSnapshot, RUN_BUCKETS } from '../core/histogram.js';

export type { RunReport } from '../schema/control.js';

/** RunReport.forgotten's key for the LAN connections forgotten after a netfilter repair (no uplink name has parentheses). */
export const UNCLASSIFIED = '(unclassified)';

/** The reason of a run asked for by neighbour events (engine/monitors.ts). */
export const NEIGHBOUR_REASON = 'neighbour';
/** The reason of the rescan after lost neighbour events (engine/monitors.ts): the neighbour table is read whole, the rules need not be. */
export const NEIGHBOURS_LOST_REASON = 'neighbour events lost';
/** The reason of the runs the scan schedule asks for (engine/daemon.ts). */
export const SCHEDULED_SCAN_REASON = 'scheduled scan';
/** Runs asked for only by these may plan from what the last run left (Reconciler.known), as far as it is trusted. */
const TRUSTING = new Set([NEIGHBOUR_REASON, NEIGHBOURS_LOST_REASON, SCHEDULED_SCAN_REASON]);
/**
 * How long after the kernel was last read such runs may trust all of it: then
 * one of them reads routing again, and netfilter too unless its events and
 * check cover it (trustedNetfilter), so a change no event reported is put
 * right within seconds, not at the next scan.
 */
export const TRUST_MS = 5000;

/**
 * How long runs on neighbour events and scheduled scans may plan from routing
 * as last read while its changes are reported (engine/repairs.ts: ours are
 * repaired at once, anyone else's makes the next run read it): they change no
 * route, other triggers (health, links, an operator) read it, and a change no
 * event reported is put right after this. An idle gateway's scan every 30 s
 * had started six processes to read it, a fifth of the daemon's idle CPU.
 */
export const ROUTING_RESYNC_MS = 5 * 60_000;

/** How long after a run that changed the assignments, with no run since, the next run's derivations are prepared (Reconciler.prepareWhenIdle). */
export const PREPARE_IDLE_MS = 500;

/**
 * How long a scheduled scan may plan from the netfilter objects the last run
 * left, without reading them, while the backend's events report every change
 * to them (NetfilterBackend.watched): at 50,000 clients reading and comparing
 * the client set is most of an idle scan's cost. Routing and the neighbour
 * table are trusted alike (ROUTING_RESYNC_MS, NEIGHBOUR_RESYNC_MS);
 * netfilter is read at least this often (kube-proxy's partial syncs between
 * full ones), which also catches what a lost event hid.
 */
export const NETFILTER_RESYNC_MS = 5 * 60_000;

/**
 * How long a scheduled scan may take the clients from what the neighbour
 * events said since the table was last read whole, instead of reading it
 * again, while its monitor reports every change (engine/monitors.ts
 * neighboursWatchedSince): at 50,000 clients, reading and parsing the table
 * and looking at every client again is most of what an idle scan costs.
 * Expiry (a client absent longer than clients.expire) needs a whole read: with
 * a short expire the table is read at least every tenth of it.
 */
export const NEIGHBOUR_RESYNC_MS = 5 * 60_000;

export interface ReconcilerDeps {
  readonly runner: Runner;
  readonly store: Store;
  /** The netfilter backend that classifies and NATs (iptables + ipset today). */
  readonly backend: NetfilterBackend;
  readonly log: Logger;
  /** Health verdicts; without it uplinks are judged by their links alone. */
  readonly health?: HealthView;
  /** Timers and the time; the system's by default. */
  readonly clock?: Clock;
  /** Told after every run, with the uplinks as that run saw them (public addresses, DNS). */
  readonly afterRun?: (uplinks: readonly UplinkView[]) => void;
  /** Told every run's report (self-repair counts the runs that found drift). */
  readonly reported?: (report: RunReport) => void;
  /**
   * The runner netfilter payloads are loaded through: self-repair gives one
   * that records the processes it starts, to tell our own changes in the
   * kernel's change events from other software's. The runner by default.
   */
  readonly writer?: Runner;
  /** Bytes per second per pool over the last minute (balance.assign: traffic); null before two readings. */
  readonly poolRates?: () => ReadonlyMap<string, number> | null;
  /** Runs the router advertisements of IPv6 prefix mode (system/radvd.ts); without it nothing is announced. */
  readonly advertiser?: { sync(announcement: Announcement | null): Promise<AdvertiserAction> };
  /** Since when the backend's change events have been watched without a break (engine/repairs.ts); null: they are not. A scheduled scan may then trust netfilter read since (NETFILTER_RESYNC_MS). */
  readonly netfilterWatchedSince?: () => number | null;
  /** Since when changes to routing are reported and no one else changed it (engine/repairs.ts); null: they may not be. Runs on neighbour events and scheduled scans may then trust routing read since (ROUTING_RESYNC_MS). */
  readonly routingWatchedSince?: () => number | null;
  /** Since when the neighbour events report every change to the table (engine/monitors.ts); null: they may not. A scheduled scan may then trust them (NEIGHBOUR_RESYNC_MS). */
  readonly neighboursWatchedSince?: () => number | null;
  /** The tools kept running, shared with self-repair's check and ended by the daemon; without it the loader keeps its own (engine/loader.ts). */
  readonly sessions?: ToolSessions;
}

export class Reconciler {
  private config: Config;
  /** Configs replaced since the last successful run (reloads): that run cleans up their ranges. */
  private replaced: OwnedRanges[] = [];
  private assignments: LayeredMap<string, ClientRecord>;
  /** When each client was last seen, written in place after each run's plan; a client gone takes its entry with it (advance). */
  private readonly seen: Map<string, number>;
  /** One of a pair: keepalived's word, unknown (fenced) until it gives it. */
  private haRole: HaRole = 'unknown';
  private uplinkViews: UplinkView[] = [];
  private uplinkViews6: readonly UplinkView[] = [];
  private announcement: Announcement | null = null;
  /** Why the router advertisements failed at the last run; null: they run as planned (or are not used). */
  private advertiseError: string | null = null;
  /** What each line did as last loaded into the kernel (carrying, standby, down): a fall, a return or a hand-over is a change against these. */
  private loadedStates = new Map<string, ReturnType<typeof role>>();
  /** What each uplink's next verdict changes, prepared by the last run (failFast). */
  private prepared = new Map<string, PreparedTransition>();
  /** Each line's IPv6 state at the last run: a fall of its IPv6 alone forgets its IPv6 connections. */
  private states6 = new Map<string, UplinkView['state']>();
  private readonly clock: Clock;
  private readonly queue: TriggerQueue<RunReport>;
  private readonly persistence: RunPersistence;
  private readonly loader: PayloadLoader;
  private readonly runLog: RunLog;
  private counters = { runs: 0, failedRuns: 0, last: null as RunReport | null };
  private readonly durations = new Histogram(RUN_BUCKETS);
  /** What the last successful run loaded, for the drift checks; null before it. */
  private loadedState: Loaded | null = null;
  /** Everything the last successful run's plan depended on but the kernel: the same again and a load needed means drift. */
  private lastPlanInputs: string | null = null;
  /**
   * The kernel as the last run left it, when that can be told without
   * reading (no routing loaded, and the backend knows what its payload leaves:
   * NetfilterBackend.expected). A run on neighbour events alone (or the
   * rescan after lost ones) plans from it instead of reading the kernel again
   * — at 50,000 clients most of a run's cost. Any doubt clears it: a failed run, a run that loaded routing or
   * rebuilt chains, a change self-repair noticed (distrust()), TRUST_MS
   * since routing was read (readAt), or since netfilter was (netfilterReadAt)
   * unless its events report every change to it (trustedNetfilter): then the
   * next such run reads what is no longer trusted, and the runs after it trust
   * again. Every other run reads (a scheduled scan reads
   * netfilter every NETFILTER_RESYNC_MS while events report every change to
   * it, and every time otherwise), and catches drift no event reported.
   */
  private known: { routing: RoutingState; netfilter: unknown; readAt: number; netfilterReadAt: number } | null = null;
  /** The netfilter objects as the last run left them, and when they were last read; a scheduled scan may plan from them (NETFILTER_RESYNC_MS). */
  private knownNetfilter: { netfilter: unknown; readAt: number } | null = null;
  /** When a successful run last began that read the whole neighbour table. */
  private neighboursReadAt = Number.NEGATIVE_INFINITY;
  /** Counts distrust() calls: one during a run means that run's view is stale already. */
  private distrusts = 0;
  /** The idle preparation after a run that changed the assignments (prepareWhenIdle). */
  private preparing: TimerHandle | null = null;
  /** Where the clients each edit and run change are noted (the master of a pair sends them: engine/ha-sync.ts); null: nowhere. */
  private journal: ClientJournal | null = null;

  constructor(
    private readonly deps: ReconcilerDeps,
    config: Config,
    assignments: Map<string, ClientRecord>,
    lastSeen: Map<string, number> = new Map(),
  ) {
    this.config = config;
    this.assignments = LayeredMap.of(assignments);
    this.seen = lastSeen;
    this.clock = deps.clock ?? systemClock;
    this.persistence = new RunPersistence(deps.store, this.clock);
    this.loader = new PayloadLoader(deps.runner, deps.writer ?? deps.runner, this.clock, deps.log, deps.sessions);
    this.runLog = new RunLog(deps.log);
    this.queue = new TriggerQueue<RunReport>({
      clock: this.clock,
      run: (batch) => this.runOnce(batch),
      succeeded: (report) => report.ok,
      after: (report) => this.count(report),
    });
  }

  get currentConfig(): Config {
    return this.config;
  }

  /** The config with ppp renames applied: what the kernel is programmed for. */
  get effectiveConfig(): Config {
    return withBindings(this.config, this.deps.store.data.bindings ?? {});
  }

  /** The uplinks as IPv6 sees them at the last run (empty while IPv6 is off). */
  get uplinks6(): readonly UplinkView[] {
    return this.uplinkViews6;
  }

  get uplinks(): readonly UplinkView[] {
    return this.uplinkViews;
  }

  get clients(): ReadonlyMap<string, ClientRecord> {
    return this.assignments;
  }

  /** When each client was last seen (model/state.ts LastSeen). */
  get lastSeen(): LastSeen {
    return this.seen;
  }

  /** Notes in `journal` every client that edits and runs change from now on (null: stop). */
  keepJournal(journal: ClientJournal | null): void {
    this.journal = journal;
  }

  /** The last run's report (null before the first). */
  get last(): RunReport | null {
    return this.counters.last;
  }

  /** Runs since start, the failed ones, and how long they took (for status and metrics). */
  get runs(): number {
    return this.counters.runs;
  }

  get failedRuns(): number {
    return this.counters.failedRuns;
  }

  get runDurations(): HistogramSnapshot {
    return this.durations.snapshot();
  }

  /** What the last successful run loaded (null before the first). */
  get loaded(): Loaded | null {
    return this.loadedState;
  }

  /** A run is under way or asked for. */
  get busy(): boolean {
    return this.queue.busy;
  }

  /** What the router advertisements announce (IPv6 prefix mode), as the last run left them; null: nothing (or they failed). */
  get announced(): Announcement | null {
    return this.announcement;
  }

  /** Why the router advertisements failed at the last run; null: no failure. */
  get advertisementError(): string | null {
    return this.advertiseError;
  }

  /** Rules of other software inside our ranges, as the last run saw them. */
  get conflicts(): readonly string[] {
    return this.runLog.conflicts;
  }

  /** Asks for a run; resolves with the report of the run that included this request. */
  request(reason: string, trigger: Trigger = {}): Promise<RunReport> {
    return this.queue.request(reason, trigger);
  }

  /** A ppp ip-up reported the uplink on another interface (ppp0 → ppp1): remember it and reprogram. */
  rebind(uplink: string, iface: string): Promise<RunReport> {
    return this.request(`ppp rebind ${uplink} to ${iface}`, { scan: true, edit: () => this.persistence.bind(uplink, iface) });
  }

  /** One of a pair: the role keepalived gave this gateway (the fence is up in every role but master). */
  get role(): HaRole {
    return this.haRole;
  }

  /** Before the first run: the role a pair's gateway resumes (engine/ha.ts resume), so that run already plans with it. */
  startAs(role: HaRole): void {
    this.haRole = role;
  }

  /** A new role for this gateway of a pair; the run that takes it raises or lifts the fence. */
  setRole(role: HaRole): Promise<RunReport> {
    return this.request(`ha ${role}`, {
      edit: (_, now) => {
        // A backup is not told when clients were seen: a new master counts every client as seen now, so its
        // first scans expire nobody its neighbour table has not shown yet.
        if (role === 'master' && this.haRole !== 'master') for (const ip of this.assignments.keys()) this.seen.set(ip, now);
        this.haRole = role;
      },
    });
  }

  /** Swaps the config at the next run; objects in the old config's ranges are cleaned up by that run. */
  reload(config: Config): Promise<RunReport> {
    return this.request('reload', {
      scan: true,
      edit: () => {
        this.replaced.push(this.config);
        this.config = config;
      },
    });
  }

  /**
   * A verdict just came: a live uplink is down, or a dead one is back. The
   * pools move now, by the routes the last run prepared (core/failover.ts),
   * and the connections of a line that fell (or stands by again with
   * `failback: move`) are forgotten, before the full run that follows reads
   * the kernel and settles the rest. A run under way (one a degraded verdict
   * asked for a moment before, say) is let finish first: it prepares afresh,
   * and no other starts meanwhile. Nothing prepared for this verdict (that run
   * already acted on it): the next run does it all. Never rejects.
   */
  async failFast(uplink: string, to: PreparedTransition['to'], reason: string): Promise<void> {
    this.hold();
    try {
      await this.queue.settled();
      const prepared = this.prepared.get(uplink);
      if (!prepared || prepared.to !== to) return;
      // Prepared for the uplinks as they were; once one has changed, only a run prepares again.
      this.prepared = new Map();
      // The routes change outside a run: the next one reads them.
      this.distrust();
      const { runner, writer } = this.deps;
      const none = { add: [], remove: [] };
      await applyIpBatch(writer ?? runner, renderIpBatch({ routes: { replace: prepared.routes, remove: [] }, rules: none }));
      await applyIpBatch(writer ?? runner, renderIpBatch({ routes: { replace: prepared.routes6, remove: [] }, rules: none }), 'ipv6');
      const after = prepared.after.map((u) => (u.name === uplink ? { ...u, reason } : u));
      await this.forgetFallen(this.config, after, {}, prepared.after6);
    } catch (error) {
      this.deps.log.warn('could not move the pools at once; the run that follows does', { uplink, error: (error as Error).message });
    } finally {
      this.release();
    }
  }

  /**
   * What a scheduled scan, or a run on neighbour events past TRUST_MS, may
   * plan from instead of reading netfilter (routing: trustedRouting): what the last
   * run left, read less than NETFILTER_RESYNC_MS ago, while the backend's
   * events report every change to it (and its check, where it has one,
   * covers the rest: engine/repairs.ts judges the client sets' headers
   * against each run's clients). null: read. (At 50,000 clients, reading the
   * client set took a third of a second every 5 s, and a new client waited
   * for it.)
   */
  private trustedNetfilter(reasons: readonly string[], now: number): { netfilter: unknown; readAt: number } | null {
    const known = this.knownNetfilter;
    if (!known || now - known.readAt > NETFILTER_RESYNC_MS) return null;
    if (!reasons.every((reason) => TRUSTING.has(reason))) return null;
    // Read after the events began to be watched: a change while they were not (a monitor restarting) is in what was read.
    const since = this.deps.netfilterWatchedSince?.() ?? null;
    return since !== null && known.readAt >= since && this.deps.backend.watched(known.netfilter) ? known : null;
  }

  /**
   * Whether a scan (a scheduled one, alone or with neighbour events) may skip
   * reading the neighbour table: it was read after the events began to
   * report every change, less than NEIGHBOUR_RESYNC_MS ago (and a tenth of
   * clients.expire).
   */
  private neighboursKnown(reasons: readonly string[], now: number): boolean {
    const since = this.deps.neighboursWatchedSince?.() ?? null;
    if (since === null || this.neighboursReadAt < since) return false;
    if (!reasons.every((reason) => reason === SCHEDULED_SCAN_REASON || reason === NEIGHBOUR_REASON)) return false;
    const expireMs = this.config.clients.expireSeconds * 1000;
    return now - this.neighboursReadAt < (expireMs > 0 ? Math.min(NEIGHBOUR_RESYNC_MS, expireMs / 10) : NEIGHBOUR_RESYNC_MS);
  }

  /**
   * Whether routing read at `readAt` may still be trusted by a run on
   * neighbour events or a scheduled scan: within TRUST_MS, or within
   * ROUTING_RESYNC_MS while its changes are reported and none came from
   * other software since the read (a change to ours is then a distrust()
   * within the second). At 50,000 clients reading it took 40–60 ms of a new
   * client's wait every 5 s.
   */
  private trustedRouting(readAt: number, now: number): boolean {
    if (now - readAt <= TRUST_MS) return true;
    const since = this.deps.routingWatchedSince?.() ?? null;
    return since !== null && readAt >= since && now - readAt <= ROUTING_RESYNC_MS;
  }

  /** Something changed the kernel behind our back: the next run reads it whatever asked for it. */
  distrust(): void {
    this.known = null;
    this.knownNetfilter = null;
    this.distrusts += 1;
  }

  /** Requests queue (and coalesce) without running until release(). */
  hold(): void {
    this.queue.hold();
  }

  release(): void {
    this.queue.release();
  }

  /** Stops scheduling runs and retries, lets a run in flight finish, and writes what it left unsaved. */
  async stop(): Promise<void> {
    this.queue.stop();
    this.clock.clear(this.preparing);
    await this.queue.settled();
    this.loader.close();
    await this.persistence.flush();
  }

  /**
   * Once no run has followed for PREPARE_IDLE_MS after a run that changed
   * the assignments: what the next run's assignment derives from them,
   * derived now (core/assign.ts prepareAssignment). After a burst the first
   * new client otherwise waited about 100 ms at 50,000 clients for the
   * burst's last changes to be carried; and a derivation lets go of the
   * version it was derived from, which would otherwise keep the records the
   * run replaced alive until the next new client.
   */
  private prepareWhenIdle(): void {
    this.clock.clear(this.preparing);
    const version = this.assignments;
    this.preparing = this.clock.after(PREPARE_IDLE_MS, () => {
      this.preparing = null;
      if (!this.queue.busy && this.assignments === version) prepareAssignment(version);
    });
  }

  /**
   * The assignments' next version; the store is told which clients it
   * changed, and a client gone (expired, released, replaced by a backup's
   * snapshot) takes its time with it. Two steps: an assignment that joins
   * IPv6 addresses makes two versions.
   */
  private advance(next: LayeredMap<string, ClientRecord>): void {
    const changed = next.changedSince(this.assignments, 2, Number.POSITIVE_INFINITY);
    this.persistence.touched(changed);
    for (const ip of changed ?? [...this.seen.keys()]) if (!next.has(ip)) this.seen.delete(ip);
    this.assignments = next;
  }

  private count(report: RunReport): void {
    this.counters = {
      runs: this.counters.runs + 1,
      failedRuns: this.counters.failedRuns + (report.ok ? 0 : 1),
      last: report,
    };
    this.durations.observe(report.durationMs / 1000);
    this.deps.afterRun?.(this.uplinkViews);
    this.deps.reported?.(report);
  }

  private async runOnce(batch: Batch): Promise<RunReport> {
    const started = this.clock.now();
    const base = { at: new Date(started).toISOString(), reasons: batch.reasons };
    const assignmentsBefore = this.assignments;
    let applied: RunReport['applied'] = {};
    let counts = { added: 0, moved: 0, expired: 0, refused: 0 };
    const forgotten: Record<string, number> = {};
    const phases: Record<string, number> = {};
    let drift = false;
    let repaired: string[] = [];
    try {
      if (batch.edits.length > 0) {
        // Into the next version, never the one the last run planned from: planning knows an unchanged map by identity
        // (model/state.ts). Edits are applied in memory at once; they are persisted by the first run that succeeds.
        const draft = this.assignments.draft();
        const edits = this.journal ? journaled(draft, this.journal) : draft;
        for (const edit of batch.edits) edit(edits, started);
        this.advance(draft.done());
        this.persistence.changed();
      }
      await this.persistence.saveBindings(this.config);
      const mark = phaseClock(() => this.clock.now());
      const { backend, runner } = this.deps;
      const trustedNetfilter = this.trustedNetfilter(batch.reasons, started);
      // Routing and netfilter each read within TRUST_MS, or events report every change since it was read.
      const trusted = this.known !== null && this.trustedRouting(this.known.readAt, started) && (started - this.known.netfilterReadAt <= TRUST_MS || trustedNetfilter !== null);
      const known = trusted && batch.reasons.every((reason) => TRUSTING.has(reason)) ? this.known : null;
      const knownNetfilter = known ? null : trustedNetfilter;
      this.known = null;
      this.knownNetfilter = null;
      const distrusts = this.distrusts;
      const inputs = await gatherInputs(runner, {
        backend,
        config: this.config,
        stored: this.deps.store.data,
        scan: batch.scan && !this.neighboursKnown(batch.reasons, started),
        now: started,
        replaced: this.replaced,
        ...(this.deps.health ? { health: this.deps.health } : {}),
        ...(known ? { known } : knownNetfilter ? { known: { routing: null, netfilter: knownNetfilter.netfilter } } : {}),
      });
      phases.observe = mark();
      const { config, uplinks, uplinks6, routing: observed } = inputs;
      const {
        assignment: result,
        desired,
        routing,
      } = computePlan({
        config,
        uplinks,
        uplinks6,
        previous: inputs.previous,
        observed,
        assignments: this.assignments,
        lastSeen: this.seen,
        neighbours: inputs.neighbours ?? batch.neighbours,
        complete: inputs.neighbours !== null,
        now: started,
        rates: this.deps.poolRates?.() ?? null,
        role: this.haRole,
      });
      const netfilter = backend.plan(desired.netfilter, inputs.netfilter);
      counts = { added: result.added.length, moved: result.moved.length, expired: result.expired.length, refused: result.refused.length };
      if (counts.added + counts.moved + counts.expired + result.addresses6 > 0) this.persistence.changed(counts.moved > 0);
      this.journal?.noteRun(this.assignments, result);
      this.advance(result.assignments);
      for (const ip of result.seen) this.seen.set(ip, started);
      this.uplinkViews = [...uplinks];
      this.uplinkViews6 = uplinks6;
      this.runLog.conflictsSeen(routing.conflicts);
      this.runLog.assignments(result, inputs.neighbours !== null, config.clients);
      phases.plan = mark();
      const payloads = renderKernelPayloads(netfilter, routing);
      // Lines per command, zeros included: a kernel that already matched loads nothing.
      applied = { ...backend.size(netfilter), ip: countLines(payloads.ip), ...(payloads.ip6 !== '' || config.lan.ipv6.mode !== 'off' ? { ip6: countLines(payloads.ip6) } : {}), sysctl: Object.keys(payloads.sysctls).length };
      const planInputs = JSON.stringify([config, desired.rules, desired.routes, desired.ipv6, desired.sysctls, uplinks.map((u) => [u.name, u.interface, u.state, u.gateway])]);
      const changedNothing = batch.edits.length === 0 && counts.added + counts.moved + counts.expired + result.addresses6 === 0 && planInputs === this.lastPlanInputs;
      if (!isRoutingEmpty(routing) || !backend.isEmpty(netfilter)) {
        // Nothing we planned changed, yet the kernel needs loading: other software changed ours.
        drift = changedNothing;
        if (drift) repaired = describeRepair(routing, backend.size(netfilter));
        await this.persistence.recordOriginals(routing.sysctls, observed.sysctls, backend.created(inputs.netfilter, netfilter));
        await this.loader.load(backend, payloads);
        phases.apply = mark();
        this.deps.log.info('applied', { reasons: batch.reasons, ...applied, ms: phases });
        if (drift && !backend.isEmpty(netfilter)) await this.forgetUnclassified(config, observed.links, forgotten);
      }
      // After the routes: a deprecated prefix's packets are refused by then, not sent out of a dead line.
      await this.advertise(desired.announce);
      await this.forgetFallen(config, uplinks, forgotten, uplinks6);
      await this.forgetFallen6(config, uplinks6, forgotten);
      phases.forget = mark();
      await this.persistence.afterSuccess(config, this.assignments, this.seen, started);
      this.replaced = [];
      phases.persist = mark();
      this.loadedState = loadedOf(desired);
      this.lastPlanInputs = planInputs;
      if (inputs.neighbours !== null) this.neighboursReadAt = started;
      // An empty payload leaves what was read; the backend may know it in a lighter form (iptables: the client set as our client map, not 50,000 parsed entries).
      const netfilterAfter = backend.expected(netfilter) ?? (backend.isEmpty(netfilter) ? inputs.netfilter : null);
      const stale = this.distrusts !== distrusts;
      // When routing and netfilter were last read: what the trust of the next runs is counted from.
      const readAt = known ? known.readAt : started;
      const netfilterReadAt = known ? known.netfilterReadAt : (knownNetfilter?.readAt ?? started);
      this.known = !stale && isRoutingEmpty(routing) && netfilterAfter !== null ? { routing: observed, netfilter: netfilterAfter, readAt, netfilterReadAt } : null;
      this.knownNetfilter = !stale && netfilterAfter !== null ? { netfilter: netfilterAfter, readAt: netfilterReadAt } : null;
      this.prepared = prepareTransitions(config, uplinks, desired.routes, uplinks6, desired.ipv6.routes);
      if (this.assignments !== assignmentsBefore) this.prepareWhenIdle();
      return { ...base, durationMs: this.clock.now() - started, ok: true, drift, repaired, applied, ...counts, forgotten, phases };
    } catch (error) {
      const err = error as Error & { argv?: string[]; exitCode?: number; stderr?: string };
      this.deps.log.error('reconcile failed; retrying with a full resync', {
        reasons: batch.reasons,
        error: err.message,
        ...(err.argv ? { argv: err.argv, exitCode: err.exitCode, stderr: err.stderr } : {}),
      });
      return { ...base, durationMs: this.clock.now() - started, ok: false, error: err.message, drift, repaired, applied, ...counts, forgotten, phases };
    }
  }

  /**
   * The router advertisements as the plan wants them (IPv6 prefix mode). A
   * failure (radvd missing, refusing its config) is logged once per reason
   * and shown by status, and leaves the run a success: the routes, IPv4 and
   * the pools must not wait on the advertisements. The next run tries again.
   */
  private async advertise(announcement: Announcement | null): Promise<void> {
    const { advertiser, log } = this.deps;
    if (!advertiser) return;
    try {
      const action = await advertiser.sync(announcement);
      this.announcement = announcement;
      this.advertiseError = null;
      if (action !== 'unchanged') log.info('router advertisements', { radvd: action, prefixes: announcement?.prefixes ?? [] });
    } catch (error) {
      const message = (error as Error).message;
      if (message !== this.advertiseError) log.error('router advertisements failed; the next run tries again', { error: message });
      this.announcement = null;
      this.advertiseError = message;
    }
  }

  /**
   * After a repair of our netfilter objects: the LAN's connections that
   * started while they were gone were NATed (or not) outside our rules, so
   * they would stay broken (system/conntrack.ts says how they are told).
   * Forgotten, their next packet starts afresh. The others are kept.
   */
  private async forgetUnclassified(config: Config, links: RoutingState['links'], forgotten: Record<string, number>): Promise<void> {
    const { connMask } = markLayout(config.marks.mask);
    let count = 0;
    for (const network of lanNetworks(config, links)) count += await forgetUntranslated(this.deps.runner, network, connMask);
    forgotten[UNCLASSIFIED] = count;
  }

  /**
   * A line whose IPv6 falls on its own — its IPv6 verdict (uplinks[].ipv6.probe)
   * or its IPv6 next hop gone — has its IPv6 connections forgotten, as a fallen
   * line's are, so they start afresh (and are translated afresh) over a line
   * that carries IPv6. A line forgotten whole by forgetFallen (in this run or
   * by a verdict's failFast) is marked down here already.
   */
  private async forgetFallen6(config: Config, uplinks6: readonly UplinkView[], forgotten: Record<string, number>): Promise<void> {
    const layout = markLayout(config.marks.mask);
    for (const uplink of uplinks6) {
      const before = this.states6.get(uplink.name);
      if (uplink.state !== 'down' || before === undefined || before === 'down') continue;
      forgotten[`${uplink.name} (IPv6)`] = await forgetConnections(this.deps.runner, connMark(layout, uplink.index), layout.connMask, 'ipv6');
    }
    this.states6 = new Map(uplinks6.map((u) => [u.name, u.state]));
  }

  /**
   * Once the routes avoid a fallen uplink, its connections (by their connection
   * mark) are forgotten: pinned to a dead line they would hang; forgotten, the
   * next packet starts afresh over a survivor. A line that stops carrying
   * because a lower tier is back (it stands by) keeps its connections until
   * they end, unless its `failback` is `move`. Nothing else is touched.
   */
  private async forgetFallen(config: Config, uplinks: readonly UplinkView[], forgotten: Record<string, number>, uplinks6: readonly UplinkView[]): Promise<void> {
    const layout = markLayout(config.marks.mask);
    // A line whose IPv6 is judged by its own probes and still up keeps its IPv6 connections (forgetFallen6 sees to its IPv6).
    const keeps6 = new Set(uplinks6.filter((u) => u.ownVerdict && u.state === 'up').map((u) => u.name));
    const forget = async (uplink: UplinkView): Promise<number> => {
      forgotten[uplink.name] = await forgetConnections(this.deps.runner, connMark(layout, uplink.index), layout.connMask, keeps6.has(uplink.name) ? 'ipv4' : undefined);
      return forgotten[uplink.name] as number;
    };
    for (const uplink of uplinks) {
      const before = this.loadedStates.get(uplink.name);
      const now = role(uplink, uplinks);
      if (before === undefined || before === now) continue;
      if (now === 'down') this.runLog.fell(uplink, await forget(uplink));
      else if (now === 'standby') {
        const moved = config.uplinks.find((u) => u.name === uplink.name)?.failback === 'move' && before === 'carrying';
        this.runLog.standsBy(uplink, moved ? await forget(uplink) : null);
      } else if (before === 'down') this.runLog.returned(uplink);
      else this.runLog.takesOver(uplink);
    }
    this.loadedStates = new Map(uplinks.map((u) => [u.name, role(u, uplinks)]));
    // What was forgotten here for both families counts as IPv6's fall too: forgetFallen6 does not walk the table again.
    for (const u of uplinks6) if (u.state === 'down' && forgotten[u.name] !== undefined && !keeps6.has(u.name)) this.states6.set(u.name, 'down');
    this.runLog.outage(uplinks);
  }
}

/** Each call returns the milliseconds since the previous one. */
function phaseClock(now: () => number): () => number {
  let last = now();
  return () => {
    const at = now();
    const elapsed = at - last;
    last = at;
    return elapsed;
  };
}

// The reconcile loop (DESIGN.md §1): triggers are coalesced into runs, one
// run at a time; each run reads the kernel, updates assignments, plans,
// diffs, applies the batches, then persists. A failed run is logged with the
// command, exit code and stderr and retried as a full resync with backoff;
// the daemon itself keeps running.
//
// Operator edits (assign/release), config reloads and ppp rebinds are queued
// and applied at the start of the next run, so a run in flight can never
// overwrite them; callers await the run that carried their change.
//
// Failover is the same loop: health verdicts mark uplinks down, the plan
// routes their pools over the survivors, and once that is loaded the
// connections that left by the fallen uplink — only those — are forgotten, so
// their clients reconnect at once over a survivor.

import type { AssignResult, Refusal } from '../core/assign.js';
import { sameRanges } from '../core/contract.js';
import { isEmpty } from '../core/diff.js';
import { connMark, markLayout } from '../core/marks.js';
import type { Skeleton } from '../core/netfilter.js';
import { computeRun } from '../core/run.js';
import { withBindings, withHealth } from '../core/uplinks.js';
import type { Config } from '../model/config.js';
import type { KernelState, Neighbour } from '../model/kernel.js';
import type { ChangeSet } from '../model/plan.js';
import type { ClientRecord, OwnedRanges, UplinkView } from '../model/state.js';
import { renderPayloads, type Payloads } from '../render/payloads.js';
import type { Runner } from '../system/exec.js';
import { forgetConnections } from '../system/conntrack.js';
import { applyPayloads, observeKernel } from '../system/kernel.js';
import { discoverUplinks } from '../system/leases.js';
import { readNeighbours } from '../system/neighbours.js';
import type { Store } from '../system/store.js';
import type { HealthView } from './health.js';
import type { Logger } from './logger.js';

export type Edit = (assignments: Map<string, ClientRecord>, now: number) => void;

export interface RunReport {
  readonly at: string;
  readonly durationMs: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly reasons: readonly string[];
  /** Payload lines loaded per command (0 when the kernel already matched). */
  readonly applied: { readonly ipset: number; readonly iptables: number; readonly ip: number; readonly sysctl: number };
  readonly added: number;
  readonly moved: number;
  readonly expired: number;
  readonly refused: number;
  /** Uplinks that fell in this run, with the connections forgotten for each. */
  readonly forgotten: Readonly<Record<string, number>>;
  /** Milliseconds per phase (observe, plan, apply, forget, persist) of the run, for profiling. */
  readonly phases: Readonly<Record<string, number>>;
}

interface Request {
  reasons: string[];
  scan: boolean;
  neighbours: Neighbour[];
  edits: Edit[];
  waiters: ((report: RunReport) => void)[];
}

export interface ReconcilerDeps {
  readonly runner: Runner;
  readonly store: Store;
  readonly skeleton: Skeleton;
  readonly log: Logger;
  /** Health verdicts; without it uplinks are judged by their links alone. */
  readonly health?: HealthView;
  readonly now?: () => number;
  /** Told after every run, with the uplinks as that run saw them (public addresses, DNS). */
  readonly afterRun?: (uplinks: readonly UplinkView[]) => void;
}

const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30_000;
/** lastSeen alone changes every scan; it is written at most this often. */
const LAST_SEEN_SAVE_MS = 10 * 60_000;

const lines = (text: string): number => (text === '' ? 0 : text.split('\n').length - 1);

export class Reconciler {
  private config: Config;
  /** Ranges of configs replaced since the last successful run (reloads, or edits while stopped): that run cleans them up. */
  private previousRanges: OwnedRanges[] = [];
  private assignments: Map<string, ClientRecord>;
  private uplinkViews: UplinkView[] = [];
  /** Uplink states as last loaded into the kernel: a fall is a change from up to down against these. */
  private loadedStates = new Map<string, UplinkView['state']>();
  private allDown = false;
  private pending: Request | null = null;
  private running = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = RETRY_MIN_MS;
  private lastSavedAt = 0;
  private unsaved = false;
  private pendingBindings: [string, string][] = [];
  private stopped = false;
  private held = false;
  last: RunReport | null = null;
  /** Runs since start, the failed ones, and their summed duration (for the metrics). */
  runs = 0;
  failedRuns = 0;
  runSeconds = 0;
  conflicts: readonly string[] = [];
  /** Caps already reported as refusing clients ("clients.max", "clients.per_mac MAC"). */
  private readonly capsHit = new Set<string>();

  constructor(
    private readonly deps: ReconcilerDeps,
    config: Config,
    assignments: Map<string, ClientRecord>,
  ) {
    this.config = config;
    this.assignments = assignments;
    const stored = deps.store.data.ranges;
    if (stored && !sameRanges(stored, config)) this.previousRanges.push(stored);
  }

  get currentConfig(): Config {
    return this.config;
  }

  /** The config with ppp renames applied: what the kernel is programmed for. */
  get effectiveConfig(): Config {
    return withBindings(this.config, this.deps.store.data.bindings ?? {});
  }

  /** A ppp ip-up reported the uplink on another interface (ppp0 → ppp1): remember it and reprogram. */
  rebind(uplink: string, iface: string): Promise<RunReport> {
    return this.request(`ppp rebind ${uplink} to ${iface}`, {
      scan: true,
      edit: () => {
        this.pendingBindings.push([uplink, iface]);
      },
    });
  }

  get uplinks(): readonly UplinkView[] {
    return this.uplinkViews;
  }

  get clients(): ReadonlyMap<string, ClientRecord> {
    return this.assignments;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Asks for a run; resolves with the report of the run that included this request. */
  request(reason: string, what: { scan?: boolean; neighbours?: readonly Neighbour[]; edit?: Edit } = {}): Promise<RunReport> {
    const pending = (this.pending ??= { reasons: [], scan: false, neighbours: [], edits: [], waiters: [] });
    if (!pending.reasons.includes(reason)) pending.reasons.push(reason);
    pending.scan ||= what.scan ?? false;
    if (what.neighbours) pending.neighbours.push(...what.neighbours);
    if (what.edit) pending.edits.push(what.edit);
    const done = new Promise<RunReport>((resolve) => pending.waiters.push(resolve));
    setImmediate(() => this.kick());
    return done;
  }

  /** Swaps the config at the next run; objects in the old config's ranges are cleaned up by that run. */
  reload(config: Config): Promise<RunReport> {
    return this.request('reload', {
      scan: true,
      edit: () => {
        this.previousRanges.push(this.config);
        this.config = config;
      },
    });
  }

  /** Requests queue (and coalesce) without running until release(). */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    this.kick();
  }

  /** Stops scheduling retries; a run in flight finishes. */
  stop(): void {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
  }

  private kick(): void {
    if (this.running || this.held || !this.pending || this.stopped) return;
    const request = this.pending;
    this.pending = null;
    this.running = true;
    void this.runOnce(request).then((report) => {
      this.running = false;
      this.last = report;
      this.runs++;
      if (!report.ok) this.failedRuns++;
      this.runSeconds += report.durationMs / 1000;
      for (const waiter of request.waiters) waiter(report);
      this.deps.afterRun?.(this.uplinkViews);
      this.kick();
    });
  }

  private scheduleRetry(): void {
    if (this.retryTimer || this.stopped) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, RETRY_MAX_MS);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.request('retry after failure', { scan: true });
    }, delay);
    this.retryTimer.unref();
  }

  private async runOnce(request: Request): Promise<RunReport> {
    const started = this.now();
    const base = { at: new Date(started).toISOString(), reasons: request.reasons };
    let applied = { ipset: 0, iptables: 0, ip: 0, sysctl: 0 };
    let counts = { added: 0, moved: 0, expired: 0, refused: 0 };
    const forgotten: Record<string, number> = {};
    const phases: Record<string, number> = {};
    try {
      for (const edit of request.edits) edit(this.assignments, started);
      // Edits are applied in memory at once; they are persisted by the first run that succeeds.
      this.unsaved ||= request.edits.length > 0;
      await this.saveBindings();
      const config = this.effectiveConfig;
      const mark = phaseClock(() => this.now());
      const [observed, arp] = await Promise.all([
        observeKernel(this.deps.runner, config),
        request.scan ? readNeighbours(this.deps.runner) : Promise.resolve(null),
      ]);
      phases.observe = mark();
      const linkViews = await discoverUplinks(config, observed, started);
      const uplinks = this.deps.health ? withHealth(linkViews, this.deps.health.observe(linkViews, this.now())) : linkViews;
      const { assignment: result, change } = computeRun({
        config,
        uplinks,
        previous: this.previousRanges,
        observed,
        assignments: this.assignments,
        neighbours: arp ? arp.neighbours : request.neighbours,
        complete: arp !== null,
        now: started,
        skeleton: this.deps.skeleton,
      });
      counts = { added: result.added.length, moved: result.moved.length, expired: result.expired.length, refused: result.refused.length };
      this.unsaved ||= counts.added + counts.moved + counts.expired > 0;
      this.assignments = result.assignments;
      this.uplinkViews = uplinks;
      this.noteConflicts(change.conflicts);
      this.logAssignments(result, arp !== null);
      phases.plan = mark();
      if (!isEmpty(change)) {
        await this.recordOriginals(change, observed);
        const payloads = renderPayloads(change);
        applied = countLines(payloads);
        await applyPayloads(this.deps.runner, payloads);
        phases.apply = mark();
        this.deps.log.info('applied', { reasons: request.reasons, ...applied, ms: phases });
      }
      await this.forgetFallen(config, uplinks, forgotten);
      phases.forget = mark();
      const stored = this.deps.store.data.ranges;
      if (!stored || !sameRanges(stored, config)) await this.recordRanges(config);
      this.previousRanges = [];
      if (this.unsaved || started - this.lastSavedAt > LAST_SEEN_SAVE_MS) await this.persist(started);
      phases.persist = mark();
      this.retryDelay = RETRY_MIN_MS;
      return { ...base, durationMs: this.now() - started, ok: true, applied, ...counts, forgotten, phases };
    } catch (error) {
      const err = error as Error & { argv?: string[]; exitCode?: number; stderr?: string };
      this.deps.log.error('reconcile failed; retrying with a full resync', {
        reasons: request.reasons,
        error: err.message,
        ...(err.argv ? { argv: err.argv, exitCode: err.exitCode, stderr: err.stderr } : {}),
      });
      this.scheduleRetry();
      return { ...base, durationMs: this.now() - started, ok: false, error: err.message, applied, ...counts, forgotten, phases };
    }
  }

  /**
   * Once the routes avoid a fallen uplink, its connections (by their connection
   * mark) are forgotten: pinned to a dead line they would hang; forgotten, the
   * next packet starts afresh over a survivor. Nothing else is touched.
   */
  private async forgetFallen(config: Config, uplinks: readonly UplinkView[], forgotten: Record<string, number>): Promise<void> {
    const layout = markLayout(config.marks.mask);
    for (const uplink of uplinks) {
      if (uplink.state === 'down' && this.loadedStates.get(uplink.name) === 'up') {
        forgotten[uplink.name] = await forgetConnections(this.deps.runner, connMark(layout, uplink.index), layout.connMask);
        this.deps.log.warn('uplink down: its pool moved to the survivors, its connections forgotten', { uplink: uplink.name, reason: uplink.reason, connections: forgotten[uplink.name] });
      } else if (uplink.state === 'up' && this.loadedStates.get(uplink.name) === 'down') {
        this.deps.log.info('uplink up: its pool is back home', { uplink: uplink.name });
      }
    }
    this.loadedStates = new Map(uplinks.map((u) => [u.name, u.state]));
    const allDown = uplinks.length > 0 && uplinks.every((u) => u.state === 'down');
    if (allDown && !this.allDown) this.deps.log.error('CRITICAL: every uplink is down; routes stay in place until one returns', { uplinks: uplinks.map((u) => `${u.name}: ${u.reason}`) });
    if (!allDown && this.allDown) this.deps.log.info('an uplink is back after a total outage', { up: uplinks.filter((u) => u.state === 'up').map((u) => u.name) });
    this.allDown = allDown;
  }

  private async saveBindings(): Promise<void> {
    if (this.pendingBindings.length === 0) return;
    const bindings = this.pendingBindings;
    this.pendingBindings = [];
    await this.deps.store.save((d) => {
      d.bindings = { ...d.bindings };
      for (const [uplink, iface] of bindings) {
        const configured = this.config.uplinks.find((u) => u.name === uplink)?.interface;
        if (iface === configured) delete d.bindings[uplink];
        else d.bindings[uplink] = iface;
      }
    });
  }

  /** Before the first change to a sysctl or a netfilter table, remember how it was, for flush. */
  private async recordOriginals(change: ChangeSet, observed: KernelState): Promise<void> {
    const data = this.deps.store.data;
    const newSysctls = Object.keys(change.sysctls).filter((key) => !(key in data.sysctlOriginals) && observed.sysctls[key] !== undefined);
    const newTables = change.netfilter.map((c) => c.table).filter((t) => !observed.netfilter.some((o) => o.name === t) && !data.createdTables.includes(t));
    if (newSysctls.length === 0 && newTables.length === 0) return;
    await this.deps.store.save((d) => {
      for (const key of newSysctls) d.sysctlOriginals[key] = observed.sysctls[key] as string;
      d.createdTables.push(...newTables);
    });
  }

  private async recordRanges(config: Config): Promise<void> {
    const ranges = { tables: { base: config.tables.base }, rules: { priority: config.rules.priority } };
    await this.deps.store.save((d) => {
      d.ranges = ranges;
    });
  }

  private async persist(now: number): Promise<void> {
    const clients = Object.fromEntries(this.assignments);
    await this.deps.store.save((d) => {
      d.clients = clients;
    });
    this.lastSavedAt = now;
    this.unsaved = false;
  }

  private noteConflicts(conflicts: readonly string[]): void {
    const fresh = conflicts.filter((c) => !this.conflicts.includes(c));
    for (const conflict of fresh) this.deps.log.warn('conflict', { detail: conflict });
    this.conflicts = conflicts;
  }

  private logAssignments(result: AssignResult, complete: boolean): void {
    const { log } = this.deps;
    if (result.added.length <= 20) {
      for (const { ip, uplink } of result.added) log.info('client assigned', { client: ip, uplink });
    } else {
      const perUplink: Record<string, number> = {};
      for (const { uplink } of result.added) perUplink[uplink] = (perUplink[uplink] ?? 0) + 1;
      log.info('clients assigned', { count: result.added.length, perUplink });
    }
    for (const { ip, from, uplink } of result.moved) log.info('client moved: its uplink left the config', { client: ip, from, uplink });
    if (result.expired.length > 0) log.info('clients expired', { count: result.expired.length, clients: result.expired.slice(0, 20) });
    this.logRefusals(result.refused, complete);
  }

  /**
   * One line when a cap starts refusing clients (clients.max, or clients.per_mac
   * for a MAC not reported yet), not one per run or per address: a hostile
   * host claiming a whole subnet must not flood the log. A full scan with
   * nothing refused resets it.
   */
  private logRefusals(refused: readonly Refusal[], complete: boolean): void {
    if (refused.length === 0) {
      if (complete && this.capsHit.size > 0) {
        this.capsHit.clear();
        this.deps.log.info('no client is refused by a cap any more');
      }
      return;
    }
    const fresh = new Map<string, { cap: Refusal['cap']; mac: string; count: number }>();
    for (const { cap, mac } of refused) {
      const key = cap === 'clients.per_mac' ? `${cap} ${mac}` : cap;
      if (this.capsHit.has(key)) continue;
      const entry = fresh.get(key) ?? { cap, mac, count: 0 };
      entry.count++;
      fresh.set(key, entry);
    }
    for (const key of fresh.keys()) this.capsHit.add(key);
    const { max, perMac } = this.config.clients;
    let lines = 0;
    for (const { cap, mac, count } of fresh.values()) {
      if (lines++ === 20) {
        this.deps.log.warn('more MACs reached clients.per_mac', { macs: fresh.size - 20 });
        break;
      }
      if (cap === 'clients.per_mac') this.deps.log.warn(`clients.per_mac reached: MAC ${mac} already has ${perMac} addresses; ${count} more left unassigned`, { cap, mac, perMac, refused: count });
      else if (cap === 'clients.max') this.deps.log.warn(`clients.max reached: ${max} clients assigned; ${count} new clients left unassigned`, { cap, max, refused: count });
      else this.deps.log.warn(`no uplink to assign to: ${count} new clients left unassigned`, { refused: count });
    }
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

function countLines(payloads: Payloads): RunReport['applied'] {
  return {
    ipset: lines(payloads.ipsetBefore) + lines(payloads.ipsetAfter),
    iptables: lines(payloads.iptables),
    ip: lines(payloads.ip),
    sysctl: Object.keys(payloads.sysctls).length,
  };
}

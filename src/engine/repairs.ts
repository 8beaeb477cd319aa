// Self-repair: when other software changes what is ours — a firewall reload
// wiping our chains, a network manager deleting "foreign" rules and routes, a
// script resetting ip_forward — it is noticed at once and put back by a run,
// without waiting for the scan:
//   netfilter   the backend's change events (nft monitor: iptables-nft too),
//               told apart from ours by the process that committed them
//   routing     ip monitor rule route, against what the last run loaded
//   sysctls     read from /proc/sys every CHECK_MS (no events exist)
//   the rest    the backend's cheap check (ipset's header), every CHECK_MS,
//               asked of one tool kept running (system/tool-session.ts)
// The run itself decides whether anything had drifted (RunReport.drift: its
// plan was unchanged, yet the kernel needed loading); only those runs count
// as repairs, are logged with what was noticed and counted in the metrics.
// Something that keeps undoing ours is backed off (core/repair-loop.ts) and
// shown in status and doctor.

import { isOurRouting, routingDrift, sysctlDrift } from '../core/drift.js';
import { RepairLoop } from '../core/repair-loop.js';
import type { RoutingEvent } from '../model/kernel.js';
import type { GenerationEnd } from '../parse/nft-monitor.js';
import { tableOfEvent } from '../parse/nft-monitor.js';
import type { RepairStatus, RunReport } from '../schema/control.js';
import type { NetfilterBackend } from '../backends/backend.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import { type RunOptions, type RunResult, type Runner, type SpawnOptions, type Process, whatItSaid } from '../system/exec.js';
import type { Logger } from '../system/logger.js';
import { watchNetfilter } from '../system/netfilter-events.js';
import { watchRouting } from '../system/routing-events.js';
import { ToolSession, type ToolSessions } from '../system/tool-session.js';
import type { Monitors } from './monitors.js';
import { type Reconciler, UNCLASSIFIED } from './reconciler.js';

/** How often the sysctls (no events exist) are read from /proc/sys: inside the 1 s repair target with the run. */
export const CHECK_MS = 750;
/**
 * When the check's session fails, the check starts a process instead, every 4th round (3 s): a process
 * every round cost an idle gateway here about 2 % of a core. The session is tried again after a minute.
 */
const ONCE_EVERY = 4;
const SESSION_RETRY_MS = 60_000;
/** Our processes are remembered this long: their commit events arrive within milliseconds. */
const OWN_PROCESS_MEMORY = 64;

/** The processes our runs start to load netfilter payloads, so their change events are known as ours. */
export class OwnWrites {
  private readonly pids: number[] = [];

  has(pid: number): boolean {
    return this.pids.includes(pid);
  }

  /** A runner that records the process id of every command it runs. */
  recording(runner: Runner): Runner {
    const remember = (pid: number): void => {
      this.pids.push(pid);
      if (this.pids.length > OWN_PROCESS_MEMORY) this.pids.shift();
    };
    return {
      run: (argv: readonly string[], options: RunOptions = {}): Promise<RunResult> =>
        runner.run(argv, {
          ...options,
          onSpawn: (pid) => {
            remember(pid);
            options.onSpawn?.(pid);
          },
        }),
      spawn: (argv: readonly string[], options?: SpawnOptions): Process => runner.spawn(argv, options),
    };
  }
}

/** The monitor of changes to rules and routes (system/routing-events.ts), by the name Monitors keeps it under. */
const ROUTING_MONITOR = 'ip monitor rule route';

export interface RepairDeps {
  readonly runner: Runner;
  readonly log: Logger;
  readonly clock: Clock;
  readonly reconciler: Reconciler;
  readonly backend: NetfilterBackend;
  readonly monitors: Monitors;
  readonly own: OwnWrites;
  /** Current values of sysctls (system/sysctl-files.ts). */
  readonly readSysctls: (keys: readonly string[]) => Promise<Record<string, string>>;
  /** The tools kept running, shared with the loader (engine/loader.ts) and ended by their owner; without it the check keeps its own. */
  readonly sessions?: ToolSessions;
}

export class Repairs {
  private readonly loop = new RepairLoop();
  /** What was noticed since the last repair run, and by whom. */
  private noticedSince: { what: string[]; by: Set<string>; at: number } | null = null;
  private waiting: TimerHandle | null = null;
  private checking: TimerHandle | null = null;
  /** The backend's check as read after the last run. */
  private baseline: string | null = null;
  private total = 0;
  private rounds = 0;
  private last: RepairStatus['last'] = null;
  private stopped = false;
  /** When other software last changed a rule or route outside our ranges (routingWatchedSince); 0: not since we started. */
  private othersRoutingAt = 0;
  /** The backend's check tool, kept running; null when its check has no session. */
  private session: ToolSession | null = null;
  /** When the session last failed: the check runs as a process until SESSION_RETRY_MS later. */
  private sessionFailedAt: number | null = null;

  constructor(private readonly deps: RepairDeps) {}

  /** Starts the event streams and the checks; nothing is judged before the first run has loaded. */
  async start(): Promise<void> {
    const { runner, log, monitors, backend, clock } = this.deps;
    const { events, check } = backend.watch;
    if (check?.session) this.session = this.deps.sessions ? this.deps.sessions.of(check.session) : new ToolSession(runner, check.session, clock);
    if (events) {
      const [tool] = events.argv;
      const available = await runner.run([tool as string, '--version']).then(
        () => true,
        () => false,
      );
      if (available) {
        monitors.keep(events.argv.join(' '), () =>
          watchNetfilter(
            runner,
            events.argv,
            (lines, end) => this.netfilterChanged(lines, end),
            () => this.notice('netfilter events lost (netlink buffer overrun)', null),
          ),
        );
      } else log.warn(`${tool} is not installed: a firewall reload that removes our chains is noticed by the client set's check (every ${CHECK_MS / 1000} s) and the scan, not at once`, { tool });
    }
    monitors.keep(ROUTING_MONITOR, () =>
      watchRouting(
        runner,
        (event) => this.routingChanged(event),
        () => this.notice('routing events lost (netlink buffer overrun)', null),
      ),
    );
    this.scheduleCheck();
  }

  /**
   * Since when routing has been watched without a break and changed by no
   * one else (the routing monitor's start, or the latest change outside our
   * ranges: a main-table route, which gateway discovery reads); routing read
   * since may be trusted. null while it is not watched.
   */
  get routingWatchedSince(): number | null {
    const since = this.stopped ? null : this.deps.monitors.watchedSince(ROUTING_MONITOR);
    return since === null ? null : Math.max(since, this.othersRoutingAt);
  }

  /** Since when the backend's change events have been watched without a break (its monitor's start); null while they are not. */
  get watchedSince(): number | null {
    const { events } = this.deps.backend.watch;
    return events && !this.stopped ? this.deps.monitors.watchedSince(events.argv.join(' ')) : null;
  }

  stop(): void {
    this.stopped = true;
    this.deps.clock.clear(this.waiting);
    this.deps.clock.clear(this.checking);
    if (!this.deps.sessions) this.session?.close();
  }

  /** Every run's report: the runs that found drift are the repairs. */
  reported(report: RunReport): void {
    const now = this.deps.clock.now();
    const noticed = this.noticedSince;
    if (report.ok && report.drift) {
      const seen = noticed?.what.length ? noticed.what : [`found by the run (${report.reasons.join(', ')})`];
      const by = [...(noticed?.by ?? [])];
      this.total += 1;
      this.last = { at: new Date(now).toISOString(), what: report.repaired, noticed: seen, applied: report.applied };
      this.loop.repaired(now, by);
      const fight = this.loop.fighting(now);
      this.deps.log.warn('repaired what other software changed of ours', {
        what: report.repaired,
        noticed: seen,
        ...(by.length > 0 ? { by } : {}),
        applied: report.applied,
        ...(noticed ? { afterMs: now - noticed.at } : {}),
        ...(report.forgotten[UNCLASSIFIED] ? { connectionsForgotten: report.forgotten[UNCLASSIFIED] } : {}),
      });
      if (fight?.since === now) this.deps.log.error('something keeps undoing our objects: repairs are backed off while it lasts (see doctor)', { repairs: fight.repairs, by: fight.by });
    }
    // Whatever was noticed has been judged by this run (ours after all, or repaired).
    if (report.ok && !this.deps.reconciler.busy) this.noticedSince = null;
    if (report.ok) {
      // Not judged against until read again: the run may have changed it.
      this.baseline = null;
      void this.readBaseline();
    }
  }

  status(): RepairStatus {
    const now = this.deps.clock.now();
    const fight = this.loop.fighting(now);
    return {
      total: this.total,
      last: this.last,
      fighting: fight ? { since: new Date(fight.since).toISOString(), repairs: fight.repairs, by: fight.by, nextRepairAt: fight.nextAt > now ? new Date(fight.nextAt).toISOString() : null } : null,
    };
  }

  private netfilterChanged(lines: readonly string[], end: GenerationEnd): void {
    if (end.pid !== null && this.deps.own.has(end.pid)) return;
    const tables = this.deps.backend.watch.events?.tables ?? [];
    const touched = lines.filter((line) => {
      const table = tableOfEvent(line);
      return table !== null && tables.includes(table);
    });
    if (touched.length === 0) return;
    const who = end.process ? `${end.process} (pid ${end.pid})` : 'the kernel';
    const more = touched.length > 1 ? ` and ${touched.length - 1} more changes` : '';
    this.notice(`netfilter: ${touched[0]}${more}, by ${who}`, end.process);
  }

  private routingChanged(event: RoutingEvent): void {
    const owned = this.deps.reconciler.effectiveConfig;
    if (!isOurRouting(event, owned)) {
      this.othersRoutingAt = this.deps.clock.now();
      return;
    }
    const loaded = this.deps.reconciler.loaded;
    if (!loaded) return;
    const what = routingDrift(event, loaded, owned);
    if (what) this.notice(what, null);
  }

  /** Reads what has no events and compares it with what the last run left. */
  private scheduleCheck(): void {
    if (this.stopped) return;
    this.checking = this.deps.clock.after(CHECK_MS, () => {
      void this.check().finally(() => this.scheduleCheck());
    });
  }

  private async check(): Promise<void> {
    const { reconciler, readSysctls } = this.deps;
    const loaded = reconciler.loaded;
    // A run under way changes these itself; the next check judges its result.
    if (!loaded || reconciler.busy) return;
    this.rounds += 1;
    const [sysctls, answer] = await Promise.all([readSysctls(Object.keys(loaded.sysctls)), this.askBackend(false)]);
    const state = answer === null ? null : (this.deps.backend.watch.check?.read(answer) ?? null);
    if (reconciler.busy) return;
    for (const what of sysctlDrift(loaded, sysctls)) this.notice(what, null);
    if (state !== null && this.baseline !== null && state !== this.baseline) this.notice(`${state} (after our last run: ${this.baseline})`, null);
  }

  /**
   * The check's answer right after our run, which later checks compare with.
   * It is judged against what the run loaded first (unless another run has
   * begun, which changes it itself): a change another program made while
   * the run loaded (a set flushed) would otherwise become the baseline.
   */
  private async readBaseline(): Promise<void> {
    const answer = await this.askBackend(true);
    const { reconciler, backend } = this.deps;
    const check = backend.watch.check;
    if (answer === null || !check) {
      this.baseline = null;
      return;
    }
    const loaded = reconciler.loaded;
    const wrong = loaded !== null && !reconciler.busy ? check.disagrees(answer, loaded.netfilter) : null;
    this.baseline = check.read(answer);
    if (wrong !== null) this.notice(`${wrong} (read right after our run)`, null);
  }

  /** The backend's check, its answer as the tool gave it: from its session while that works, else as a process (every ONCE_EVERY rounds unless `always`); null: not asked or failed. */
  private async askBackend(always: boolean): Promise<string | null> {
    const { backend, runner, clock, log } = this.deps;
    const check = backend.watch.check;
    if (!check) return null;
    const now = clock.now();
    if (this.session && (this.sessionFailedAt === null || now - this.sessionFailedAt >= SESSION_RETRY_MS)) {
      try {
        const answer = await this.session.ask(check.request);
        this.sessionFailedAt = null;
        return answer;
      } catch (error) {
        if (this.stopped) return null;
        if (this.sessionFailedAt === null) log.warn(`the check's ${check.session?.argv.join(' ')} failed: checking with one process every ${(CHECK_MS * ONCE_EVERY) / 1000} s for a minute`, { error: whatItSaid(error) });
        this.sessionFailedAt = now;
      }
    }
    if (!always && this.rounds % ONCE_EVERY !== 0) return null;
    return runner.run(check.once).then(
      (result) => result.stdout,
      () => null,
    );
  }

  /** Something of ours changed: a repair run now, or when a fight's back-off allows. */
  private notice(what: string, by: string | null): void {
    if (this.stopped) return;
    // Whatever run comes next (a neighbour's too) reads the kernel rather than trusting what the last one left.
    this.deps.reconciler.distrust();
    const now = this.deps.clock.now();
    this.noticedSince ??= { what: [], by: new Set(), at: now };
    if (!this.noticedSince.what.includes(what) && this.noticedSince.what.length < 20) this.noticedSince.what.push(what);
    if (by) this.noticedSince.by.add(by);
    if (this.waiting !== null) return;
    const wait = this.loop.allowedAt(now) - now;
    const repair = (): void => {
      this.waiting = null;
      void this.deps.reconciler.request('repair');
    };
    if (wait <= 0) repair();
    else this.waiting = this.deps.clock.after(wait, repair);
  }
}

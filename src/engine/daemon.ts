// `dispatcher start`: wires the parts together and runs them, systemd style,
// in the foreground. The parts each have their room: the reconcile loop
// (reconciler.ts, behind its trigger queue), health (health.ts), the event
// monitors (monitors.ts), the control handlers (handlers.ts) and what status,
// metrics and explain show (status.ts); the public-address lookups and the
// dynamic DNS publisher work beside the loop and never hold a run up.
//
// SIGTERM/SIGINT stop it and leave the kernel programmed, so clients stay
// online across a restart; SIGHUP reloads the config, keeping the old one
// (and saying why) when the new one is invalid. The first apply waits for
// the stored pools and one round of probes, so a restart never reshuffles
// clients or fails a line over. Start and reload refuse a config whose
// priorities, tables or mark bits other software already uses in this kernel
// (core/collisions.ts). What other software changes of ours is repaired at
// once (repairs.ts). A store left unusable (or behind the kernel, after a
// crash) is recovered from its backup and the kernel's client set
// (core/adopt.ts), and the recovery is logged and shown in `status`.

import { loadConfig, type Overrides, readWebToken } from '../config/load.js';
import { adoptFromClientSet } from '../core/adopt.js';
import { routingCollisions } from '../core/collisions.js';
import type { Transition } from '../core/health.js';
import { Timeline } from '../core/timeline.js';
import { isLoopback } from '../core/ipv4.js';
import { markLayout } from '../core/marks.js';
import { probePaths } from '../core/run.js';
import type { Config } from '../model/config.js';
import type { Link } from '../model/kernel.js';
import { ConfigError } from '../model/errors.js';
import type { ClientEdits, ClientRecord, UplinkView } from '../model/state.js';
import type { RunReport } from '../schema/control.js';
import type { NetfilterBackend } from '../backends/backend.js';
import { renderIpBatch } from '../render/payloads.js';
import { systemClock } from '../system/clock.js';
import { clientsWithConnections } from '../system/conntrack.js';
import { AlreadyRunning, listenControl, socketIsLive, type ControlServer } from '../system/control-server.js';
import type { Runner } from '../system/exec.js';
import { applyIpBatch, observeRouting, readLinks, readRoutes, readRules } from '../system/kernel.js';
import { Radvd } from '../system/radvd.js';
import { viewUplinks6 } from '../core/uplinks6.js';
import { discoverUplinks } from '../system/leases.js';
import type { Logger } from '../system/logger.js';
import { listenMetrics, type MetricsServer } from '../system/metrics-server.js';
import { ProcessWatch } from '../system/process-stats.js';
import { startSchedule, type Schedule } from '../system/schedule.js';
import { type Asset, listenWeb, readAssets, type WebServer } from '../system/web-server.js';
import { readSysctlFiles } from '../system/sysctl-files.js';
import { clientsOf, Store } from '../system/store.js';
import { loadBackends } from './backend.js';
import { ClientBytes } from './client-bytes.js';
import { HaRoles } from './ha.js';
import { recordedRole, recordTaken, roleStillHeld, takenRole } from '../system/ha-role-file.js';
import { HaSync } from './ha-sync.js';
import { ConntrackdHealth } from './conntrackd-health.js';
import { readHaKey, syncAddress } from '../system/ha-files.js';
import { conntrackdStats, conntrackdSteps } from '../system/conntrackd.js';
import { ToolSessions } from '../system/tool-session.js';
import { removeOtherBackends } from './flush.js';
import { DdnsPublisher } from './ddns.js';
import { controlHandlers, dispatch, type Handlers } from './handlers.js';
import { HealthMonitor } from './health.js';
import { LineHistory } from './line-history.js';
import { Monitors } from './monitors.js';
import { noteTransition, RunNotes } from './notes.js';
import { Notifier } from './notifier.js';
import { PublicAddresses } from './public-address.js';
import { Reconciler, SCHEDULED_SCAN_REASON } from './reconciler.js';
import { PoolTraffic } from './pool-traffic.js';
import { type Load, rebalance } from './rebalance.js';
import { OwnWrites, Repairs } from './repairs.js';
import { DaemonStatus } from './status.js';
import { webRoutes } from './web.js';

/** Events the timeline keeps (the web page and `dispatcher events`): the newest, in memory. */
const TIMELINE_EVENTS = 1000;

export interface DaemonOptions {
  readonly configPath: string;
  readonly overrides: Overrides;
  readonly runner: Runner;
  readonly log: Logger;
  readonly version: string;
  /** How self-repair reads the sysctls it set: from /proc/sys by default (the fake kernel's tests give its own). */
  readonly readSysctls?: (keys: readonly string[]) => Promise<Record<string, string>>;
}

/** The parts that exist once start() has read the config and the store. */
interface Parts {
  readonly timeline: Timeline;
  readonly reconciler: Reconciler;
  readonly health: HealthMonitor;
  readonly notifier: Notifier;
  readonly publicAddresses: PublicAddresses;
  readonly ddns: DdnsPublisher;
  readonly monitors: Monitors;
  readonly repairs: Repairs;
  readonly status: DaemonStatus;
  readonly backend: NetfilterBackend;
  readonly traffic: PoolTraffic;
  readonly history: LineHistory;
  readonly clientBytes: ClientBytes;
  /** One of a pair: the state channel; null alone. */
  readonly haSync: HaSync | null;
  /** One of a pair: whether its conntrackd answers; null alone. */
  readonly conntrackd: ConntrackdHealth | null;
  /** The tools kept running (one `ipset -`), ended last. */
  readonly sessions: ToolSessions;
}

export class Daemon {
  private parts: Parts | null = null;
  private control: ControlServer | null = null;
  private metrics: MetricsServer | null = null;
  private web: WebServer | null = null;
  /** The process figures of the metrics; its event-loop watch runs only while the endpoint is on. */
  private readonly process = new ProcessWatch();
  /** Changes of the dashboard, one after the other. */
  private webChange: Promise<void> = Promise.resolve();
  private assets: ReadonlyMap<string, Asset> | null = null;
  /** The token the dashboard's routes were made with. */
  private webToken: string | null = null;
  private handlers: Handlers | null = null;
  private schedule: Schedule | null = null;
  private scheduled = '';
  private rebalancing: Schedule | null = null;
  private stopping = false;
  private finished!: (code: number) => void;
  readonly done: Promise<number> = new Promise((resolve) => (this.finished = resolve));
  private readonly signals: Record<string, () => void> = {
    SIGTERM: () => void this.stop('SIGTERM'),
    SIGINT: () => void this.stop('SIGINT'),
    SIGHUP: () => void this.reload().catch((error: Error) => this.options.log.warn('reload refused; the running config stays', { error: error.message })),
  };

  constructor(private readonly options: DaemonOptions) {}

  private get running(): Parts {
    if (!this.parts) throw new Error('the daemon has not started');
    return this.parts;
  }

  /** Starts everything; resolves once the first reconcile has run. Throws ConfigError/AlreadyRunning before touching anything. */
  async start(): Promise<RunReport> {
    const { log, runner, version, configPath } = this.options;
    const config = await loadConfig(configPath, this.options.overrides);
    if (await socketIsLive(config.socket)) throw new AlreadyRunning(config.socket);
    const [backend, ...others] = await loadBackends(config);
    const observed = await this.refuseCollisions(config, backend);
    const { store, recovery } = await Store.openOrRecover(config.state, new Date());
    // netfilter.backend was switched: the other backend's objects go before ours are loaded.
    for (const removal of await removeOtherBackends(runner, others, store.data.createdTables)) {
      log.warn('removed what the other netfilter backend had loaded (netfilter.backend changed)', { chains: removal.chains, tables: removal.tablesDeleted });
    }
    const stored = clientsOf(store.data);
    const adoption = adoptFromClientSet(config, backend.classified(observed), stored.assignments, Date.now());
    if (recovery) {
      log.error('state store was unusable: moved aside; assignments recovered from its backup and the kernel', {
        problem: recovery.problem,
        movedTo: recovery.movedTo,
        backup: recovery.backup,
        fromBackup: Object.keys(store.data.clients).length,
        fromKernel: adoption.adopted.length,
      });
    } else if (adoption.adopted.length > 0) {
      log.warn('clients in the kernel were missing from the store (a crash between apply and save): adopted with their uplinks', { adopted: adoption.adopted.length });
    }
    const timeline = new Timeline(TIMELINE_EVENTS, Date.now);
    const notifier = new Notifier({ runner, log }, config.notify);
    const health = new HealthMonitor({ runner, log, onTransition: (t) => this.onTransition(t) }, config);
    const ownsAaaa = (owns: boolean): void => {
      const record = (d: { ddnsAaaa?: boolean }): void => {
        d.ddnsAaaa = owns;
      };
      void store.save(record).catch((error: unknown) => log.warn('could not record the AAAA records as ours in the store', { error: String(error) }));
    };
    const ddns = new DdnsPublisher({ runner, log, ownsAaaa: store.data.ddnsAaaa === true, onOwnsAaaa: ownsAaaa, note: timeline.note }, config);
    const publicAddresses = new PublicAddresses({ runner, log, onChange: () => this.publish() }, config);
    // One of a pair: the state channel (engine/ha-sync.ts, made once the reconciler is); its master sends after every run.
    let haSync: HaSync | null = null;
    const afterRun = (uplinks: readonly UplinkView[]): void => {
      publicAddresses.observe(uplinks);
      haSync?.afterRun();
      this.publish();
    };
    const own = new OwnWrites();
    // One `ipset -` kept running for the client sets' check and the loader's small changes.
    const sessions = new ToolSessions(runner, systemClock);
    const runs = new RunNotes(timeline.note);
    const reported = (report: RunReport): void => {
      repairs.reported(report);
      runs.reported(report);
    };
    const traffic: PoolTraffic = new PoolTraffic(() => backend.counters(runner, reconciler.currentConfig), systemClock, log);
    const reconciler: Reconciler = new Reconciler(
      {
        runner,
        store,
        backend,
        log,
        health,
        afterRun,
        reported,
        writer: own.recording(runner),
        clock: systemClock,
        poolRates: (): ReadonlyMap<string, number> | null => traffic.rates(),
        advertiser: new Radvd(runner, config.state),
        netfilterWatchedSince: () => repairs.watchedSince,
        routingWatchedSince: () => repairs.routingWatchedSince,
        neighboursWatchedSince: () => monitors.neighboursWatchedSince,
        sessions,
      },
      config,
      stored.assignments,
      stored.lastSeen,
    );
    const ha = config.ha;
    const resyncConnections = async (): Promise<void> => {
      const [step] = await conntrackdSteps(runner, config.state, ['-n']).catch((error: unknown) => [{ step: '-n', ok: false, said: (error as Error).message }]);
      if (step && !step.ok) log.warn('conntrackd could not ask the master for its connections', { said: step.said });
    };
    if (ha) haSync = new HaSync({ log, clock: systemClock, reconciler, ownAddress: () => syncAddress(runner, ha.interface), key: () => readHaKey(ha.keyFile), resyncConnections }, ha);
    const conntrackd = ha ? new ConntrackdHealth({ ask: () => conntrackdStats(runner, config.state), clock: systemClock, log, note: timeline.note }) : null;
    const monitors = new Monitors({ runner, log, clock: systemClock, reconciler });
    const repairs = new Repairs({ runner, log, clock: systemClock, reconciler, backend, monitors, own, readSysctls: this.options.readSysctls ?? readSysctlFiles, sessions });
    const history = new LineHistory({ runner, log, clock: systemClock, health, reconciler });
    const clientBytes = new ClientBytes(() => backend.clientBytes(runner), systemClock, log);
    const status = new DaemonStatus(
      { runner, backend, reconciler, health, publicAddresses, ddns, repairs, process: this.process, haSync, conntrackd },
      { version, configPath, startedAt: new Date(), recovered: { store: recovery, adopted: adoption.adopted.length } },
    );
    this.parts = { timeline, reconciler, health, notifier, publicAddresses, ddns, monitors, repairs, status, backend, traffic, history, clientBytes, haSync, conntrackd, sessions };
    // Events, probe verdicts and requests during the first probe round queue up and join the first run:
    // a run ahead of it would judge the kernel without the adopted clients and the full scan.
    reconciler.hold();
    const roles = new HaRoles({
      runner,
      log,
      reconciler,
      timeline,
      sync: haSync,
      recorded: async () => (await recordedRole(config.state))?.role ?? null,
      taken: (role) => recordTaken(config.state, role),
    });
    const handlers = (this.handlers = controlHandlers({ version, log, reconciler, health, status, timeline, ha: roles, reload: () => this.reload(), load: this.load(traffic, reconciler) }));
    this.control = await listenControl(config.socket, (request) => dispatch(handlers, request), log);
    // A pair whose channel cannot listen (the sync link missing) still routes; the peer then cannot reach it, and says so.
    await haSync?.start().catch((error: unknown) => log.error('the state channel could not start', { error: (error as Error).message }));
    conntrackd?.start();
    await this.serveMetrics(config, status);
    await this.serveWeb(config);
    for (const [signal, handler] of Object.entries(this.signals)) process.on(signal, handler);
    log.info('starting', { version, config: configPath, uplinks: config.uplinks.map((u) => u.name), clients: Object.keys(store.data.clients).length });
    timeline.note('start', `starting (version ${version}): ${config.uplinks.length} lines, ${Object.keys(store.data.clients).length} clients in the store${recovery ? ' (recovered from its backup and the kernel)' : ''}`);
    // Watch before the first scan, so no neighbour or link change in between is missed.
    monitors.start();
    await repairs.start();
    await this.firstProbeRound();
    // Adopted clients are an edit, so the first run saves them.
    const adoptAll = (clients: ClientEdits): void => {
      for (const { ip } of adoption.adopted) clients.set(ip, adoption.assignments.get(ip) as ClientRecord);
    };
    const adopt = adoption.adopted.length > 0 ? { edit: adoptAll } : {};
    // A restarted dispatcher under a keepalived that has held its role all along: the first run plans with it (a master's fence never goes up).
    const held = ha ? await roleStillHeld(config.state) : null;
    const resumes = held !== null && (await takenRole(config.state)) === held.role;
    if (held && resumes) roles.resume(held.role);
    const first = reconciler.request('start', { scan: true, ...adopt });
    reconciler.release();
    // A role keepalived gave while this daemon was down: taken now, with its steps (the dial, the commit).
    if (held && !resumes) void roles.become(held.role).catch((error: unknown) => log.error('could not take the role keepalived gave while the daemon was down', { error: (error as Error).message }));
    const report = await first;
    this.scheduleScans(config.scan.schedule);
    this.sampleTraffic(this.running.traffic, this.running.reconciler, config);
    log.info('running', { firstRun: { ok: report.ok, durationMs: report.durationMs, applied: report.applied, added: report.added } });
    return report;
  }

  /** Reads the kernel and refuses a config that collides with other software's objects in it; returns the backend's observation. */
  private async refuseCollisions(config: Config, backend: NetfilterBackend): Promise<unknown> {
    const { runner } = this.options;
    const [routing, netfilter] = await Promise.all([observeRouting(runner, config), backend.observe(runner)]);
    const problems = [...routingCollisions(config, routing), ...backend.collisions(config, netfilter)];
    if (problems.length > 0) throw new ConfigError(problems, this.options.configPath);
    return netfilter;
  }

  /**
   * Starts the probes and waits until every uplink has a verdict (at most its
   * worst-case detection time). On a gateway never programmed before, the
   * uplinks' own tables and connection rules go in first (core/run.ts
   * probePaths), so the probes leave by their uplinks from the first one.
   */
  private async firstProbeRound(): Promise<void> {
    const { runner, log } = this.options;
    const { reconciler, health } = this.running;
    const config = reconciler.effectiveConfig;
    const [links, routes, rules] = await Promise.all([readLinks(runner), readRoutes(runner), readRules(runner)]);
    const uplinks = await discoverUplinks(config, { links, routes }, systemClock.now());
    const ip = renderIpBatch(probePaths(config, uplinks, { rules, routes }));
    if (ip) {
      // Only a head start: if it fails, the first run loads the same objects (and retries).
      await applyIpBatch(runner, ip).catch((error: Error) => log.warn('could not give the probes their paths before the first run', { error: error.message }));
    }
    health.observe(uplinks, systemClock.now());
    if (config.lan.ipv6.mode !== 'off' && config.uplinks.some((u) => (u.ipv6?.targets.length ?? 0) > 0)) await this.firstProbeRound6(config, uplinks, links);
    const longest = Math.max(0, ...config.uplinks.map((u) => u.probe.down * u.probe.intervalMs + u.probe.timeoutMs));
    await health.decided(longest + 200);
  }

  /** The same head start for the lines whose IPv6 is probed on its own (uplinks[].ipv6.probe), with `ip -6`. */
  private async firstProbeRound6(config: Config, uplinks: readonly UplinkView[], links: readonly Link[]): Promise<void> {
    const { runner, log } = this.options;
    const [routes, rules] = await Promise.all([readRoutes(runner, 'ipv6'), readRules(runner, 'ipv6')]);
    const uplinks6 = viewUplinks6(config, uplinks, links, { rules, routes });
    const ip = renderIpBatch(probePaths(config, uplinks6, { rules, routes }, 'ipv6'));
    if (ip) await applyIpBatch(runner, ip, 'ipv6').catch((error: Error) => log.warn('could not give the IPv6 probes their paths before the first run', { error: error.message }));
    this.running.health.observe6(uplinks6, systemClock.now());
  }

  private onTransition(transition: Transition): void {
    const { reconciler, notifier, timeline } = this.running;
    const iface = reconciler.effectiveConfig.uplinks.find((u) => u.name === transition.uplink)?.interface ?? '';
    // A fall or a return moves the pools at once (prepared routes, one ip batch); the run that follows settles the rest.
    // A verdict on a line's IPv6 alone is settled by that run (one read, about 100 ms more).
    const to = transition.family ? null : transition.to === 'down' ? 'down' : transition.from === 'down' ? 'up' : null;
    const first = to ? reconciler.failFast(transition.uplink, to, transition.reason) : Promise.resolve();
    // After the pools have started moving: the timeline comes second to the failover.
    noteTransition(timeline.note, transition, reconciler.uplinks, reconciler.clients);
    notifier.notify(
      transition,
      iface,
      first.then(() => reconciler.request(`health: ${transition.uplink}${transition.family ? ' IPv6' : ''} ${transition.to}`)),
    );
  }

  /** Hands the uplinks, with their public addresses, to the DNS publisher (which acts only on a change). */
  private publish(): void {
    const { reconciler, publicAddresses, ddns } = this.running;
    const uplinks = reconciler.uplinks;
    // A first lookup under way would make the record set look one short for a moment: wait for it.
    if (publicAddresses.pending(uplinks)) return;
    // The last run's IPv6 views, unless IPv6 is off now (a failed run after a reload leaves the old ones).
    const uplinks6 = new Map(reconciler.effectiveConfig.lan.ipv6.mode === 'off' ? [] : reconciler.uplinks6.map((u) => [u.name, u]));
    ddns.observe(
      uplinks.map((u) => {
        const v6 = uplinks6.get(u.name);
        return { name: u.name, index: u.index, up: u.state === 'up', publicAddress: publicAddresses.address(u), ...(v6 ? { ipv6: { up: v6.state === 'up', address: v6.inbound ?? null } } : {}) };
      }),
    );
  }

  private scheduleScans(expression: string): void {
    if (this.stopping || expression === this.scheduled) return;
    this.schedule?.stop();
    const { reconciler } = this.running;
    this.schedule = startSchedule(expression, () => void reconciler.request(SCHEDULED_SCAN_REASON, { scan: true }));
    this.scheduled = expression;
  }

  /** Opens, moves or closes the metrics endpoint to match the config. */
  private async serveMetrics(config: Config, status: DaemonStatus): Promise<void> {
    const wanted = config.metrics ? `${config.metrics.host}:${config.metrics.port}` : null;
    if (this.metrics?.listen === wanted) return;
    await this.metrics?.close();
    this.metrics = null;
    this.process.stop();
    if (!config.metrics) return;
    try {
      this.metrics = await listenMetrics(config.metrics.host, config.metrics.port, () => status.metrics(), this.options.log);
      // Stopped while it opened: stop() has closed the endpoint it knew of, not this one.
      if (this.stopping) {
        await this.metrics.close();
        this.metrics = null;
      } else this.process.start();
    } catch (error) {
      // A taken port must not stop the gateway: the pools matter more than the graphs.
      this.options.log.error('metrics endpoint could not listen; running without it', { listen: wanted, error: (error as Error).message });
    }
  }

  /**
   * Opens, moves or closes the web dashboard to match the config, one change
   * at a time (a SIGHUP and a control reload may meet). The token file is
   * read again on every reload (loadConfig has checked it), so a new token
   * takes effect without closing the socket; open pages reconnect and need it.
   * Like the metrics endpoint, a port that is taken leaves the gateway
   * running without the page. The lines' history is sampled only while it is on.
   */
  private serveWeb(config: Config): Promise<void> {
    this.webChange = this.webChange.then(() => this.changeWeb(config));
    return this.webChange;
  }

  private async changeWeb(config: Config): Promise<void> {
    const { log, configPath } = this.options;
    const { history, ...parts } = this.running;
    const wanted = config.web ? `${config.web.host}:${config.web.port}` : null;
    if (this.web && this.web.listen !== wanted) {
      await this.web.close();
      this.web = null;
    }
    if (!config.web || this.stopping) {
      history.stop();
      return;
    }
    const { host, port, tokenFile } = config.web;
    try {
      this.assets ??= await readAssets();
      const token = tokenFile === null ? null : await readWebToken(tokenFile, configPath);
      // The same page with the same token: open pages stay connected.
      if (this.web && token === this.webToken) return;
      const routes = webRoutes({ ...parts, history, log, clock: systemClock, handlers: this.handlers as Handlers }, this.assets, token, !isLoopback(host));
      if (this.web) this.web.use(routes);
      else this.web = await listenWeb(host, port, routes, log);
      this.webToken = token;
      history.start();
    } catch (error) {
      // A page already open goes on with what it had (and its charts with it).
      log.error(this.web ? 'web dashboard could not take the new config; it goes on with the old one' : 'web dashboard could not start; running without it', { listen: wanted, error: (error as Error).message });
      if (!this.web) history.stop();
    }
  }

  /** What a rebalance weighs: the pools' recent traffic and the clients with a connection open. */
  private load(traffic: PoolTraffic, reconciler: Reconciler): Load {
    const { runner } = this.options;
    return { rates: () => traffic.recent(), busy: () => clientsWithConnections(runner, markLayout(reconciler.currentConfig.marks.mask).connMask, reconciler.currentConfig.lan.ipv6.mode === 'nat') };
  }

  /**
   * The pool counters are read only while something weighs traffic: new
   * clients assigned by it, or balance.rebalance's schedule (which this also
   * starts, moves or stops).
   */
  private sampleTraffic(traffic: PoolTraffic, reconciler: Reconciler, config: Config): void {
    const { assign, rebalance: schedule } = config.balance;
    if (assign === 'traffic' || schedule !== undefined) traffic.start();
    else traffic.stop();
    this.rebalancing?.stop();
    this.rebalancing = null;
    if (schedule === undefined || this.stopping) return;
    const { log } = this.options;
    this.rebalancing = startSchedule(schedule, () => {
      // One of a pair moves clients only as master (a backup follows its assignments).
      if (config.ha && reconciler.role !== 'master') return;
      rebalance({ reconciler, log, load: this.load(traffic, reconciler) }, false).catch((error: Error) => log.warn('scheduled rebalance failed', { error: error.message }));
    });
  }

  /** Re-reads the config file; a bad file leaves the running config in place and throws ConfigError. Either way the timeline says so. */
  async reload(): Promise<RunReport> {
    const { timeline } = this.running;
    try {
      const report = await this.reloadConfig();
      timeline.note('reload', `config reloaded from ${this.options.configPath}${report.ok ? '' : `; loading it failed (retried): ${report.error ?? ''}`}`);
      return report;
    } catch (error) {
      if (error instanceof ConfigError) timeline.note('refused', `config refused, the running one stays: ${error.problems.map((p) => `${p.field}: ${p.problem}`).join('; ')}`);
      throw error;
    }
  }

  private async reloadConfig(): Promise<RunReport> {
    const { reconciler, health, notifier, publicAddresses, ddns, status, backend, traffic } = this.running;
    const next = await loadConfig(this.options.configPath, this.options.overrides);
    const current = reconciler.currentConfig;
    if (next.socket !== current.socket || next.state !== current.state) {
      throw new ConfigError([{ field: next.socket !== current.socket ? 'socket' : 'state', problem: 'cannot change while running', fix: 'restart the daemon to use the new path' }], this.options.configPath);
    }
    if (next.netfilter.backend !== current.netfilter.backend) {
      throw new ConfigError([{ field: 'netfilter.backend', problem: 'cannot change while running', fix: "restart the daemon: it removes the old backend's objects and loads the new one" }], this.options.configPath);
    }
    // The state channel and conntrackd's health are built at start from these (the rest of ha is keepalived's, rendered, or read per run).
    const fields = [
      ['peer', 'peer'],
      ['interface', 'interface'],
      ['key', 'keyFile'],
      ['port', 'port'],
    ] as const;
    const changed = Boolean(next.ha) !== Boolean(current.ha) ? 'ha' : next.ha && current.ha ? fields.find(([, key]) => next.ha?.[key] !== current.ha?.[key])?.[0] : undefined;
    if (changed !== undefined) {
      throw new ConfigError([{ field: changed === 'ha' ? 'ha' : `ha.${changed}`, problem: 'cannot change while running', fix: 'restart the daemon (in a pair, one gateway at a time, the backup first)' }], this.options.configPath);
    }
    await this.refuseCollisions(next, backend);
    this.scheduleScans(next.scan.schedule);
    this.options.log.info('reloading config', { config: this.options.configPath });
    health.reconfigure(next);
    notifier.reconfigure(next.notify);
    publicAddresses.reconfigure(next);
    ddns.reconfigure(next);
    this.sampleTraffic(traffic, reconciler, next);
    await this.serveMetrics(next, status);
    await this.serveWeb(next);
    return reconciler.reload(next);
  }

  async stop(signal: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.options.log.info('stopping; kernel state stays in place', { signal });
    this.schedule?.stop();
    this.rebalancing?.stop();
    if (this.parts) {
      const { monitors, repairs, health, notifier, publicAddresses, ddns, reconciler, traffic, history, haSync, conntrackd, sessions } = this.parts;
      traffic.stop();
      conntrackd?.stop();
      await haSync?.stop();
      // A dashboard change under way (a reload) finishes first: it may start the sampling again.
      await this.webChange;
      history.stop();
      repairs.stop();
      monitors.stop();
      health.stop();
      notifier.stop();
      publicAddresses.stop();
      ddns.stop();
      await reconciler.stop();
      sessions.close();
    }
    await this.control?.close();
    await this.metrics?.close();
    this.process.stop();
    await this.web?.close();
    // Only now, outside the signal's own dispatch: removing our handler while
    // SIGTERM is being delivered would leave execa's signal-exit handler alone,
    // and it would re-raise the signal and end the process by it, not with 0.
    for (const [signal, handler] of Object.entries(this.signals)) process.off(signal, handler);
    this.finished(0);
  }
}

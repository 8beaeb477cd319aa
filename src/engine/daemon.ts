// `dispatcher start`: wires config, store, reconciler, health monitor,
// neighbour and link watchers, scan schedule, notifier, control socket and
// signals. In the foreground, systemd style. SIGTERM/SIGINT stop it and leave
// the kernel programmed, so clients stay online across a restart; SIGHUP
// reloads the config, keeping the old one (and saying why) when the new one is
// invalid. The first apply waits for the stored pools and one round of
// probes, so a restart never reshuffles clients or fails a line over.
// Start and reload also refuse a config whose priorities, tables or mark bits
// other software already uses in this kernel (core/collisions.ts). A store
// left unusable (or behind the kernel, after a crash) is recovered from its
// backup and the kernel's client set (core/adopt.ts), and the recovery is
// logged and shown in `status`, never silent.
// After each run the uplinks go to the public-address lookups and the dynamic
// DNS publisher, which work beside the loop and never hold a run up. The
// optional metrics endpoint, `explain` and `top` read the daemon's state and
// the kernel's counters on request.

import { CronJob } from 'cron';
import { loadConfig, type Overrides } from '../config/load.js';
import { adoptFromClientSet } from '../core/adopt.js';
import { isNeighbourNews } from '../core/clients.js';
import { kernelCollisions } from '../core/collisions.js';
import type { Transition } from '../core/health.js';
import { explain } from '../core/explain.js';
import { renderMetrics } from '../core/metrics.js';
import { checkAssignment, type ControlRequest, type PppHook } from '../core/requests.js';
import { probePaths } from '../core/run.js';
import type { Traffic } from '../core/traffic.js';
import { poolsView } from '../core/views.js';
import type { Config } from '../model/config.js';
import type { KernelState } from '../model/kernel.js';
import type { ClientRecord, UplinkView } from '../model/state.js';
import { ConfigError, RequestError } from '../model/errors.js';
import type { Process, Runner } from '../system/exec.js';
import { applyPayloads, observeKernel, readLinks, readRoutes, readRules } from '../system/kernel.js';
import { discoverUplinks } from '../system/leases.js';
import { MONITOR_RCVBUF, watchNeighbours } from '../system/neighbours.js';
import { interfaceOfLinkEvent, isMonitorOverrun } from '../parse/link-events.js';
import { renderIpBatch } from '../render/payloads.js';
import { loadSkeleton } from '../system/skeleton.js';
import { assignmentsOf, Store, type StoreRecovery } from '../system/store.js';
import { readTraffic } from '../system/traffic.js';
import { AlreadyRunning, listenControl, socketIsLive, type ControlServer } from './control.js';
import { DdnsPublisher } from './ddns.js';
import { HealthMonitor } from './health.js';
import type { Logger } from './logger.js';
import { listenMetrics, type MetricsServer } from './metrics.js';
import { Notifier } from './notifier.js';
import { PublicAddresses } from './public-address.js';
import { Reconciler, type RunReport } from './reconciler.js';

export interface DaemonOptions {
  readonly configPath: string;
  readonly overrides: Overrides;
  readonly runner: Runner;
  readonly log: Logger;
  readonly version: string;
}

const WATCH_RESTART_MS = 1000;
/** An internet address for `explain`'s route lookup (documentation range; only looked up, never sent to). */
const KERNEL_LOOKUP_DESTINATION = '203.0.113.1';
/**
 * After lost events, the rescan waits for this much quiet: a dump taken while
 * the kernel is still inserting can miss entries (the neighbour hash is
 * resized under it), and their events were among the lost ones.
 */
const SETTLE_SCAN_MS = 250;
const SETTLE_SCAN_MAX_MS = 2000;

/** An operator's change is kept either way; a failed run is their error to see (the daemon retries it). */
function applied(report: RunReport): RunReport {
  if (!report.ok) throw new Error(`kept, but loading it into the kernel failed (the daemon retries): ${report.error}`);
  return report;
}

export class Daemon {
  private reconciler!: Reconciler;
  private health!: HealthMonitor;
  private notifier!: Notifier;
  private publicAddresses!: PublicAddresses;
  private ddns!: DdnsPublisher;
  private store!: Store;
  private control: ControlServer | null = null;
  private metrics: MetricsServer | null = null;
  private cron: CronJob | null = null;
  private settleScan: NodeJS.Timeout | null = null;
  private lostSince = 0;
  /** How the assignments were read at start: store problems and clients adopted from the kernel. */
  private recovered: { store: StoreRecovery | null; adopted: number } = { store: null, adopted: 0 };
  private readonly watches: Process[] = [];
  private stopping = false;
  private readonly startedAt = new Date();
  private finished!: (code: number) => void;
  readonly done: Promise<number> = new Promise((resolve) => (this.finished = resolve));
  private readonly signals: Record<string, () => void> = {
    SIGTERM: () => void this.stop('SIGTERM'),
    SIGINT: () => void this.stop('SIGINT'),
    SIGHUP: () => void this.reload().catch((error: Error) => this.options.log.warn('reload refused; the running config stays', { error: error.message })),
  };

  constructor(private readonly options: DaemonOptions) {}

  private get config(): Config {
    return this.reconciler.effectiveConfig;
  }

  /** Starts everything; resolves once the first reconcile has run. Throws ConfigError/AlreadyRunning before touching anything. */
  async start(): Promise<RunReport> {
    const { log, runner } = this.options;
    const config = await loadConfig(this.options.configPath, this.options.overrides);
    if (await socketIsLive(config.socket)) throw new AlreadyRunning(config.socket);
    const observed = await this.refuseCollisions(config);
    const skeleton = await loadSkeleton();
    const { store, recovery } = await Store.openOrRecover(config.state, new Date());
    this.store = store;
    const adoption = adoptFromClientSet(config, observed.sets, assignmentsOf(store.data), Date.now());
    this.recovered = { store: recovery, adopted: adoption.adopted.length };
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
    this.notifier = new Notifier({ runner, log }, config.notify);
    this.health = new HealthMonitor({ runner, log, onTransition: (t) => this.onTransition(t) }, config);
    this.ddns = new DdnsPublisher({ runner, log }, config);
    this.publicAddresses = new PublicAddresses({ runner, log, onChange: () => this.publish() }, config);
    const afterRun = (uplinks: readonly UplinkView[]): void => {
      this.publicAddresses.observe(uplinks);
      this.publish();
    };
    this.reconciler = new Reconciler({ runner, store: this.store, skeleton, log, health: this.health, afterRun }, config, assignmentsOf(store.data));
    // Events, probe verdicts and requests during the first probe round queue up and join the first run:
    // a run ahead of it would judge the kernel without the adopted clients and the full scan.
    this.reconciler.hold();
    this.control = await listenControl(config.socket, (request) => this.handle(request), log);
    await this.serveMetrics(config);
    for (const [signal, handler] of Object.entries(this.signals)) process.on(signal, handler);
    log.info('starting', { version: this.options.version, config: this.options.configPath, uplinks: config.uplinks.map((u) => u.name), clients: Object.keys(this.store.data.clients).length });
    // Watch before the first scan, so no neighbour or link change in between is missed;
    // their events simply queue behind the first run.
    this.watch(['ip', 'monitor', 'neigh'], () =>
      watchNeighbours(
        runner,
        (neighbour) => {
          if (isNeighbourNews(this.config, this.reconciler.clients, neighbour)) void this.reconciler.request('neighbour', { neighbours: [neighbour] });
        },
        () => this.eventsLost('neigh'),
      ),
    );
    this.watch(['ip', 'monitor', 'link', 'address'], () => this.watchLinks());
    await this.firstProbeRound();
    // Adopted clients are an edit, so the first run saves them.
    const adopt = adoption.adopted.length > 0 ? { edit: (clients: Map<string, ClientRecord>) => adoption.adopted.forEach(({ ip }) => clients.set(ip, adoption.assignments.get(ip) as ClientRecord)) } : {};
    const first = this.reconciler.request('start', { scan: true, ...adopt });
    this.reconciler.release();
    const report = await first;
    if (!this.stopping) this.schedule(config.scan.schedule);
    log.info('running', { firstRun: { ok: report.ok, durationMs: report.durationMs, applied: report.applied, added: report.added } });
    return report;
  }

  /** Reads the kernel and refuses a config that collides with other software's objects in it. */
  private async refuseCollisions(config: Config): Promise<KernelState> {
    const observed = await observeKernel(this.options.runner, config);
    const problems = kernelCollisions(config, observed);
    if (problems.length > 0) throw new ConfigError(problems, this.options.configPath);
    return observed;
  }

  /**
   * Starts the probes and waits until every uplink has a verdict (at most its
   * worst-case detection time). On a gateway never programmed before, the
   * uplinks' own tables and connection rules go in first (core/run.ts
   * probePaths), so the probes leave by their uplinks from the first one.
   */
  private async firstProbeRound(): Promise<void> {
    const config = this.config;
    const { runner, log } = this.options;
    const [links, routes, rules] = await Promise.all([readLinks(runner), readRoutes(runner), readRules(runner)]);
    const uplinks = await discoverUplinks(config, { links, routes }, Date.now());
    const ip = renderIpBatch(probePaths(config, uplinks, { rules, routes }));
    if (ip) {
      // Only a head start: if it fails, the first run loads the same objects (and retries).
      await applyPayloads(runner, { ipsetBefore: '', iptables: '', ip, ipsetAfter: '', sysctls: {} }).catch((error: Error) => log.warn('could not give the probes their paths before the first run', { error: error.message }));
    }
    this.health.observe(uplinks, Date.now());
    const longest = Math.max(0, ...config.uplinks.map((u) => u.probe.down * u.probe.intervalMs + u.probe.timeoutMs));
    await this.health.decided(longest + 200);
  }

  /** Keeps a monitor process running; restarts it (and rescans) when it ends. */
  private watch(argv: readonly string[], start: () => Process): void {
    if (this.stopping) return;
    const process = start();
    this.watches.push(process);
    void process.ended.then(() => {
      this.watches.splice(this.watches.indexOf(process), 1);
      if (this.stopping) return;
      this.options.log.warn('monitor ended; restarting it', { command: argv.join(' '), afterMs: WATCH_RESTART_MS });
      setTimeout(() => this.watch(argv, start), WATCH_RESTART_MS).unref();
      void this.reconciler.request('monitor restart', { scan: true });
    });
  }

  /** A link or address change on an uplink (carrier lost, ppp gone, DHCP renewal) is acted on at once. */
  private watchLinks(): Process {
    return this.options.runner.spawn(['ip', '-rcvbuf', MONITOR_RCVBUF, 'monitor', 'link', 'address'], {
      onLine: (line) => {
        const iface = interfaceOfLinkEvent(line);
        if (iface && this.config.uplinks.some((u) => u.interface === iface)) void this.reconciler.request(`link event on ${iface}`);
      },
      onErrorLine: (line) => {
        if (isMonitorOverrun(line)) this.eventsLost('link');
      },
    });
  }

  /**
   * The kernel dropped monitor events: a full scan (which also re-reads links)
   * repairs whatever they would have said. It waits until the burst has been
   * quiet for SETTLE_SCAN_MS (a table read mid-burst would miss what is still
   * being inserted, and be read again), but never longer than
   * SETTLE_SCAN_MAX_MS after the first loss, so a storm cannot starve it.
   */
  private eventsLost(monitor: string): void {
    const now = Date.now();
    if (!this.settleScan) {
      this.lostSince = now;
      this.options.log.warn('monitor events lost (netlink buffer overrun); rescanning once the burst settles', { monitor });
    } else {
      clearTimeout(this.settleScan);
    }
    const delay = Math.max(0, Math.min(SETTLE_SCAN_MS, this.lostSince + SETTLE_SCAN_MAX_MS - now));
    this.settleScan = setTimeout(() => {
      this.settleScan = null;
      void this.reconciler.request('events lost', { scan: true });
    }, delay);
    this.settleScan.unref();
  }

  private onTransition(transition: Transition): void {
    const iface = this.config.uplinks.find((u) => u.name === transition.uplink)?.interface ?? '';
    this.notifier.notify(transition, iface);
    void this.reconciler.request(`health: ${transition.uplink} ${transition.to}`);
  }

  /** Hands the uplinks, with their public addresses, to the DNS publisher (which acts only on a change). */
  private publish(): void {
    const uplinks = this.reconciler.uplinks;
    // A first lookup under way would make the record set look one short for a moment: wait for it.
    if (this.publicAddresses.pending(uplinks)) return;
    this.ddns.observe(uplinks.map((u) => ({ name: u.name, index: u.index, up: u.state === 'up', publicAddress: this.publicAddresses.address(u) })));
  }

  private schedule(expression: string): void {
    this.cron?.stop();
    if (this.stopping) return;
    this.cron = CronJob.from({ cronTime: expression, onTick: () => void this.reconciler.request('scheduled scan', { scan: true }), start: true });
  }

  /** Opens, moves or closes the metrics endpoint to match the config. */
  private async serveMetrics(config: Config): Promise<void> {
    const wanted = config.metrics ? `${config.metrics.host}:${config.metrics.port}` : null;
    if (this.metrics?.listen === wanted) return;
    await this.metrics?.close();
    this.metrics = null;
    if (!config.metrics) return;
    try {
      this.metrics = await listenMetrics(config.metrics.host, config.metrics.port, () => this.renderMetrics(), this.options.log);
    } catch (error) {
      // A taken port must not stop the gateway: the pools matter more than the graphs.
      this.options.log.error('metrics endpoint could not listen; running without it', { listen: wanted, error: (error as Error).message });
    }
  }

  /** The kernel's byte counters: per pool from our counting rules, per uplink from its interface. */
  private traffic(): Promise<Traffic> {
    return readTraffic(this.options.runner, this.config);
  }

  private async renderMetrics(): Promise<string> {
    const r = this.reconciler;
    const health = this.health.snapshot();
    const pools = poolsView(this.config, r.uplinks, r.clients);
    return renderMetrics({
      uplinks: pools.uplinks.map((u) => ({ name: u.name, interface: u.interface, state: u.state, clients: u.clients.length, health: health.get(u.name) ?? null })),
      clients: r.clients.size,
      traffic: await this.traffic(),
      runs: r.runs,
      failedRuns: r.failedRuns,
      runSeconds: r.runSeconds,
      lastRunSeconds: r.last ? r.last.durationMs / 1000 : null,
      ddns: this.ddns.status(),
    });
  }

  /** The planner's explanation, and what the kernel's own route lookup says for the client's packets. */
  private async explain(ip: string): Promise<unknown> {
    const r = this.reconciler;
    const explanation = explain(this.config, r.uplinks, r.clients, ip);
    const lan = r.clients.get(ip)?.interface || this.config.lan.interfaces[0];
    // A lookup only (nothing is sent): where would a packet from the client to an internet address go?
    const lookup = ['ip', '-o', 'route', 'get', KERNEL_LOOKUP_DESTINATION, 'from', ip, 'iif', lan as string, 'mark', String(explanation.mark ?? 0)];
    const kernel = await this.options.runner.run(lookup, { okExitCodes: [0, 1, 2] });
    return { ...explanation, kernel: { command: lookup.join(' '), answer: (kernel.exitCode === 0 ? kernel.stdout : kernel.stderr).trim().replace(/\s+/g, ' ') } };
  }

  /** Re-reads the config file; a bad file leaves the running config in place and throws ConfigError. */
  async reload(): Promise<RunReport> {
    const next = await loadConfig(this.options.configPath, this.options.overrides);
    const current = this.reconciler.currentConfig;
    if (next.socket !== current.socket || next.state !== current.state) {
      throw new ConfigError([{ field: next.socket !== current.socket ? 'socket' : 'state', problem: 'cannot change while running', fix: 'restart the daemon to use the new path' }], this.options.configPath);
    }
    await this.refuseCollisions(next);
    if (next.scan.schedule !== current.scan.schedule) this.schedule(next.scan.schedule);
    this.options.log.info('reloading config', { config: this.options.configPath });
    this.health.reconfigure(next);
    this.notifier.reconfigure(next.notify);
    this.publicAddresses.reconfigure(next);
    this.ddns.reconfigure(next);
    await this.serveMetrics(next);
    return this.reconciler.reload(next);
  }

  async stop(signal: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.options.log.info('stopping; kernel state stays in place', { signal });
    this.cron?.stop();
    if (this.settleScan) clearTimeout(this.settleScan);
    for (const watch of this.watches) watch.stop();
    this.health.stop();
    this.notifier.stop();
    this.publicAddresses.stop();
    this.ddns.stop();
    this.reconciler.stop();
    await this.control?.close();
    await this.metrics?.close();
    // Only now, outside the signal's own dispatch: removing our handler while
    // SIGTERM is being delivered would leave execa's signal-exit handler alone,
    // and it would re-raise the signal and end the process by it, not with 0.
    for (const [signal, handler] of Object.entries(this.signals)) process.off(signal, handler);
    this.finished(0);
  }

  /**
   * pppd's ip-up/ip-down, answered at once (pppd does not wait, and the hook
   * should return at once). The uplink is found by its ipparam, else by
   * its current interface; a ppp link that comes back under another name is
   * rebound to it.
   */
  private hook(request: PppHook): unknown {
    const config = this.config;
    const uplink =
      (request.ipparam ? config.uplinks.find((u) => u.ipparam === request.ipparam) : undefined) ?? config.uplinks.find((u) => u.interface === request.interface);
    if (!uplink) throw new RequestError(`no uplink has ipparam "${request.ipparam ?? ''}" or interface ${request.interface}`);
    if (request.event === 'ip-down') {
      this.health.force(uplink.name, `ppp ip-down on ${request.interface}`);
      return { uplink: uplink.name, event: request.event };
    }
    if (request.interface !== uplink.interface) {
      const clash = config.uplinks.find((u) => u.interface === request.interface) ?? (config.lan.interfaces.includes(request.interface) ? { name: 'the LAN' } : undefined);
      if (clash) throw new RequestError(`${request.interface} belongs to ${clash.name}; not rebinding ${uplink.name}`);
      this.options.log.info('ppp uplink came back on another interface', { uplink: uplink.name, from: uplink.interface, to: request.interface });
      void this.reconciler.rebind(uplink.name, request.interface);
    }
    this.health.force(uplink.name, null);
    void this.reconciler.request(`ppp ip-up on ${request.interface}`);
    return { uplink: uplink.name, event: request.event, interface: request.interface };
  }

  private async handle(request: ControlRequest): Promise<unknown> {
    const r = this.reconciler;
    switch (request.cmd) {
      case 'ping':
        return { pid: process.pid, version: this.options.version };
      case 'pools':
        return poolsView(this.config, r.uplinks, r.clients);
      case 'status':
        return this.status();
      case 'traffic':
        return this.traffic();
      case 'explain':
        return this.explain(request.ip);
      case 'scan':
        return r.request('operator scan', { scan: true });
      case 'reload':
        return this.reload();
      case 'hook':
        return this.hook(request);
      case 'assign': {
        const { ip } = request;
        checkAssignment(this.config, ip, request.uplink);
        const report = await r.request(`assign ${ip}`, {
          edit: (clients, now) => {
            const existing = clients.get(ip);
            clients.set(ip, { mac: '', interface: '', firstSeen: now, lastSeen: now, ...existing, uplink: request.uplink, pinned: true });
          },
        });
        return { ip, uplink: request.uplink, pinned: true, run: applied(report) };
      }
      case 'release': {
        if (!r.clients.has(request.ip)) throw new RequestError(`${request.ip} is not assigned to any pool`);
        const from = r.clients.get(request.ip)?.uplink;
        const report = await r.request(`release ${request.ip}`, { edit: (clients) => void clients.delete(request.ip) });
        return { ip: request.ip, released: from, run: applied(report) };
      }
    }
  }

  private status(): unknown {
    const r = this.reconciler;
    const pools = poolsView(this.config, r.uplinks, r.clients);
    const health = this.health.snapshot();
    return {
      running: true,
      pid: process.pid,
      version: this.options.version,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      config: this.options.configPath,
      clients: r.clients.size,
      // The reason is the health machine's current one: being held down changes it without a run.
      uplinks: pools.uplinks.map(({ clients, pinned, ...u }) => {
        const probes = health.get(u.name);
        const view = r.uplinks.find((v) => v.name === u.name);
        return { ...u, reason: probes?.reason ?? u.reason, clients: clients.length, pinned: pinned.length, health: probes ?? null, publicAddress: view ? this.publicAddresses.snapshot(view) : null };
      }),
      ddns: this.ddns.status(),
      staticRoutes: this.config.staticRoutes,
      lastRun: r.last,
      runs: r.runs,
      conflicts: r.conflicts,
      store: this.recovered,
    };
  }
}


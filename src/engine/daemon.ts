// `dispatcher start`: wires config, store, reconciler, neighbour watcher,
// scan schedule, control socket and signals. In the foreground, systemd
// style. SIGTERM/SIGINT stop it and leave the kernel programmed, so clients
// stay online across a restart; SIGHUP reloads the config, keeping the old
// one (and saying why) when the new one is invalid.

import { CronJob } from 'cron';
import { loadConfig, type Overrides } from '../config/load.js';
import { checkAssignment, type ControlRequest } from '../core/requests.js';
import { poolsView } from '../core/views.js';
import type { Config } from '../model/config.js';
import { ConfigError, RequestError } from '../model/errors.js';
import type { Process, Runner } from '../system/exec.js';
import { watchNeighbours } from '../system/neighbours.js';
import { loadSkeleton } from '../system/skeleton.js';
import { assignmentsOf, Store } from '../system/store.js';
import { AlreadyRunning, listenControl, socketIsLive, type ControlServer } from './control.js';
import type { Logger } from './logger.js';
import { Reconciler, type RunReport } from './reconciler.js';

export interface DaemonOptions {
  readonly configPath: string;
  readonly overrides: Overrides;
  readonly runner: Runner;
  readonly log: Logger;
  readonly version: string;
}

const WATCH_RESTART_MS = 1000;

/** An operator's change is kept either way; a failed run is their error to see (the daemon retries it). */
function applied(report: RunReport): RunReport {
  if (!report.ok) throw new Error(`kept, but loading it into the kernel failed (the daemon retries): ${report.error}`);
  return report;
}

export class Daemon {
  private reconciler!: Reconciler;
  private control: ControlServer | null = null;
  private cron: CronJob | null = null;
  private watch: Process | null = null;
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
    return this.reconciler.currentConfig;
  }

  /** Starts everything; resolves once the first reconcile has run. Throws ConfigError/AlreadyRunning before touching anything. */
  async start(): Promise<RunReport> {
    const { log, runner } = this.options;
    const config = await loadConfig(this.options.configPath, this.options.overrides);
    if (await socketIsLive(config.socket)) throw new AlreadyRunning(config.socket);
    const store = await Store.open(config.state);
    const skeleton = await loadSkeleton();
    this.reconciler = new Reconciler({ runner, store, skeleton, log }, config, assignmentsOf(store.data));
    this.control = await listenControl(config.socket, (request) => this.handle(request), log);
    for (const [signal, handler] of Object.entries(this.signals)) process.on(signal, handler);
    log.info('starting', { version: this.options.version, config: this.options.configPath, uplinks: config.uplinks.map((u) => u.name), clients: Object.keys(store.data.clients).length });
    // Watch before the first scan, so no neighbour that appears in between is missed;
    // its events simply queue behind the first run.
    this.watchNeighbours();
    const first = await this.reconciler.request('start', { scan: true });
    if (!this.stopping) this.schedule(config.scan.schedule);
    log.info('running', { firstRun: { ok: first.ok, durationMs: first.durationMs, applied: first.applied, added: first.added } });
    return first;
  }

  private watchNeighbours(): void {
    if (this.stopping) return;
    this.watch = watchNeighbours(this.options.runner, (neighbour) => {
      void this.reconciler.request('neighbour', { neighbours: [neighbour] });
    });
    void this.watch.ended.then(() => {
      if (this.stopping) return;
      this.options.log.warn('neighbour monitor ended; restarting it', { afterMs: WATCH_RESTART_MS });
      setTimeout(() => this.watchNeighbours(), WATCH_RESTART_MS).unref();
      void this.reconciler.request('neighbour monitor restart', { scan: true });
    });
  }

  private schedule(expression: string): void {
    this.cron?.stop();
    if (this.stopping) return;
    this.cron = CronJob.from({ cronTime: expression, onTick: () => void this.reconciler.request('scheduled scan', { scan: true }), start: true });
  }

  /** Re-reads the config file; a bad file leaves the running config in place and throws ConfigError. */
  async reload(): Promise<RunReport> {
    const next = await loadConfig(this.options.configPath, this.options.overrides);
    const current = this.config;
    if (next.socket !== current.socket || next.state !== current.state) {
      throw new ConfigError([{ field: next.socket !== current.socket ? 'socket' : 'state', problem: 'cannot change while running', fix: 'restart the daemon to use the new path' }], this.options.configPath);
    }
    if (next.scan.schedule !== current.scan.schedule) this.schedule(next.scan.schedule);
    this.options.log.info('reloading config', { config: this.options.configPath });
    return this.reconciler.reload(next);
  }

  async stop(signal: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.options.log.info('stopping; kernel state stays in place', { signal });
    this.cron?.stop();
    this.watch?.stop();
    this.reconciler.stop();
    for (const [signal, handler] of Object.entries(this.signals)) process.off(signal, handler);
    await this.control?.close();
    this.finished(0);
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
      case 'scan':
        return r.request('operator scan', { scan: true });
      case 'reload':
        return this.reload();
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
    return {
      running: true,
      pid: process.pid,
      version: this.options.version,
      startedAt: this.startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - this.startedAt.getTime()) / 1000),
      config: this.options.configPath,
      clients: r.clients.size,
      uplinks: pools.uplinks.map(({ clients, pinned, ...u }) => ({ ...u, clients: clients.length, pinned: pinned.length })),
      lastRun: r.last,
      conflicts: r.conflicts,
    };
  }
}

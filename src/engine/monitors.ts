// The kernel's event streams, kept running: neighbour events (a new client
// about 5 ms after its first packet) and link/address events (carrier lost,
// ppp gone, DHCP renewal). A monitor that ends is restarted after a pause,
// with a rescan for what it missed meanwhile; events the kernel dropped
// (netlink overrun) are repaired by one rescan once the burst settles.

import { isNeighbourNews } from '../core/clients.js';
import type { Config } from '../model/config.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import type { Process, Runner } from '../system/exec.js';
import { watchLinks } from '../system/link-events.js';
import type { Logger } from '../system/logger.js';
import { watchNeighbours } from '../system/neighbours.js';
import { NEIGHBOUR_REASON, NEIGHBOURS_LOST_REASON, type Reconciler } from './reconciler.js';

const WATCH_RESTART_MS = 1000;
const NEIGHBOUR_MONITOR = 'ip monitor neigh';
/**
 * After lost events, the rescan waits for this much quiet: a dump taken while
 * the kernel is still inserting can miss entries (the neighbour hash is
 * resized under it), and their events were among the lost ones.
 */
const SETTLE_SCAN_MS = 250;
/** Measured: 50,000 permanent entries by one `ip -batch` take 2.7–3 s to insert here. */
const SETTLE_SCAN_MAX_MS = 5000;
/** After the settle scan, one more this much later (measured: 65 of 50,000 entries missed by the first on a busy machine). */
const CONFIRM_SCAN_MS = 2000;

export interface MonitorDeps {
  readonly runner: Runner;
  readonly log: Logger;
  readonly clock: Clock;
  readonly reconciler: Reconciler;
}

export class Monitors {
  private readonly watches: Process[] = [];
  private settleScan: TimerHandle | null = null;
  private confirmScan: TimerHandle | null = null;
  private lostSince = 0;
  /** The monitors that lost events since the last rescan: only the neighbour table's alone lets it trust the rules. */
  private lost = new Set<string>();
  private stopped = false;
  /** When each running monitor's process started, by command. */
  private readonly startedAt = new Map<string, number>();
  /** When the kernel last dropped events of any monitor. */
  private lastLoss = Number.NEGATIVE_INFINITY;

  constructor(private readonly deps: MonitorDeps) {}

  private get config(): Config {
    return this.deps.reconciler.effectiveConfig;
  }

  /** Starts both monitors; their events queue behind the first run (the reconciler is held until then). */
  start(): void {
    const { runner, reconciler } = this.deps;
    this.keep(NEIGHBOUR_MONITOR, () =>
      watchNeighbours(
        runner,
        (neighbour) => {
          this.stillBusy();
          if (isNeighbourNews(this.config, reconciler.clients, neighbour)) void reconciler.request(NEIGHBOUR_REASON, { neighbours: [neighbour] });
        },
        () => this.eventsLost('neigh'),
      ),
    );
    this.keep('ip monitor link address', () =>
      watchLinks(
        runner,
        (iface) => {
          // The LAN's addresses matter too in IPv6 prefix mode (the gateway's own in each announced prefix are ours), and in
          // nat mode with ddns (the gateway's published address per line is made of its LAN address).
          const { mode } = this.config.lan.ipv6;
          const lan = (mode === 'prefix' || (mode === 'nat' && this.config.ddns !== undefined)) && this.config.lan.interfaces.includes(iface);
          if (lan || this.config.uplinks.some((u) => u.interface === iface)) void reconciler.request(`link event on ${iface}`);
        },
        () => this.eventsLost('link'),
      ),
    );
  }

  stop(): void {
    this.stopped = true;
    this.deps.clock.clear(this.settleScan);
    this.deps.clock.clear(this.confirmScan);
    for (const watch of this.watches) watch.stop();
  }

  /**
   * Since when every change to the neighbour table has reached us as an
   * event: the time its monitor started or events were last lost, whichever
   * is later, while it runs and no rescan for lost events is pending; null
   * otherwise. A table read at or after this time plus the events since is
   * the table now (engine/reconciler.ts NEIGHBOUR_RESYNC_MS).
   */
  get neighboursWatchedSince(): number | null {
    const started = this.watchedSince(NEIGHBOUR_MONITOR);
    if (started === null || this.settleScan !== null || this.confirmScan !== null) return null;
    return Math.max(started, this.lastLoss);
  }

  /** When the monitor `command` (as given to keep) last started, while it runs; null while it does not. */
  watchedSince(command: string): number | null {
    return this.startedAt.get(command) ?? null;
  }

  /** Keeps a monitor process running; restarts it (and rescans) when it ends. Stopped with the others. */
  keep(command: string, start: () => Process): void {
    if (this.stopped) return;
    const process = start();
    this.watches.push(process);
    this.startedAt.set(command, this.deps.clock.now());
    void process.ended.then(() => {
      this.watches.splice(this.watches.indexOf(process), 1);
      this.startedAt.delete(command);
      if (this.stopped) return;
      this.deps.log.warn('monitor ended; restarting it', { command, afterMs: WATCH_RESTART_MS });
      this.deps.clock.after(WATCH_RESTART_MS, () => this.keep(command, start));
      void this.deps.reconciler.request('monitor restart', { scan: true });
    });
  }

  /**
   * The kernel dropped monitor events: a full scan (which also re-reads links)
   * repairs whatever they would have said. It waits until the burst has been
   * quiet for SETTLE_SCAN_MS — no loss and no neighbour event (a table read
   * mid-burst would miss what is still being inserted, and be read again) —
   * but never longer than SETTLE_SCAN_MAX_MS after the first loss, so a
   * storm cannot starve it.
   */
  private eventsLost(monitor: string): void {
    // A new loss makes the pending confirmation moot: the next settle scan brings its own.
    this.deps.clock.clear(this.confirmScan);
    this.confirmScan = null;
    this.lastLoss = this.deps.clock.now();
    if (this.settleScan === null) {
      this.lostSince = this.deps.clock.now();
      this.lost.clear();
      this.deps.log.warn('monitor events lost (netlink buffer overrun); rescanning once the burst settles', { monitor });
    }
    this.lost.add(monitor);
    this.settleLater();
  }

  /** A neighbour event: a settle scan waiting for quiet waits on, until SETTLE_SCAN_MAX_MS after the first loss. */
  private stillBusy(): void {
    if (this.settleScan !== null && this.deps.clock.now() < this.lostSince + SETTLE_SCAN_MAX_MS) this.settleLater();
  }

  private settleLater(): void {
    const { clock } = this.deps;
    const now = clock.now();
    clock.clear(this.settleScan);
    const delay = Math.max(0, Math.min(SETTLE_SCAN_MS, this.lostSince + SETTLE_SCAN_MAX_MS - now));
    this.settleScan = clock.after(delay, () => {
      this.settleScan = null;
      // Lost link events may hide an address or a carrier change: then the whole kernel is read.
      const reason = this.lost.size === 1 && this.lost.has('neigh') ? NEIGHBOURS_LOST_REASON : 'events lost';
      void this.deps.reconciler.request(reason, { scan: true });
      // The dump can still miss entries the kernel was inserting while it read (a burst that outlasted
      // SETTLE_SCAN_MAX_MS, the hash resized under it); one more scan once it has surely ended.
      this.confirmScan = clock.after(CONFIRM_SCAN_MS, () => {
        this.confirmScan = null;
        void this.deps.reconciler.request(reason, { scan: true });
      });
    });
  }
}

// The passive signal: on each of the health monitor's ticks (every
// HEALTH_TICK_MS while it is `attentive` — a line carries clients' traffic,
// sent unanswered, or is being asked — every HEALTH_IDLE_TICK_MS otherwise;
// no timer of its own, so the idle daemon wakes no more often) it reads all
// interfaces' packet counters at once (src/system/link-counters.ts), feeds
// one stall watch (core/stall.ts) per line that is up, and hands a stall to
// the health monitor, which confirms it with a burst of probes. A line is not
// watched while its burst is out, nor while it is down (its probes judge it
// then).

import { StallWatch } from '../core/stall.js';
import type { Clock } from '../system/clock.js';
import type { ReadLinkCounters } from '../system/link-counters.js';

/** A line to watch: its uplink and the interface whose counters speak for it. */
export interface WatchedLine {
  readonly name: string;
  readonly interface: string;
}

export interface PassiveWatchDeps {
  readonly clock: Clock;
  readonly read: ReadLinkCounters;
  /** The lines that are up now. */
  readonly lines: () => readonly WatchedLine[];
  /** How many packets a second the probes send out of an interface (what it sends beyond that is clients' traffic). */
  readonly probePackets: (iface: string) => number;
  /** A stall seen on `uplink`; the watch waits for the promise before watching that line again. */
  readonly onStall: (uplink: string, evidence: string) => Promise<void>;
}

export class PassiveWatch {
  private readonly watches = new Map<string, { readonly iface: string; readonly watch: StallWatch }>();
  private readonly asking = new Set<string>();
  private stallMs = 0;

  constructor(private readonly deps: PassiveWatchDeps) {}

  /** Starts, changes or stops (0) watching. */
  configure(stallMs: number): void {
    if (stallMs === this.stallMs) return;
    this.stallMs = stallMs;
    this.watches.clear();
  }

  /**
   * A watched line carries clients' traffic, has sent and heard nothing
   * since, or its burst is out: the health monitor samples fast meanwhile.
   */
  get attentive(): boolean {
    if (this.asking.size > 0) return true;
    for (const { watch } of this.watches.values()) if (watch.unanswered || watch.carriesTraffic) return true;
    return false;
  }

  /** One sample of every watched line's counters (on the health monitor's tick). */
  tick(): void {
    if (this.stallMs === 0) return;
    const lines = this.deps.lines();
    for (const name of this.watches.keys()) if (!lines.some((l) => l.name === name)) this.watches.delete(name);
    if (lines.length === 0) return;
    let counters: ReturnType<ReadLinkCounters>;
    try {
      counters = this.deps.read();
    } catch {
      // No /proc/net/dev (not Linux, or a sandbox without it): the probes alone judge.
      return;
    }
    const now = this.deps.clock.now();
    for (const line of lines) {
      if (this.asking.has(line.name)) continue;
      const counted = counters.get(line.interface);
      let entry = this.watches.get(line.name);
      if (!counted) {
        this.watches.delete(line.name);
        continue;
      }
      if (!entry || entry.iface !== line.interface) {
        entry = { iface: line.interface, watch: new StallWatch(this.stallMs) };
        this.watches.set(line.name, entry);
      }
      const evidence = entry.watch.sample(now, counted.rxPackets, counted.txPackets, this.deps.probePackets(line.interface));
      if (evidence === null) continue;
      this.asking.add(line.name);
      const { watch } = entry;
      void this.deps.onStall(line.name, evidence).finally(() => {
        this.asking.delete(line.name);
        watch.restart();
      });
    }
  }

  stop(): void {
    this.configure(0);
  }
}

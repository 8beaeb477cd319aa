// The health monitor: one running probe per (uplink, target), each sent
// through that uplink (its interface and connection mark), whatever the main
// table or the pools say. The probes' outcomes feed the pure state machines
// (src/core/health.ts); one timer advances them all. Which method asks a
// target (src/probes/: icmp, tcp, http, dns) is the registry's business: the monitor
// starts, forgets, restarts and stops probes, and hears answered/lost. Every
// probe runs in parallel, so timeouts never add up across targets or uplinks.
// The passive signal (passive.ts) reports lines that send and hear nothing;
// the monitor confirms each with a burst to every target and tells the
// machine which answered.

import { BURST, HEALTH_IDLE_TICK_MS, HEALTH_TICK_MS, UplinkHealth, type Transition } from '../core/health.js';
import type { UplinkHealthSnapshot } from '../schema/control.js';
import { connMark, markLayout } from '../core/marks.js';
import { role } from '../core/uplinks.js';
import type { Config, ProbeConfig, UplinkConfig } from '../model/config.js';
import type { HealthVerdict, UplinkView } from '../model/state.js';
import type { ProbeContext, ProbeRun, RunningProbe } from '../probes/method.js';
import type { ProbeTargetConfig } from '../core/probe-targets.js';
import { methodFor, PROBE_METHODS, probeTarget, type ProbeMethods, type ProbeTarget } from '../probes/registry.js';
import { systemClock, type Clock, type TimerHandle } from '../system/clock.js';
import type { Runner } from '../system/exec.js';
import { systemProbeSockets, type ProbeSockets } from '../system/probe-sockets.js';
import { readLinkCounters, type ReadLinkCounters } from '../system/link-counters.js';
import type { Logger } from '../system/logger.js';
import { PassiveWatch, type WatchedLine } from './passive.js';
import { Histogram, type HistogramSnapshot, RTT_BUCKETS } from '../core/histogram.js';

/** What the reconciler needs from health: verdicts for this run's link-level view. */
export interface HealthView {
  observe(uplinks: readonly UplinkView[], now: number): ReadonlyMap<string, HealthVerdict>;
  /** Verdicts on the IPv6 of the lines probed over IPv6 (uplinks[].ipv6.probe), by their IPv6 views; absent: IPv6 follows IPv4. */
  observe6?(uplinks6: readonly UplinkView[], now: number): ReadonlyMap<string, HealthVerdict>;
}

/** A probe that should run: its uplink, what it asks and how, and the key that says when it must restart. */
interface WantedProbe {
  readonly uplink: string;
  readonly run: ProbeRun<ProbeTarget>;
  readonly key: string;
}

interface ActiveProbe {
  readonly key: string;
  readonly uplink: string;
  readonly probe: RunningProbe;
  /** live is false once the monitor stopped the probe: whatever it still says is ignored. */
  readonly gate: { live: boolean };
}

const RESTART_MS = 1000;

export interface HealthMonitorDeps {
  readonly runner: Runner;
  readonly log: Logger;
  readonly onTransition: (transition: Transition) => void;
  /** Time and timers (the evaluation tick, restarts, the methods' deadlines); default: the system clock. */
  readonly clock?: Clock;
  /** The probe methods by name; default: src/probes/registry.ts. */
  readonly methods?: ProbeMethods;
  /** The sockets tcp, http and dns probes ask through; default: the system's. */
  readonly sockets?: ProbeSockets;
  /** The interfaces' packet counters (the passive signal); default: /proc/net/dev. */
  readonly readCounters?: ReadLinkCounters;
}

/** Settings with `reliability` capped at `targets` (a line's IPv6 targets may be fewer than its IPv4's), the same object for the same pair. */
const capped = new WeakMap<ProbeConfig, Map<number, ProbeConfig>>();
function settingsFor(settings: ProbeConfig, targets: number): ProbeConfig {
  if (settings.reliability <= Math.max(1, targets)) return settings;
  let byCount = capped.get(settings);
  if (!byCount) capped.set(settings, (byCount = new Map()));
  let made = byCount.get(targets);
  if (!made) byCount.set(targets, (made = { ...settings, reliability: Math.max(1, targets) }));
  return made;
}

/** A machine's key: the uplink's name for the line, with " ipv6" for its IPv6 alone. */
function lineKey(uplink: string, family: 'ipv6' | undefined): string {
  return family ? `${uplink} ipv6` : uplink;
}

export class HealthMonitor implements HealthView {
  private config: Config;
  private readonly clock: Clock;
  private readonly methods: ProbeMethods;
  private readonly machines = new Map<string, UplinkHealth>();
  /** Round trips of answered probes, by line key. */
  private readonly rtts = new Map<string, Histogram>();
  private readonly probes = new Map<string, ActiveProbe>();
  /** Probes that should run, by line/target id: the lines' (observe), and their IPv6's (observe6). */
  private wanted4 = new Map<string, WantedProbe>();
  private wanted6 = new Map<string, WantedProbe>();
  private timer: TimerHandle | null = null;
  /** The pending tick is an idle one (HEALTH_IDLE_TICK_MS): a lost probe brings it forward. */
  private idleTick = false;
  private stopped = false;
  /**
   * Probes started so far. A method numbers its probes from 1 in each process
   * (ping's icmp_seq), while a target's record outlives its probe processes
   * (restarted on a link event or a new interval): each start's numbers are
   * put above every earlier start's, as its probes were all sent later.
   */
  private starts = 0;
  /** The interface of each uplink that is present with an address, from the latest observation. */
  private lines: WatchedLine[] = [];
  /** Packets a second the running probes send, by interface (the passive signal tells clients' traffic by it). */
  private probePackets = new Map<string, number>();
  private readonly passive: PassiveWatch;
  private readonly context: ProbeContext;

  constructor(
    private readonly deps: HealthMonitorDeps,
    config: Config,
  ) {
    this.config = config;
    this.clock = deps.clock ?? systemClock;
    this.methods = deps.methods ?? PROBE_METHODS;
    this.context = { runner: deps.runner, clock: this.clock, sockets: deps.sockets ?? systemProbeSockets };
    this.passive = new PassiveWatch({
      clock: this.clock,
      read: deps.readCounters ?? readLinkCounters,
      lines: () => this.lines.filter((line) => this.machines.get(line.name)?.state === 'up'),
      probePackets: (iface) => this.probePackets.get(iface) ?? 0,
      onStall: (uplink, evidence) => this.confirm(uplink, evidence),
    });
    this.passive.configure(config.passive.stallMs);
    this.scheduleTick(false);
  }

  /**
   * Reads what the probes said since (their lines wait for the tick rather
   * than wake the daemon each), advances the machines and samples the passive
   * signal's counters; the next tick comes after HEALTH_TICK_MS while a line
   * carries clients' traffic or anything may be failing, after
   * HEALTH_IDLE_TICK_MS while every line is up, hears back and carries only
   * its probes.
   */
  private tick(): void {
    for (const active of this.probes.values()) active.probe.collect?.();
    this.evaluate();
    this.passive.tick();
    this.scheduleTick(!this.attentive());
  }

  private scheduleTick(idle: boolean): void {
    if (this.stopped) return;
    this.clock.clear(this.timer);
    this.idleTick = idle;
    this.timer = this.clock.after(idle ? HEALTH_IDLE_TICK_MS : HEALTH_TICK_MS, () => this.tick());
  }

  /** A line not up (or not judged yet), a probe lost since its last answer, or a line that carries clients' traffic or sent and heard nothing since. */
  private attentive(): boolean {
    for (const machine of this.machines.values()) {
      if (machine.state !== 'up') return true;
      for (const target of machine.targets.values()) if (target.silentRun > 0) return true;
    }
    return this.passive.attentive;
  }

  private now(): number {
    return this.clock.now();
  }

  /** A reload: machines whose settings changed start afresh (with their transition count). */
  reconfigure(config: Config): void {
    this.config = config;
    this.passive.configure(config.passive.stallMs);
  }

  private uplinkConfig(name: string): UplinkConfig | undefined {
    return this.config.uplinks.find((u) => u.name === name);
  }

  private machineFor(view: UplinkView, targets: readonly ProbeTarget[], now: number, family: 'ipv6' | undefined): UplinkHealth {
    const key = lineKey(view.name, family);
    const settings = settingsFor((this.uplinkConfig(view.name) as UplinkConfig).probe, targets.length);
    const existing = this.machines.get(key);
    const { degraded, passive } = this.config;
    const same = existing && existing.settings === settings && existing.limits === degraded && existing.passiveConfig === passive && existing.targets.size === targets.length && targets.every((t) => existing.targets.has(t.id));
    if (existing && same) return existing;
    const machine = new UplinkHealth(view.name, settings, this.config.damping, targets, now, { degraded, passive, ...(family ? { family } : {}) });
    if (existing) {
      // New targets or settings: keep the state and count, re-judge with fresh records.
      machine.state = existing.state;
      machine.since = existing.since;
      machine.reason = existing.reason;
      machine.transitions = existing.transitions;
    }
    this.machines.set(key, machine);
    return machine;
  }

  /**
   * One line's machine and probes (its IPv4, or its IPv6 alone): link-level
   * trouble (no link, no carrier, no address, no gateway) is a failure at
   * once, and the probes in flight when it happened say nothing about the
   * line that comes back. Returns whether its probes can run.
   */
  private watch(view: UplinkView, entries: readonly (ProbeTargetConfig | string)[], family: 'ipv6' | undefined, standby: boolean, now: number, wanted: Map<string, WantedProbe>): boolean {
    const settings = this.uplinkConfig(view.name)?.probe;
    if (!settings) return false;
    const key = lineKey(view.name, family);
    const targets = entries.map(probeTarget);
    const machine = this.machineFor(view, targets, now, family);
    const linkUp = view.state === 'up';
    machine.setLink(linkUp, view.reason);
    if (!linkUp) for (const active of this.probes.values()) if (active.uplink === key) active.probe.forget();
    if (!view.present || !view.address) return false;
    const path = { interface: view.interface, mark: connMark(markLayout(this.config.marks.mask), view.index), source: view.address };
    const intervalMs = standby ? settings.standbyIntervalMs : settings.intervalMs;
    machine.probeEvery(intervalMs);
    const timing = { intervalMs, timeoutMs: settings.timeoutMs };
    for (const target of targets) {
      const run = { target, path, timing };
      wanted.set(`${key}/${target.id}`, { uplink: key, run, key: `${target.method} ${methodFor(this.methods, target).key(run)}` });
    }
    return true;
  }

  observe(uplinks: readonly UplinkView[], now: number): ReadonlyMap<string, HealthVerdict> {
    const wanted = new Map<string, WantedProbe>();
    const lines: WatchedLine[] = [];
    const standby = this.standingBy(uplinks);
    for (const view of uplinks) {
      const settings = this.uplinkConfig(view.name)?.probe;
      const entries = settings && settings.targets.length > 0 ? settings.targets : view.gateway ? [view.gateway] : [];
      if (this.watch(view, entries, undefined, standby.has(view.name), now, wanted)) lines.push({ name: view.name, interface: view.interface });
    }
    for (const [key, machine] of this.machines) if (!machine.family && !uplinks.some((u) => u.name === key)) this.machines.delete(key);
    this.wanted4 = wanted;
    this.lines = lines;
    this.syncProbes();
    this.evaluate();
    return this.verdicts();
  }

  /**
   * The lines whose IPv6 has probes of its own (uplinks[].ipv6.probe), by
   * their IPv6 views (core/uplinks6.ts): each gets a machine of its own, whose
   * verdict moves the line's IPv6 alone. The others' IPv6 follows their IPv4.
   */
  observe6(uplinks6: readonly UplinkView[], now: number): ReadonlyMap<string, HealthVerdict> {
    const wanted = new Map<string, WantedProbe>();
    // Probes leave from the line's own global address: a line with none (a provider that routes the prefix over
    // link-local only) cannot be probed over IPv6, and its IPv6 follows the line's verdict, as `status` says.
    const probed = uplinks6.filter((view) => (this.uplinkConfig(view.name)?.ipv6?.targets.length ?? 0) > 0 && (view.address !== undefined || view.state === 'down'));
    const standby = this.standingBy(uplinks6, 'ipv6');
    for (const view of probed) this.watch(view, this.uplinkConfig(view.name)?.ipv6?.targets ?? [], 'ipv6', standby.has(view.name), now, wanted);
    for (const [key, machine] of this.machines) if (machine.family && !probed.some((u) => lineKey(u.name, 'ipv6') === key)) this.machines.delete(key);
    this.wanted6 = wanted;
    this.syncProbes();
    this.evaluate();
    return this.verdicts('ipv6');
  }

  /** Every probe that should run: the lines' and their IPv6's. */
  private get wanted(): ReadonlyMap<string, WantedProbe> {
    return new Map([...this.wanted4, ...this.wanted6]);
  }

  /**
   * The lines that are up by the verdicts so far but stand by: a line of a
   * lower tier carries (core/uplinks.ts). Their probes run at the standby
   * interval; a transition asks for a run, whose observation switches them.
   */
  private standingBy(uplinks: readonly UplinkView[], family?: 'ipv6'): Set<string> {
    // IPv6's roles: a line's IPv6 verdict where it has one, else the line's.
    const stateOf = (name: string): string | undefined => {
      const own = family ? this.machines.get(lineKey(name, family))?.state : undefined;
      return own !== undefined && own !== 'unknown' ? own : this.machines.get(name)?.state;
    };
    const judged = uplinks.map((view) => ({ name: view.name, tier: view.tier, state: view.state === 'up' && stateOf(view.name) === 'up' ? ('up' as const) : ('down' as const) }));
    return new Set(judged.filter((u) => role(u, judged) === 'standby').map((u) => u.name));
  }

  /** The verdicts by uplink name: on the lines, or (`ipv6`) on the IPv6 of the lines probed over IPv6. */
  verdicts(family?: 'ipv6'): Map<string, HealthVerdict> {
    const judged = [...this.machines.values()].filter((m) => m.family === family);
    return new Map(judged.map((m) => [m.name, { state: m.state, reason: m.reason, ...(m.degraded === null ? {} : { degraded: m.degraded }) }]));
  }

  /** ppp ip-down forces an uplink down (both families) until ip-up (null) releases it. */
  force(uplink: string, reason: string | null): void {
    this.machines.get(uplink)?.force(reason);
    this.machines.get(lineKey(uplink, 'ipv6'))?.force(reason);
    this.evaluate();
  }

  /**
   * The passive signal saw `uplink` send and hear nothing: a burst to every
   * target, each waited for its own deadline, decides whether the line was
   * only quiet or is dead.
   */
  private async confirm(uplink: string, evidence: string): Promise<void> {
    const machine = this.machines.get(uplink);
    if (machine?.state !== 'up') return;
    const deadlines = machine.burstPlan();
    const runs = [...this.wanted.values()].filter((w) => w.uplink === uplink).map((w) => w.run);
    const results = await Promise.all(
      runs.map(async (run) => {
        const spec = { count: BURST.count, spacingMs: BURST.spacingMs, deadlineMs: deadlines.get(run.target.id) ?? run.timing.timeoutMs };
        const answered = await methodFor(this.methods, run.target)
          .burst(run, this.context, spec)
          .catch(() => false);
        return answered ? [run.target.id] : [];
      }),
    );
    // Stopped, reconfigured or already down meanwhile: the burst speaks of a machine that is gone.
    if (this.stopped || this.machines.get(uplink) !== machine || machine.state !== 'up') return;
    const outcome = machine.burstAnswered(new Set(results.flat()), evidence);
    this.deps.log[outcome === 'silent' ? 'warn' : 'debug']('passive signal: a stall confirmed by a burst of probes', { uplink, evidence, outcome });
    this.evaluate();
  }

  private stopProbe(id: string, active: ActiveProbe): void {
    active.gate.live = false;
    this.probes.delete(id);
    active.probe.stop();
  }

  private syncProbes(): void {
    const wanted = this.wanted;
    for (const [id, active] of this.probes) if (wanted.get(id)?.key !== active.key) this.stopProbe(id, active);
    for (const [id, spec] of wanted) if (!this.probes.has(id)) this.startProbe(id, spec);
    this.probePackets = new Map();
    for (const { run } of wanted.values()) {
      const { interface: iface } = run.path;
      const rate = (methodFor(this.methods, run.target).packetsPerProbe * 1000) / run.timing.intervalMs;
      this.probePackets.set(iface, (this.probePackets.get(iface) ?? 0) + rate);
    }
  }

  private startProbe(id: string, spec: WantedProbe): void {
    if (this.stopped) return;
    const target = spec.run.target;
    const gate = { live: true };
    // 2^32 numbers per start (13 years of probes at 100 ms) and 2^21 starts stay exact in a double.
    const epoch = ++this.starts * 2 ** 32;
    const probe = methodFor(this.methods, target).start(spec.run, this.context, (event) => {
      const health = this.machines.get(spec.uplink)?.targets.get(target.id);
      if (!gate.live || this.stopped || !health) return;
      if (event.kind === 'answered') {
        health.answered(event.rttMs, epoch + event.seq);
        this.rttOf(spec.uplink).observe(event.rttMs / 1000);
      } else {
        health.lost(event.why, epoch + event.seq);
        // Judged within HEALTH_TICK_MS of a loss, as while something was failing already.
        if (this.idleTick) this.scheduleTick(false);
      }
    });
    const active: ActiveProbe = { key: spec.key, uplink: spec.uplink, probe, gate };
    this.probes.set(id, active);
    void probe.ended.then((code) => {
      if (this.stopped || this.probes.get(id) !== active) return;
      // A probe ends when its interface goes away; the link state already says so. Try again shortly.
      // It stays live: the outcomes of probes it sent before ending still count.
      this.probes.delete(id);
      this.deps.log.debug('probe ended; restarting', { uplink: spec.uplink, target: target.id, method: target.method, code });
      this.clock.after(RESTART_MS, () => {
        const again = this.wanted.get(id);
        if (again && !this.probes.has(id)) this.startProbe(id, again);
      });
    });
  }

  private evaluate(): void {
    const now = this.now();
    for (const machine of this.machines.values()) {
      const transition = machine.evaluate(now);
      if (transition) this.deps.onTransition(transition);
    }
  }

  /**
   * Resolves once every uplink has a verdict, or after `maxMs`. Polls with a
   * plain (ref'd) timer, not the clock's unref'd ones: a caller awaiting the
   * first verdicts must keep the process alive meanwhile.
   */
  async decided(maxMs: number): Promise<void> {
    const deadline = this.now() + maxMs;
    while (this.now() < deadline && [...this.machines.values()].some((m) => m.state === 'unknown')) {
      await new Promise((resolve) => setTimeout(resolve, HEALTH_TICK_MS));
    }
  }

  private rttOf(key: string): Histogram {
    let histogram = this.rtts.get(key);
    if (!histogram) this.rtts.set(key, (histogram = new Histogram(RTT_BUCKETS)));
    return histogram;
  }

  /** Every answered probe's round trip since start, by line (the metrics' histogram): of the lines, or (`ipv6`) of their IPv6 where it is probed. */
  rttHistograms(family?: 'ipv6'): Map<string, HistogramSnapshot> {
    return new Map([...this.machines.values()].filter((m) => m.family === family).map((m) => [m.name, this.rttOf(lineKey(m.name, family)).snapshot()]));
  }

  /** The probes' picture by uplink name: of the lines, or (`ipv6`) of their IPv6 where it is probed. */
  snapshot(family?: 'ipv6'): Map<string, UplinkHealthSnapshot> {
    const now = this.now();
    return new Map([...this.machines.values()].filter((m) => m.family === family).map((m) => [m.name, m.snapshot(now)]));
  }

  stop(): void {
    this.stopped = true;
    this.clock.clear(this.timer);
    this.passive.stop();
    for (const [id, active] of this.probes) this.stopProbe(id, active);
  }
}

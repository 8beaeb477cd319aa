// The health monitor: one long-lived `ping` per (uplink, target), each bound
// to the uplink's interface and carrying the uplink's connection mark, so a
// probe leaves through that uplink whatever the main table or the pools say.
// Their output feeds the pure state machines (src/core/health.ts); one timer
// advances them all. No shell, no loop of short-lived pings, no timeouts that
// add up across targets or uplinks: every probe runs in parallel.

import { UplinkHealth, type Transition, type UplinkHealthSnapshot } from '../core/health.js';
import { connMark, markLayout } from '../core/marks.js';
import type { Config, UplinkConfig } from '../model/config.js';
import type { HealthVerdict, UplinkView } from '../model/state.js';
import { parsePingLine } from '../parse/ping.js';
import type { Process, Runner } from '../system/exec.js';
import type { Logger } from './logger.js';

/** What the reconciler needs from health: verdicts for this run's link-level view. */
export interface HealthView {
  observe(uplinks: readonly UplinkView[], now: number): ReadonlyMap<string, HealthVerdict>;
}

interface Pinger {
  readonly key: string;
  readonly process: Process;
}

const TICK_MS = 25;
const RESTART_MS = 1000;

export interface HealthMonitorDeps {
  readonly runner: Runner;
  readonly log: Logger;
  readonly onTransition: (transition: Transition) => void;
  readonly now?: () => number;
}

export class HealthMonitor implements HealthView {
  private config: Config;
  private readonly machines = new Map<string, UplinkHealth>();
  private readonly pingers = new Map<string, Pinger>();
  /** Pingers that should run, by uplink/target, with the argv they run. */
  private wanted = new Map<string, { uplink: string; target: string; argv: string[] }>();
  private readonly timer: NodeJS.Timeout;
  private stopped = false;

  constructor(
    private readonly deps: HealthMonitorDeps,
    config: Config,
  ) {
    this.config = config;
    this.timer = setInterval(() => this.evaluate(), TICK_MS);
    this.timer.unref();
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** A reload: machines whose settings changed start afresh (with their transition count). */
  reconfigure(config: Config): void {
    this.config = config;
  }

  private uplinkConfig(name: string): UplinkConfig | undefined {
    return this.config.uplinks.find((u) => u.name === name);
  }

  private machineFor(view: UplinkView, targets: readonly string[], now: number): UplinkHealth {
    const settings = (this.uplinkConfig(view.name) as UplinkConfig).probe;
    const existing = this.machines.get(view.name);
    const same = existing && existing.settings === settings && existing.targets.size === targets.length && targets.every((t) => existing.targets.has(t));
    if (existing && same) return existing;
    const machine = new UplinkHealth(view.name, settings, this.config.damping, targets, now);
    if (existing) {
      // New targets or settings: keep the state and count, re-judge with fresh records.
      machine.state = existing.state;
      machine.since = existing.since;
      machine.reason = existing.reason;
      machine.transitions = existing.transitions;
    }
    this.machines.set(view.name, machine);
    return machine;
  }

  observe(uplinks: readonly UplinkView[], now: number): ReadonlyMap<string, HealthVerdict> {
    const layout = markLayout(this.config.marks.mask);
    const wanted = new Map<string, { uplink: string; target: string; argv: string[] }>();
    for (const view of uplinks) {
      const settings = this.uplinkConfig(view.name)?.probe;
      if (!settings) continue;
      const targets = settings.targets.length > 0 ? settings.targets : view.gateway ? [view.gateway] : [];
      const machine = this.machineFor(view, targets, now);
      // Link-level trouble (no link, no carrier, no address, no gateway) is a failure at once.
      machine.setLink(view.state === 'up', view.reason);
      if (!view.present || !view.address) continue;
      for (const target of targets) {
        wanted.set(`${view.name}/${target}`, {
          uplink: view.name,
          target,
          argv: [
            'ping', '-n', '-O',
            '-i', String(settings.intervalMs / 1000),
            '-W', String(Math.max(1, Math.ceil(settings.timeoutMs / 1000))),
            '-I', view.interface,
            '-m', String(connMark(layout, view.index)),
            target,
          ],
        });
      }
    }
    for (const name of this.machines.keys()) if (!uplinks.some((u) => u.name === name)) this.machines.delete(name);
    this.wanted = wanted;
    this.syncPingers();
    this.evaluate();
    return this.verdicts();
  }

  verdicts(): Map<string, HealthVerdict> {
    return new Map([...this.machines].map(([name, m]) => [name, { state: m.state, reason: m.reason }]));
  }

  /** ppp ip-down forces an uplink down until ip-up (null) releases it. */
  force(uplink: string, reason: string | null): void {
    this.machines.get(uplink)?.force(reason);
    this.evaluate();
  }

  private syncPingers(): void {
    for (const [id, pinger] of this.pingers) {
      if (this.wanted.get(id)?.argv.join(' ') !== pinger.key) {
        this.pingers.delete(id);
        pinger.process.stop('SIGKILL');
      }
    }
    for (const [id, spec] of this.wanted) if (!this.pingers.has(id)) this.startPinger(id, spec);
  }

  private startPinger(id: string, spec: { uplink: string; target: string; argv: string[] }): void {
    if (this.stopped) return;
    const key = spec.argv.join(' ');
    const process = this.deps.runner.spawn(spec.argv, {
      onLine: (line) => {
        const event = parsePingLine(line);
        const target = this.machines.get(spec.uplink)?.targets.get(spec.target);
        if (!event || !target || this.pingers.get(id)?.key !== key) return;
        if (event.kind === 'reply') target.reply(event.seq, event.rttMs);
        else if (event.kind === 'pending') target.pending(event.seq, this.now());
        else target.failed(event.seq);
      },
    });
    this.pingers.set(id, { key, process });
    void process.ended.then((code) => {
      if (this.stopped || this.pingers.get(id)?.process !== process) return;
      // ping ends when its interface goes away; the link state already says so. Try again shortly.
      this.pingers.delete(id);
      this.deps.log.debug('probe ended; restarting', { uplink: spec.uplink, target: spec.target, code });
      setTimeout(() => {
        const again = this.wanted.get(id);
        if (again && !this.pingers.has(id)) this.startPinger(id, again);
      }, RESTART_MS).unref();
    });
  }

  private evaluate(): void {
    const now = this.now();
    for (const machine of this.machines.values()) {
      const transition = machine.evaluate(now);
      if (transition) this.deps.onTransition(transition);
    }
  }

  /** Resolves once every uplink has a verdict, or after `maxMs`. */
  async decided(maxMs: number): Promise<void> {
    const deadline = this.now() + maxMs;
    while (this.now() < deadline && [...this.machines.values()].some((m) => m.state === 'unknown')) {
      await new Promise((resolve) => setTimeout(resolve, TICK_MS));
    }
  }

  snapshot(): Map<string, UplinkHealthSnapshot> {
    const now = this.now();
    return new Map([...this.machines].map(([name, m]) => [name, m.snapshot(now)]));
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    for (const pinger of this.pingers.values()) pinger.process.stop('SIGKILL');
    this.pingers.clear();
  }
}

// Uplink health as a pure state machine with an injected clock.
//
// Targets: each probe target keeps its own record. A probe is answered (a
// reply within `timeout`, and within `latency` when set) or lost (no reply by
// its deadline); the probe method (src/probes/) keeps the deadlines and
// reports only those two outcomes, so this record never knows which method
// asked or which probe was which. A target dies after `down` lost probes in a row, or when more
// than `loss`% of the last `window` probes were lost; it revives after `up`
// answered probes in a row. Both thresholds in both directions: hysteresis.
//
// Corroboration: targets are independent witnesses of the line. When two or
// more live targets have each lost half of `down` (rounded up) in a row and too
// few others answer, the silence is the line's, not the targets': they all die
// at once. With the defaults and two targets a silent line is dead after 4 × 100 ms
// + 500 ms = 0.9 s instead of 1.3 s; random loss must hit both targets four times
// in a row at the same moment, (0.19^4)^2 ≈ 2e-6 at 10 % loss each way.
//
// Passive confirmation: when the line has sent and heard nothing for a while
// (core/stall.ts), the monitor sends a burst of probes to every target and
// reports which answered; too few, and those that did not die at once. The
// counters alone never take a line down.
//
// Uplink: up while at least `reliability` targets are alive, its link is up
// and no ppp ip-down holds it; otherwise down. Failing back needs the targets
// revived, at least `hold` spent down, and flap damping satisfied: every fall
// adds 1 to a penalty that halves every `halfLife`; a fall that brings it to
// `suppress` keeps the uplink down until it has decayed below `reuse`.
//
// Degraded: an up uplink whose alive targets together lose more than
// `degraded.loss` of their probes, or answer slower than `degraded.latency` on
// average, over a full window each. It stays up (the planner gives it a
// smaller share, core/uplinks.ts); it is well again once loss and latency have
// stayed below half and four fifths of those limits for DEGRADED_HOLD_MS: two
// thresholds and a time to prove it, so a line at the limit does not flap.

import type { DampingConfig, DegradedConfig, PassiveConfig, ProbeConfig } from '../model/config.js';
import type { HealthState } from '../model/state.js';
import { probeKbps } from './probe-cost.js';
import type { TargetSnapshot, UplinkHealthSnapshot } from '../schema/control.js';

/** One probe target's recent history. */
/** Adds `seq` to a run, keeping its newest `most` (no new array per probe). */
function keepNewest(run: number[], seq: number, most: number): void {
  run.push(seq);
  if (run.length > most) run.shift();
}

export class TargetHealth {
  alive: boolean | null = null;
  /** Why it died, kept from the moment of death (the record restarts then). */
  private deathReason = '';
  /**
   * The runs, in the order the probes were sent (their sequence numbers), not
   * the order their outcomes arrive: a probe lost just before a line came back
   * is declared lost a timeout after it left, when newer probes have already
   * been answered, and must not restart their run (the line's return would
   * wait a timeout longer). The answered probes sent after the newest lost
   * one, and the lost ones sent after the newest answered one.
   */
  private okRun: number[] = [];
  private lossRun: number[] = [];
  private newestOk = Number.NEGATIVE_INFINITY;
  private newestLoss = Number.NEGATIVE_INFINITY;
  private recent: boolean[] = [];
  private rtts: number[] = [];
  private lastRtt: number | null = null;
  /** Why the latest lost probe was lost, as its method said (a refused port, HTTP 500, REFUSED, no answer). */
  private lastLost: string | null = null;

  constructor(
    readonly target: string,
    readonly method: string,
    private readonly settings: ProbeConfig,
  ) {}

  /** Probe `seq` (increasing in the order they are sent) was answered after `rttMs`, by whichever method sent it (src/probes/). */
  answered(rttMs: number, seq: number): void {
    const late = rttMs > this.settings.timeoutMs || (this.settings.latencyMs > 0 && rttMs > this.settings.latencyMs);
    this.lastRtt = rttMs;
    this.rtts.push(rttMs);
    if (this.rtts.length > this.settings.window) this.rtts.shift();
    this.record(!late, seq);
  }

  /** Probe `seq` was lost: no answer by its deadline, or an error came back (`why`, when the method knows). */
  lost(why: string | undefined, seq: number): void {
    this.lastLost = why ?? 'no answer';
    this.record(false, seq);
  }

  /** Lost probes in a row, up to now. */
  get silentRun(): number {
    return this.lossRun.length;
  }

  /**
   * Dead for a reason beyond its own probes (the link went down, the line fell
   * silent with other targets, a burst went unanswered): whatever the target
   * said before is void. It must earn `up` answers in a row to revive;
   * otherwise the verdict from before would declare the line up at once, and
   * the probes lost meanwhile would fail it again a moment later.
   */
  condemn(reason: string): void {
    this.okRun = [];
    this.lossRun = [];
    this.recent = [];
    if (this.alive !== false) this.deathReason = reason;
    this.alive = false;
  }

  private record(ok: boolean, seq: number): void {
    const { down, up, window, lossPercent } = this.settings;
    // Only the newest `down` or `up` of a run matter; older ones are dropped first anyway.
    const longest = Math.max(down, up);
    if (ok) {
      this.newestOk = Math.max(this.newestOk, seq);
      if (seq > this.newestLoss) keepNewest(this.okRun, seq, longest);
      if (this.lossRun.length > 0) this.lossRun = this.lossRun.filter((s) => s > this.newestOk);
    } else {
      this.newestLoss = Math.max(this.newestLoss, seq);
      if (seq > this.newestOk) keepNewest(this.lossRun, seq, longest);
      if (this.okRun.length > 0) this.okRun = this.okRun.filter((s) => s > this.newestLoss);
    }
    const okRun = this.okRun.length;
    const lossRun = this.lossRun.length;
    this.recent.push(ok);
    if (this.recent.length > this.settings.window) this.recent.shift();
    const lossy = this.recent.length >= window && this.lossShare() > lossPercent;
    const next = this.alive === false ? okRun >= up : this.alive === true ? !(lossRun >= down || lossy) : ok ? true : lossRun >= down ? false : null;
    if (next !== this.alive) {
      if (next === false) {
        const evidence = lossRun >= down ? `${lossRun} probes lost in a row` : `${this.lossShare().toFixed(0)}% of the last ${this.recent.length} probes lost`;
        this.deathReason = `${evidence} (last: ${this.lastLost ?? 'too late'})`;
      }
      // A new verdict starts a new record, so an outage does not count against the recovery.
      this.recent = [];
      this.alive = next;
    }
  }

  /**
   * How long a burst to this target is waited for: BURST.rttFactor times the
   * slowest answer in its window (at least BURST.floorMs, at most the timeout),
   * after the burst's last probe has left.
   */
  burstDeadlineMs(): number {
    const slowest = this.rtts.length === 0 ? this.settings.timeoutMs : Math.max(...this.rtts);
    const wait = Math.min(this.settings.timeoutMs, Math.max(BURST.floorMs, Math.ceil(BURST.rttFactor * slowest)));
    return (BURST.count - 1) * BURST.spacingMs + wait;
  }

  /** Loss share and average RTT over a full window of probes; null until the window is full. */
  quality(): { readonly lossPercent: number; readonly avgRttMs: number | null } | null {
    if (this.recent.length < this.settings.window) return null;
    const avg = this.rtts.length === 0 ? null : this.rtts.reduce((a, b) => a + b, 0) / this.rtts.length;
    return { lossPercent: this.lossShare(), avgRttMs: avg };
  }

  private lossShare(): number {
    return this.recent.length === 0 ? 0 : (100 * this.recent.filter((ok) => !ok).length) / this.recent.length;
  }

  /** Why a dead target is dead, in words. */
  describe(): string {
    return `${this.target}: ${this.deathReason}`;
  }

  snapshot(): TargetSnapshot {
    const avg = this.rtts.length === 0 ? null : this.rtts.reduce((a, b) => a + b, 0) / this.rtts.length;
    return {
      target: this.target,
      method: this.method,
      alive: this.alive,
      lastRttMs: this.lastRtt,
      avgRttMs: avg === null ? null : Math.round(avg * 1000) / 1000,
      lossPercent: Math.round(this.lossShare() * 10) / 10,
      probes: this.recent.length,
      lastLost: this.lastLost,
    };
  }
}

/** The states notifications and hooks report: the health state, and `degraded` for a line that is up but poor. */
export type ReportedState = HealthState | 'degraded';

export interface Transition {
  readonly uplink: string;
  /** Present for the verdict on a line's IPv6 alone (uplinks[].ipv6.probe); absent: the line's verdict. */
  readonly family?: 'ipv6';
  readonly from: ReportedState;
  readonly to: ReportedState;
  readonly reason: string;
  readonly at: number;
}

/** A transition's line in words: the uplink, and "(IPv6)" for a verdict on its IPv6 alone. */
export function lineName(transition: Pick<Transition, 'uplink' | 'family'>): string {
  return transition.family ? `${transition.uplink} (IPv6)` : transition.uplink;
}

/** Lost probes in a row that condemn a target when another target is as silent (corroboration). */
export function corroboratedRun(settings: Pick<ProbeConfig, 'down'>): number {
  return Math.ceil(settings.down / 2);
}

/** From a silent failure to the verdict by the probes alone: corroborated when there are two targets or more. */
export function worstCaseDetectionMs(settings: ProbeConfig, targets = 1): number {
  const run = targets >= 2 ? corroboratedRun(settings) : settings.down;
  return run * settings.intervalMs + settings.timeoutMs;
}

/**
 * The passive signal's confirmation: five probes 5 ms apart to every target,
 * waited for three times the target's slowest recent answer (at least 30 ms,
 * at most the timeout). Five, so that random loss alone (19 % of round trips
 * at 10 % each way) leaves a live target unanswered with probability 0.19^5 ≈ 2.5e-4.
 */
export const BURST = { count: 5, spacingMs: 5, floorMs: 30, rttFactor: 3 } as const;

/**
 * How often the health monitor ticks (engine/health.ts) while a line carries
 * clients' traffic or anything may be failing: it advances the machines and
 * the passive signal reads the counters; a stall is seen at most this late.
 */
export const HEALTH_TICK_MS = 25;

/**
 * How often it ticks while every line is up, hears back and carries no more
 * than its probes (core/stall.ts: carriesTraffic): on such a line the first
 * sample that sees a packet go unanswered comes at most this late, and the
 * ticks are fast from then on. A loss the method reports at once (tcp,
 * http, dns) brings the next tick forward; a ping's is read on the tick, and
 * a line is down only after `down` losses (8 × 100 ms by default), so the
 * first one read up to this late delays no verdict. Each tick is a wakeup of
 * the daemon, which costs more than the tick's work on a small virtual
 * machine: measured here with no clients and no scan, the daemon idled at
 * 0.73 % of a core ticking every 100 ms, 0.41 % every 250 ms and 0.25 %
 * every second.
 */
export const HEALTH_IDLE_TICK_MS = 200;

/** What the passive signal saw on one uplink. */
interface PassiveRecord {
  /** Stalls a burst answered (the line was only quiet). */
  answered: number;
  /** Stalls no burst answered (the line was dead). */
  silent: number;
  /** The latest confirmation, in words. */
  last: string | null;
}

export function worstCaseFailbackMs(settings: ProbeConfig): number {
  return settings.up * settings.intervalMs + settings.timeoutMs + settings.holdMs;
}

/** A degraded line is well again only after this long, however good it looks sooner. */
export const DEGRADED_HOLD_MS = 10_000;

/** One uplink's state machine. Inputs: probe events (through its targets), link state, ppp hooks, time. */
export class UplinkHealth {
  state: HealthState = 'unknown';
  since: number;
  reason = 'no verdict yet';
  transitions = 0;
  readonly targets: Map<string, TargetHealth>;
  private link: { ok: boolean; reason: string } = { ok: true, reason: 'link up' };
  private forced: string | null = null;
  private penalty = 0;
  private penaltyAt = 0;
  private suppressed = false;
  /** Held down, the line answered since its last fall: falling again still counts as a flap. */
  private revivedWhileHeld = false;
  /** Why the line is degraded (its loss or latency), null while it is not. */
  degraded: string | null = null;
  /** Since when a degraded line has been below the lower limits without a break; null while it is not. */
  private wellSince: number | null = null;
  private readonly passive: PassiveRecord = { answered: 0, silent: 0, last: null };
  readonly limits: DegradedConfig;
  readonly passiveConfig: PassiveConfig;
  /** How often the probes run now: the settings' interval, or the standby interval while the line stands by. */
  private intervalMs: number;
  /** 'ipv6': this machine judges the line's IPv6 alone; its transitions say so. */
  readonly family: 'ipv6' | undefined;

  constructor(
    readonly name: string,
    readonly settings: ProbeConfig,
    private readonly damping: DampingConfig,
    targets: readonly { readonly id: string; readonly method: string }[],
    now: number,
    options: { readonly degraded?: DegradedConfig; readonly passive?: PassiveConfig; readonly family?: 'ipv6' } = {},
  ) {
    this.family = options.family;
    this.since = now;
    this.targets = new Map(targets.map((t) => [t.id, new TargetHealth(t.id, t.method, settings)]));
    this.limits = options.degraded ?? { lossPercent: 0, latencyMs: 0 };
    this.passiveConfig = options.passive ?? { stallMs: 0 };
    this.intervalMs = settings.intervalMs;
  }

  setLink(ok: boolean, reason: string): void {
    this.link = { ok, reason };
    if (!ok) for (const target of this.targets.values()) target.condemn(reason);
  }

  /** The deadline of a burst to each target (the passive signal's confirmation). */
  burstPlan(): Map<string, number> {
    return new Map([...this.targets].map(([id, target]) => [id, target.burstDeadlineMs()]));
  }

  /**
   * A stall (`evidence`) was confirmed by a burst to every target: `answered`
   * holds those that answered. Enough of them, and the line was only quiet;
   * too few, and every target that did not answer dies at once — the next
   * evaluation takes the line down, naming the evidence.
   */
  burstAnswered(answered: ReadonlySet<string>, evidence: string): 'answered' | 'silent' {
    const asked = this.targets.size;
    if (answered.size >= Math.min(this.settings.reliability, asked)) {
      this.passive.answered += 1;
      this.passive.last = `${evidence}; ${answered.size} of ${asked} targets answered a burst: only quiet`;
      return 'answered';
    }
    const why = `${evidence}; a burst of ${BURST.count} probes went unanswered`;
    for (const [id, target] of this.targets) if (!answered.has(id)) target.condemn(why);
    this.passive.silent += 1;
    this.passive.last = `${why} by ${asked - answered.size} of ${asked} targets`;
    return 'silent';
  }

  /**
   * Two or more live targets silent for the corroborated run while too few
   * others answer: the line fell silent, and those targets die together.
   */
  private corroborate(): void {
    const run = corroboratedRun(this.settings);
    const live = [...this.targets.values()].filter((t) => t.alive === true);
    const silent = live.filter((t) => t.silentRun >= run);
    if (silent.length < 2 || live.length - silent.length >= this.settings.reliability) return;
    for (const target of silent) target.condemn(`${target.silentRun} probes lost in a row while ${silent.length - 1} other target${silent.length > 2 ? 's were' : ' was'} as silent`);
  }

  /** A ppp ip-down: down at once until the next ip-up. */
  force(reason: string | null): void {
    this.forced = reason;
  }

  private decayedPenalty(now: number): number {
    return this.penalty * 2 ** (-(now - this.penaltyAt) / this.damping.halfLifeMs);
  }

  /** Probe-level verdict: alive, dead (with why), or not decided yet. */
  private verdict(): { alive: boolean | null; why: string } {
    if (!this.link.ok) return { alive: false, why: this.link.reason };
    if (this.forced) return { alive: false, why: this.forced };
    const all = [...this.targets.values()];
    const alive = all.filter((t) => t.alive === true).length;
    const undecided = all.filter((t) => t.alive === null).length;
    const needed = this.settings.reliability;
    if (alive >= needed) return { alive: true, why: `${alive} of ${all.length} targets answer` };
    if (alive + undecided >= needed) return { alive: null, why: 'waiting for probe results' };
    const dead = all.filter((t) => t.alive === false).map((t) => t.describe());
    return { alive: false, why: `${alive} of ${all.length} targets answer (need ${needed}); ${dead.join('; ')}` };
  }

  /** Advances the machine; returns the transition when the state (or being degraded) changes. */
  evaluate(now: number): Transition | null {
    const transition = this.evaluateState(now);
    if (transition || this.state !== 'up') return transition;
    return this.evaluateDegraded(now);
  }

  /** The alive targets' loss and latency over a full window each; null while any window is not full. */
  private quality(): { lossPercent: number; avgRttMs: number } | null {
    const alive = [...this.targets.values()].filter((t) => t.alive === true).map((t) => t.quality());
    if (alive.length === 0 || alive.some((q) => q === null)) return null;
    const full = alive as { lossPercent: number; avgRttMs: number | null }[];
    const rtts = full.flatMap((q) => (q.avgRttMs === null ? [] : [q.avgRttMs]));
    return { lossPercent: full.reduce((sum, q) => sum + q.lossPercent, 0) / full.length, avgRttMs: rtts.length === 0 ? 0 : rtts.reduce((a, b) => a + b, 0) / rtts.length };
  }

  /** What is over the limits scaled by `share` (1 to become degraded, less to stay so), in words; null when nothing is. */
  private over(quality: { lossPercent: number; avgRttMs: number }, lossShare: number, latencyShare: number): string | null {
    const { lossPercent, latencyMs } = this.limits;
    const loss = lossPercent > 0 && quality.lossPercent > lossPercent * lossShare ? `${quality.lossPercent.toFixed(1)}% of probes lost (degraded above ${lossPercent}%)` : null;
    const slow = latencyMs > 0 && quality.avgRttMs > latencyMs * latencyShare ? `average RTT ${quality.avgRttMs.toFixed(1)} ms (degraded above ${latencyMs} ms)` : null;
    return loss && slow ? `${loss}, ${slow}` : (loss ?? slow);
  }

  private evaluateDegraded(now: number): Transition | null {
    if (this.limits.lossPercent === 0 && this.limits.latencyMs === 0) return null;
    const quality = this.quality();
    if (!quality) return null;
    const worse = this.over(quality, 1, 1);
    if (this.degraded === null) {
      if (!worse) return null;
      this.degraded = worse;
      this.wellSince = null;
      return { uplink: this.name, ...this.familyField(), from: 'up', to: 'degraded', reason: worse, at: now };
    }
    if (worse) this.degraded = worse;
    if (this.over(quality, 0.5, 0.8)) {
      this.wellSince = null;
      return null;
    }
    this.wellSince ??= now;
    if (now - this.wellSince < DEGRADED_HOLD_MS) return null;
    this.degraded = null;
    const reason = `${quality.lossPercent.toFixed(1)}% of probes lost, average RTT ${quality.avgRttMs.toFixed(1)} ms: well below the degraded limits again`;
    return { uplink: this.name, ...this.familyField(), from: 'degraded', to: 'up', reason, at: now };
  }

  private evaluateState(now: number): Transition | null {
    if (this.state !== 'down') this.corroborate();
    const { alive, why } = this.verdict();
    const from = this.state;
    if (alive === null) return null;
    if (!alive) {
      if (this.state === 'down') {
        // A held-down line that keeps flapping earns penalty as if it had been let back
        // (as in BGP route-flap damping), so a flap storm cannot outlast its suppression.
        if (this.revivedWhileHeld) this.addPenalty(now);
        this.revivedWhileHeld = false;
        this.reason = why;
        return null;
      }
      if (this.state === 'up') this.addPenalty(now);
      return this.move(from, 'down', why, now);
    }
    if (this.state === 'down') {
      const held = this.holdRemaining(now);
      if (held > 0) {
        this.revivedWhileHeld = this.suppressed;
        this.reason = `targets answer again; ${this.suppressed ? 'flapping: held down' : 'hold-down'} for ${Math.ceil(held / 1000)} s more`;
        return null;
      }
      this.suppressed = false;
    }
    if (this.state === 'up') return null;
    return this.move(from, 'up', why, now);
  }

  /** One more fall: the penalty grows (up to twice the suppress level) and may suppress the line. */
  private addPenalty(now: number): void {
    this.penalty = Math.min(this.decayedPenalty(now) + 1, 2 * this.damping.suppress);
    this.penaltyAt = now;
    this.suppressed ||= this.penalty >= this.damping.suppress;
  }

  /** Milliseconds before a revived uplink may fail back (hold-down or flap damping). */
  holdRemaining(now: number): number {
    const hold = this.since + this.settings.holdMs - now;
    const penalty = this.decayedPenalty(now);
    const damped = this.suppressed && penalty >= this.damping.reuse ? this.damping.halfLifeMs * Math.log2(penalty / this.damping.reuse) : 0;
    return Math.max(0, hold, damped);
  }

  private move(from: HealthState, to: HealthState, reason: string, now: number): Transition {
    this.state = to;
    this.since = now;
    this.reason = reason;
    if (from !== 'unknown') this.transitions += 1;
    // A line that dies while degraded is reported as leaving `degraded`; down, it is no longer degraded.
    const reported = from === 'up' && this.degraded !== null ? 'degraded' : from;
    this.degraded = null;
    return { uplink: this.name, ...this.familyField(), from: reported, to, reason, at: now };
  }

  private familyField(): { family?: 'ipv6' } {
    return this.family ? { family: this.family } : {};
  }

  private passiveSnapshot(): UplinkHealthSnapshot['passive'] {
    const { stallMs } = this.passiveConfig;
    if (stallMs === 0) return null;
    // On a line carrying traffic (sampled fast) a stall is seen at most one sample late; then the slowest target's burst
    // decides. A line that carries only its probes may see its first unanswered packet up to an idle tick late instead.
    const burst = Math.max(0, ...[...this.targets.values()].map((t) => t.burstDeadlineMs()));
    return { stallMs, detectionMs: stallMs + HEALTH_TICK_MS + burst, ...this.passive };
  }

  /** The probes now run every `ms` (the standby interval while the line stands by); the worst cases follow. */
  probeEvery(ms: number): void {
    this.intervalMs = ms;
  }

  snapshot(now: number): UplinkHealthSnapshot {
    // Worst cases and cost at the interval the probes run at now.
    const active = { ...this.settings, intervalMs: this.intervalMs };
    return {
      state: this.state,
      since: this.since,
      reason: this.reason,
      transitions: this.transitions,
      penalty: Math.round(this.decayedPenalty(now) * 100) / 100,
      suppressed: this.suppressed,
      degraded: this.degraded,
      targets: [...this.targets.values()].map((t) => t.snapshot()),
      intervalMs: this.intervalMs,
      detectionMs: worstCaseDetectionMs(active, this.targets.size),
      probeKbps: probeKbps(
        [...this.targets.values()].map((t) => t.method),
        this.intervalMs,
      ),
      failbackMs: worstCaseFailbackMs(active),
      passive: this.passiveSnapshot(),
    };
  }
}

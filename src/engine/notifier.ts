// Every uplink state change is told three ways, none of which can hold up
// failover: a structured log line; the configured hook programs, started
// detached with the change in their environment and killed after
// notify.timeout; and e-mail, rate-limited per uplink.

import type { Transition } from '../core/health.js';
import { describeMail, MailThrottle } from '../core/mail-throttle.js';
import type { NotifyConfig } from '../model/config.js';
import { systemClock, type Clock, type TimerHandle } from '../system/clock.js';
import type { Runner } from '../system/exec.js';
import { gatewayName, sendMail } from '../system/mail.js';
import type { Logger } from '../system/logger.js';

/** Hooks running at once beyond this are skipped (and logged), so a stuck hook cannot pile up processes. */
const MAX_RUNNING_HOOKS = 16;

export interface NotifierDeps {
  readonly runner: Runner;
  readonly log: Logger;
  /** Time and timers; default: the system clock (its timers are unref'd and never keep the process alive). */
  readonly clock?: Clock;
}

export class Notifier {
  private readonly clock: Clock;
  private throttle: MailThrottle | null;
  private running = 0;
  private timer: TimerHandle | null = null;

  constructor(
    private readonly deps: NotifierDeps,
    private config: NotifyConfig,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.throttle = config.email ? new MailThrottle(config.email.everyMs) : null;
  }

  reconfigure(config: NotifyConfig): void {
    if (config.email?.everyMs !== this.config.email?.everyMs) this.throttle = config.email ? new MailThrottle(config.email.everyMs) : null;
    this.config = config;
  }

  private now(): number {
    return this.clock.now();
  }

  /**
   * Returns at once; programs and mail run in the background. The first
   * verdict after a start is not a change of state unless the line is dead:
   * it is logged, but no hook runs and no mail goes out for every restart.
   * A mail waits for `routed` (the run that reroutes around the change):
   * sent before, its connection can start on the line that just died and
   * stay pinned to it (its connection mark) until it times out.
   */
  notify(transition: Transition, iface: string, routed: Promise<unknown> = Promise.resolve()): void {
    const fields = { uplink: transition.uplink, ...(transition.family ? { family: transition.family } : {}), interface: iface, from: transition.from, to: transition.to, reason: transition.reason };
    if (transition.from === 'unknown' && transition.to === 'up') {
      this.deps.log.info('uplink verdict', fields);
      return;
    }
    if (transition.to === 'down' || transition.to === 'degraded') this.deps.log.warn('uplink state changed', fields);
    else this.deps.log.info('uplink state changed', fields);
    for (const program of this.config.exec) this.runHook(program, transition, iface);
    if (this.throttle) {
      const now = this.now();
      const items = this.throttle.offer(transition, now);
      if (items.length > 0) void routed.then(() => this.mail(items));
      this.scheduleHeld();
    }
  }

  private runHook(program: string, transition: Transition, iface: string): void {
    if (this.running >= MAX_RUNNING_HOOKS) {
      this.deps.log.warn('notify hook skipped: too many still running', { program, running: this.running });
      return;
    }
    this.running += 1;
    const env = {
      DISPATCHER_UPLINK: transition.uplink,
      // ipv4: the line's verdict (both families unless its IPv6 is probed on its own); ipv6: its IPv6 alone.
      DISPATCHER_FAMILY: transition.family ?? 'ipv4',
      DISPATCHER_INTERFACE: iface,
      DISPATCHER_OLD_STATE: transition.from,
      DISPATCHER_NEW_STATE: transition.to,
      DISPATCHER_REASON: transition.reason,
      DISPATCHER_TIME: new Date(transition.at).toISOString(),
    };
    void this.deps.runner
      .run([program], { env, timeoutMs: this.config.timeoutMs })
      .then(() => this.deps.log.debug('notify hook ran', { program, uplink: transition.uplink }))
      .catch((error: Error) => this.deps.log.warn('notify hook failed', { program, uplink: transition.uplink, error: error.message }))
      .finally(() => (this.running -= 1));
  }

  private mail(items: readonly Transition[]): void {
    const email = this.config.email;
    if (!email) return;
    const { subject, text } = describeMail(items, gatewayName());
    void sendMail(this.deps.runner, email, subject, text)
      .then(() => this.deps.log.info('notification mailed', { to: email.to, subject }))
      .catch((error: Error) => this.deps.log.warn('notification mail failed', { to: email.to, error: error.message }));
  }

  private scheduleHeld(): void {
    const due = this.throttle?.nextDue();
    if (this.timer || due === null || due === undefined) return;
    this.timer = this.clock.after(Math.max(0, due - this.now()), () => {
      this.timer = null;
      for (const batch of this.throttle?.due(this.now()) ?? []) this.mail(batch);
      this.scheduleHeld();
    });
  }

  stop(): void {
    this.clock.clear(this.timer);
  }
}

// Public addresses of the uplinks. An uplink without `public_address` is
// published with its interface address; one behind another NAT has its
// address fetched from its URL *through itself* (run with its group), when it
// comes up, when its interface address changes, and every `every`. A fetch
// that fails or answers garbage is reported and retried with backoff; the
// last validated address stays in use while the interface address is the
// same, and nothing unvalidated is ever used.

import { uplinkGroup } from '../core/contract.js';
import { backoffMs } from '../core/ddns.js';
import { readPublicAddress } from '../core/public-address.js';
import type { Config, UplinkConfig } from '../model/config.js';
import type { UplinkView } from '../model/state.js';
import { systemClock, type Clock, type TimerHandle } from '../system/clock.js';
import type { Runner } from '../system/exec.js';
import { fetchThrough } from '../system/lookups.js';
import type { Logger } from '../system/logger.js';
import type { PublicAddressStatus } from '../schema/control.js';

interface Lookup {
  /** The interface address the fetched address belongs to. */
  local: string | null;
  /** A lookup has finished (found or failed) since `local` was last set. */
  settled: boolean;
  address: string | null;
  checkedAt: number;
  error: string | null;
  failures: number;
  inFlight: boolean;
  nextAt: number;
}

export interface PublicAddressDeps {
  readonly runner: Runner;
  readonly log: Logger;
  /** Called when an uplink's public address becomes known, changes or is lost. */
  readonly onChange: () => void;
  /** Time and timers; default: the system clock (its timers are unref'd and never keep the process alive). */
  readonly clock?: Clock;
}

export class PublicAddresses {
  private readonly clock: Clock;
  private readonly lookups = new Map<string, Lookup>();
  private views: readonly UplinkView[] = [];
  private timer: TimerHandle | null = null;
  private stopped = false;

  constructor(
    private readonly deps: PublicAddressDeps,
    private config: Config,
  ) {
    this.clock = deps.clock ?? systemClock;
  }

  private now(): number {
    return this.clock.now();
  }

  reconfigure(config: Config): void {
    this.config = config;
    for (const name of this.lookups.keys()) if (!config.uplinks.some((u) => u.name === name && u.publicAddress)) this.lookups.delete(name);
  }

  /** After each run: start the fetches that are due. */
  observe(views: readonly UplinkView[]): void {
    this.views = views;
    const now = this.now();
    for (const view of views) {
      const uplink = this.config.uplinks.find((u) => u.name === view.name);
      if (!uplink?.publicAddress) continue;
      const lookup = this.lookups.get(view.name) ?? { local: null, settled: false, address: null, checkedAt: 0, error: null, failures: 0, inFlight: false, nextAt: 0 };
      this.lookups.set(view.name, lookup);
      const local = view.address ?? null;
      if (lookup.local !== local && lookup.address !== null) {
        // A new interface address (a ppp reconnect, a DHCP renewal): the outer NAT may have changed too.
        // Told while the lookup still counts as settled, so the old record is withdrawn now rather than
        // kept (pending() would hold publishing) until the new address is known.
        lookup.address = null;
        this.deps.onChange();
      }
      if (local !== lookup.local) {
        lookup.nextAt = 0;
        lookup.settled = false;
      }
      lookup.local = local;
      if (view.state === 'up' && !lookup.inFlight && now >= lookup.nextAt) void this.fetch(uplink, view.index, lookup);
    }
    this.arm();
  }

  /** The address to publish for an uplink, or null while it is unknown. */
  address(view: UplinkView): string | null {
    const uplink = this.config.uplinks.find((u) => u.name === view.name);
    if (!uplink?.publicAddress) return view.address ?? null;
    return this.lookups.get(view.name)?.address ?? null;
  }

  /**
   * Whether a live uplink's address is still being looked up for the first
   * time (since start or since its interface address changed). Publishing
   * then would withdraw its record for the second the lookup takes.
   */
  pending(views: readonly UplinkView[]): boolean {
    return views.some((view) => view.state === 'up' && this.config.uplinks.some((u) => u.name === view.name && u.publicAddress) && !this.lookups.get(view.name)?.settled);
  }

  snapshot(view: UplinkView): PublicAddressStatus {
    const uplink = this.config.uplinks.find((u) => u.name === view.name);
    if (!uplink?.publicAddress) return { address: view.address ?? null, source: 'interface' };
    const lookup = this.lookups.get(view.name);
    return {
      address: lookup?.address ?? null,
      source: 'url',
      url: uplink.publicAddress.url,
      ...(lookup?.checkedAt ? { checkedAt: new Date(lookup.checkedAt).toISOString() } : {}),
      ...(lookup?.error ? { error: lookup.error, failures: lookup.failures } : {}),
    };
  }

  stop(): void {
    this.stopped = true;
    this.clock.clear(this.timer);
  }

  private async fetch(uplink: UplinkConfig, index: number, lookup: Lookup): Promise<void> {
    const settings = uplink.publicAddress;
    if (!settings) return;
    // The answer belongs to the interface address the uplink had when it was asked.
    const local = lookup.local;
    lookup.inFlight = true;
    const outcome = await fetchThrough(this.deps.runner, uplinkGroup(this.config, index), settings.url, settings.timeoutMs);
    lookup.inFlight = false;
    if (this.stopped) return;
    const current = local === this.currentLocal(uplink.name);
    const answer = outcome.ok ? readPublicAddress(outcome.output, settings.field) : { error: `fetching ${settings.url} failed: ${outcome.error}` };
    lookup.checkedAt = this.now();
    // The first lookup's outcome, found or failed, is news: the publisher waits for it (pending()).
    let news = current && !lookup.settled;
    if (current) lookup.settled = true;
    if ('address' in answer) {
      if (lookup.error) this.deps.log.info('public address found again', { uplink: uplink.name, address: answer.address });
      lookup.failures = 0;
      lookup.error = null;
      lookup.nextAt = lookup.checkedAt + settings.everyMs;
      if (current && answer.address !== lookup.address) {
        this.deps.log.info('public address', { uplink: uplink.name, address: answer.address, url: settings.url });
        lookup.address = answer.address;
        news = true;
      }
    } else {
      lookup.failures += 1;
      lookup.error = answer.error;
      lookup.nextAt = lookup.checkedAt + Math.min(settings.everyMs, backoffMs(lookup.failures));
      this.deps.log.warn('public address lookup failed; the last validated address (if any) stays published', { uplink: uplink.name, error: answer.error, failures: lookup.failures, retryInMs: lookup.nextAt - lookup.checkedAt });
    }
    if (news) this.deps.onChange();
    this.arm();
  }

  private currentLocal(name: string): string | null {
    return this.views.find((v) => v.name === name)?.address ?? null;
  }

  /** One timer for the earliest due fetch; it re-runs observe with the last views. */
  private arm(): void {
    if (this.stopped) return;
    // Only live uplinks are fetched through; a dead one's lookup waits for the run that sees it back.
    const live = new Set(this.views.filter((v) => v.state === 'up').map((v) => v.name));
    const due = [...this.lookups].filter(([name, l]) => live.has(name) && !l.inFlight).map(([, l]) => l.nextAt);
    this.clock.clear(this.timer);
    this.timer = null;
    if (due.length === 0) return;
    this.timer = this.clock.after(Math.max(0, Math.min(...due) - this.now()) + 10, () => this.observe(this.views));
  }
}

// Dynamic DNS: keeps the name's A records equal to the public addresses of the
// live, not-excluded uplinks (and, with IPv6 on, its AAAA records equal to
// their inbound IPv6 addresses). After each run (and when a public address
// changes) the wanted set is computed (core/ddns.ts); when it differs from the
// last one, or every `ddns.every`, the server is asked what it holds, and an
// update is sent only when that differs — so an unchanged state sends nothing,
// whatever a local file says. Queries and updates leave by a live uplink (run
// with its group; after a failure, by the next live one). Failures are reported and retried with backoff, in the
// background: nothing here is awaited by a run, so it never slows failover.

import { uplinkGroup } from '../core/contract.js';
import type { Note } from '../core/timeline.js';
import { backoffMs, inSync, parseDigAnswer, type PublishableUplink, type RecordType, sendingUplink, updateScript, wantedRecords } from '../core/ddns.js';
import type { Config, DdnsConfig } from '../model/config.js';
import { systemClock, type Clock, type TimerHandle } from '../system/clock.js';
import type { Runner } from '../system/exec.js';
import { queryRecords, sendUpdate } from '../system/lookups.js';
import type { Logger } from '../system/logger.js';
import type { DdnsStatus } from '../schema/control.js';

export interface DdnsDeps {
  readonly runner: Runner;
  readonly log: Logger;
  /** Time and timers; default: the system clock (its timers are unref'd and never keep the process alive). */
  readonly clock?: Clock;
  /** Whether the name's AAAA records were ours when the daemon last stopped (the store's word), and where to tell a change of it. */
  readonly ownsAaaa?: boolean;
  readonly onOwnsAaaa?: (owns: boolean) => void;
  /** Where updates, failures and recoveries are told (the daemon's timeline). */
  readonly note?: Note;
}

export class DdnsPublisher {
  private readonly clock: Clock;
  private uplinks: readonly PublishableUplink[] = [];
  private wanted: string[] | null = null;
  private published: string[] | null = null;
  private synced = false;
  private running = false;
  /** Another sync was asked for while one ran. */
  private again = false;
  private timer: TimerHandle | null = null;
  private stopped = false;
  private checkedAt: number | null = null;
  private updatedAt: number | null = null;
  private updates = 0;
  private checks = 0;
  private error: string | null = null;
  private failures = 0;
  private retryAt: number | null = null;
  /**
   * The name's AAAA records are ours: while IPv6 is on, and after it is turned
   * off (by a reload, or before a restart: the store remembers) until one
   * update has withdrawn them (they would point at addresses no longer
   * translated). Otherwise they are left alone.
   */
  private ownsAaaa = false;

  constructor(
    private readonly deps: DdnsDeps,
    private config: Config,
  ) {
    this.clock = deps.clock ?? systemClock;
    this.ownsAaaa = deps.ownsAaaa === true;
    this.claim(config);
  }

  /** The AAAA records become ours once the name is published with IPv6 on (without ddns nothing is claimed). */
  private claim(config: Config): void {
    if (config.ddns !== undefined && config.lan.ipv6.mode !== 'off' && !this.ownsAaaa) this.own(true);
  }

  /** A change of ownership, told to the store. */
  private own(owns: boolean): void {
    this.ownsAaaa = owns;
    this.deps.onOwnsAaaa?.(owns);
  }

  private get ddns(): DdnsConfig | undefined {
    return this.config.ddns;
  }

  private now(): number {
    return this.clock.now();
  }

  reconfigure(config: Config): void {
    const before = JSON.stringify(this.config.ddns ?? null);
    this.claim(config);
    this.config = config;
    if (JSON.stringify(config.ddns ?? null) !== before) {
      // Another server, name, key or TTL: what we knew of the server says nothing now.
      this.synced = false;
      this.published = null;
      this.failures = 0;
      this.error = null;
      this.observe(this.uplinks);
    }
  }

  /** After each run: a changed record set (or one never confirmed) is checked against the server at once. */
  observe(uplinks: readonly PublishableUplink[]): void {
    this.uplinks = uplinks;
    const ddns = this.ddns;
    if (!ddns || this.stopped) return;
    const wanted = wantedRecords(ddns, uplinks);
    const changed = this.wanted === null || wanted.join(' ') !== this.wanted.join(' ');
    this.wanted = wanted;
    if (changed) {
      this.synced = false;
      // A new record set is tried now, not after the backoff of the old one.
      this.sync();
    } else if (!this.synced && this.timer === null && !this.running) {
      this.sync();
    }
  }

  status(): DdnsStatus | null {
    const ddns = this.ddns;
    if (!ddns) return null;
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    return {
      name: ddns.name,
      server: `${ddns.server}:${ddns.port}`,
      wanted: this.wanted ?? [],
      published: this.published,
      inSync: this.synced,
      checkedAt: iso(this.checkedAt),
      updatedAt: iso(this.updatedAt),
      updates: this.updates,
      checks: this.checks,
      error: this.error,
      failures: this.failures,
      retryAt: iso(this.retryAt),
    };
  }

  stop(): void {
    this.stopped = true;
    this.clock.clear(this.timer);
  }

  private sync(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.clock.clear(this.timer);
    this.timer = null;
    this.running = true;
    void this.syncOnce().then((delay) => {
      this.running = false;
      if (this.stopped) return;
      if (this.again) {
        this.again = false;
        this.sync();
        return;
      }
      this.retryAt = this.synced ? null : this.now() + delay;
      this.timer = this.clock.after(delay, () => {
        this.timer = null;
        this.sync();
      });
    });
  }

  /** One check (and update when needed); resolves with the delay until the next one. */
  private async syncOnce(): Promise<number> {
    const ddns = this.ddns;
    if (!ddns) return Number.MAX_SAFE_INTEGER;
    const wanted = this.wanted ?? [];
    const via = sendingUplink(this.uplinks, this.failures);
    if (!via) return this.failed('no live uplink to reach the DNS server by', ddns);
    const gid = uplinkGroup(this.config, via.index);
    const types: RecordType[] = this.ownsAaaa ? ['A', 'AAAA'] : ['A'];
    const queries = await Promise.all(types.map((type) => queryRecords(this.deps.runner, gid, ddns, type)));
    this.checks += 1;
    const failed = queries.find((query) => !query.ok);
    const answer = failed && !failed.ok ? { error: failed.error } : parseDigAnswer(queries.map((query) => (query.ok ? query.output : '')).join('\n'), ddns.name, types.length);
    if ('error' in answer) return this.failed(`asking ${ddns.server} for ${ddns.name} failed: ${answer.error}`, ddns);
    this.checkedAt = this.now();
    // The name holds no AAAA record of ours once a sync that asked for them wanted none (IPv6 turned off).
    const noneOurs = types.includes('AAAA') && !wanted.some((address) => address.includes(':'));
    if (inSync(ddns, wanted, answer.records)) {
      this.published = [...answer.records.addresses];
      return this.succeeded(ddns, noneOurs);
    }
    const update = await sendUpdate(this.deps.runner, gid, ddns, updateScript(ddns, wanted, types));
    if (!update.ok) return this.failed(`updating ${ddns.name} at ${ddns.server} failed: ${update.error}`, ddns);
    this.updates += 1;
    this.updatedAt = this.now();
    this.deps.log.info('dns records updated', { name: ddns.name, from: answer.records.addresses, to: wanted, via: via.name });
    this.deps.note?.('ddns', `${ddns.name} now ${wanted.length > 0 ? wanted.join(', ') : 'has no address of ours'} (was ${answer.records.addresses.join(', ') || 'none'})`);
    this.published = wanted;
    return this.succeeded(ddns, noneOurs);
  }

  /** `noneOurs`: the server now holds no AAAA record of ours; with IPv6 off they are left alone from then on. */
  private succeeded(ddns: DdnsConfig, noneOurs: boolean): number {
    if (this.error) {
      this.deps.log.info('dns server reachable again', { name: ddns.name, afterFailures: this.failures });
      this.deps.note?.('ddns', `${ddns.name}: the DNS server answers again after ${this.failures} failures`);
    }
    if (noneOurs && this.config.lan.ipv6.mode === 'off' && this.ownsAaaa) this.own(false);
    this.synced = true;
    this.error = null;
    this.failures = 0;
    return ddns.everyMs;
  }

  private failed(error: string, ddns: DdnsConfig): number {
    this.synced = false;
    this.failures += 1;
    this.error = error;
    const delay = Math.min(ddns.everyMs, backoffMs(this.failures));
    this.deps.log.warn('dynamic dns update failed; retrying', { name: ddns.name, error, failures: this.failures, retryInMs: delay });
    if (this.failures === 1) this.deps.note?.('ddns', `${ddns.name} out of sync: ${error} (retrying)`);
    return delay;
  }
}

// What the daemon says about itself: `status`, the Prometheus exposition,
// `explain` and the traffic counters, assembled from the running parts on
// request. Read-only: nothing here changes state or asks for a run. The
// shapes are the control protocol's (schema/control.ts).

import { explain, type Towards } from '../core/explain.js';
import { explain6 } from '../core/explain6.js';
import { firewallForClient } from '../core/firewall/findings.js';
import { type HaMetrics, renderMetrics } from '../core/metrics.js';
import { carrying } from '../core/uplinks.js';
import { policiesView, poolsView } from '../core/views.js';
import type { Config } from '../model/config.js';
import { RequestError } from '../model/errors.js';
import type { PoolsReport, ResultOf, Status, Traffic } from '../schema/control.js';
import type { Runner } from '../system/exec.js';
import { readFirewall } from '../system/firewall.js';
import { lookupRoute } from '../system/route-lookup.js';
import type { ProcessWatch } from '../system/process-stats.js';
import type { StoreRecovery } from '../system/store.js';
import { readUplinkCounters } from '../system/traffic.js';
import type { NetfilterBackend } from '../backends/backend.js';
import type { DdnsPublisher } from './ddns.js';
import type { HealthMonitor } from './health.js';
import type { PublicAddresses } from './public-address.js';
import type { Reconciler } from './reconciler.js';
import type { HaSync } from './ha-sync.js';
import type { ConntrackdHealth } from './conntrackd-health.js';
import type { Repairs } from './repairs.js';

/** The running parts status reads from. */
export interface DaemonParts {
  readonly runner: Runner;
  readonly backend: NetfilterBackend;
  readonly reconciler: Reconciler;
  readonly health: HealthMonitor;
  readonly publicAddresses: PublicAddresses;
  readonly ddns: DdnsPublisher;
  readonly repairs: Repairs;
  readonly process: ProcessWatch;
  /** One of a pair: the state channel; null alone. */
  readonly haSync: HaSync | null;
  /** One of a pair: whether its conntrackd answers; null alone. */
  readonly conntrackd: ConntrackdHealth | null;
}

/** Facts about this daemon process, fixed at start. */
export interface DaemonFacts {
  readonly version: string;
  readonly configPath: string;
  readonly startedAt: Date;
  /** How the assignments were read at start: store problems and clients adopted from the kernel. */
  readonly recovered: { readonly store: StoreRecovery | null; readonly adopted: number };
}

export class DaemonStatus {
  constructor(
    private readonly parts: DaemonParts,
    private readonly facts: DaemonFacts,
  ) {}

  private get config(): Config {
    return this.parts.reconciler.effectiveConfig;
  }

  /** `sorted`: false for the callers that only count the lists (status, metrics). */
  pools(sorted = true): PoolsReport {
    const r = this.parts.reconciler;
    return poolsView(this.config, r.uplinks, r.clients, sorted);
  }

  status(): Status {
    const { reconciler: r, health, publicAddresses, ddns } = this.parts;
    const snapshot = health.snapshot();
    const snapshot6 = health.snapshot('ipv6');
    const { version, configPath, startedAt, recovered } = this.facts;
    return {
      running: true,
      pid: process.pid,
      version,
      startedAt: startedAt.toISOString(),
      uptimeSeconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
      config: configPath,
      clients: r.clients.size,
      balance: this.config.balance.mode,
      // The reason is the health machine's current one: being held down changes it without a run.
      uplinks: this.pools(false).uplinks.map(({ clients, clients6: _, pinned, ...u }) => {
        const probes = snapshot.get(u.name);
        const view = r.uplinks.find((v) => v.name === u.name);
        const view6 = r.uplinks6.find((v) => v.name === u.name);
        const announced = r.announced?.prefixes.find((p) => p.uplink === u.name);
        const ipv6 = view6
          ? {
              state: view6.state,
              reason: view6.reason,
              address: view6.address ?? null,
              gateway: view6.gateway ?? null,
              health: snapshot6.get(u.name) ?? null,
              announced: announced ? { prefix: announced.prefix, preferred: announced.preferred } : null,
            }
          : null;
        return { ...u, reason: probes?.reason ?? u.reason, clients: clients.length, pinned: pinned.length, health: probes ?? null, publicAddress: view ? publicAddresses.snapshot(view) : null, ipv6 };
      }),
      ddns: ddns.status(),
      staticRoutes: this.config.staticRoutes,
      policies: policiesView(this.config, r.uplinks),
      lastRun: r.last,
      runs: r.runs,
      repairs: this.parts.repairs.status(),
      conflicts: r.conflicts,
      advertisements: r.advertisementError,
      store: recovered,
      ha: this.haStatus(),
    };
  }

  private haStatus(): Status['ha'] {
    const { haSync, reconciler } = this.parts;
    const ha = this.config.ha;
    if (!ha || !haSync) return null;
    const view = haSync.view();
    const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
    return {
      role: reconciler.role,
      peer: ha.peer,
      sending: view.sending,
      lagMs: view.lagMs,
      problem: view.problem,
      hearing: view.hearing,
      lastReceived: iso(view.lastReceived),
      refused: view.refused ? { from: view.refused.from, why: view.refused.why, at: new Date(view.refused.at).toISOString() } : null,
      conntrackd: this.conntrackdStatus(),
    };
  }

  private conntrackdStatus(): NonNullable<Status['ha']>['conntrackd'] {
    const health = this.parts.conntrackd?.latest();
    if (!health) return null;
    return { ok: health.ok, problem: health.problem, checkedAt: new Date(health.checkedAt).toISOString(), caches: health.stats?.caches ?? null, errors: health.stats?.errors ?? null };
  }

  /** One of a pair, for the metrics: its role, the state channel and conntrackd; null alone. */
  private haMetrics(): HaMetrics | null {
    const { haSync, reconciler, conntrackd } = this.parts;
    if (!this.config.ha || !haSync) return null;
    const view = haSync.view();
    const role = reconciler.role;
    const seconds = (ms: number | null): number | null => (ms === null ? null : ms / 1000);
    const health = conntrackd?.latest() ?? null;
    return {
      role,
      // A master's view is its sender's; any other role's, whether the master's heartbeats reach it.
      channelUp: role === 'master' ? view.sending : view.hearing,
      lagSeconds: seconds(view.lagMs),
      lastReceivedSeconds: seconds(view.lastReceived),
      lastRefusedSeconds: seconds(view.refused?.at ?? null),
      conntrackd: health ? { up: health.ok, caches: health.stats?.caches ?? null, errors: health.stats?.errors ?? null } : null,
    };
  }

  /** The kernel's byte counters: per pool from our counting rules, per uplink from its interface. */
  async traffic(): Promise<Traffic> {
    const { runner, backend } = this.parts;
    const [pools, uplinks] = await Promise.all([backend.counters(runner, this.config), readUplinkCounters(runner, this.config)]);
    return { at: Date.now(), pools, uplinks };
  }

  async metrics(): Promise<string> {
    const { reconciler: r, health, ddns } = this.parts;
    const snapshot = health.snapshot();
    const repairs = this.parts.repairs.status();
    return renderMetrics({
      uplinks: this.pools(false).uplinks.map((u) => ({
        name: u.name,
        interface: u.interface,
        state: u.state,
        role: u.role,
        tier: u.tier,
        clients: u.clients.length,
        buckets: u.buckets,
        health: snapshot.get(u.name) ?? null,
        ipv6: r.uplinks6.find((v) => v.name === u.name)?.state ?? null,
      })),
      clients: r.clients.size,
      policies: policiesView(this.config, r.uplinks).filter((p) => p.pool !== null),
      traffic: await this.traffic(),
      runs: r.runs,
      failedRuns: r.failedRuns,
      runDurations: r.runDurations,
      probeRtts: [...[...health.rttHistograms()].map(([uplink, rtts]) => ({ uplink, family: 'ipv4' as const, rtts })), ...[...health.rttHistograms('ipv6')].map(([uplink, rtts]) => ({ uplink, family: 'ipv6' as const, rtts }))],
      process: await this.parts.process.read(),
      lastRunSeconds: r.last ? r.last.durationMs / 1000 : null,
      repairs: { total: repairs.total, fighting: repairs.fighting !== null },
      ddns: ddns.status(),
      ha: this.haMetrics(),
    });
  }

  /** The planner's explanation, and what the kernel's own route lookup says for the client's packets. */
  async explain(ip: string, asked?: Towards): Promise<ResultOf<'explain'>> {
    if (ip.includes(':')) return this.explain6(ip, asked);
    const r = this.parts.reconciler;
    const explanation = explain(this.config, r.uplinks, r.clients, ip, asked);
    const lan = r.clients.get(ip)?.interface || (this.config.lan.interfaces[0] as string);
    // The uplinks its new connections can leave by: its pool's when that carries, else every line that does.
    const live = carrying(r.uplinks);
    const home = live.find((u) => u.name === explanation.pool);
    const leaving = (home ? [home] : live.length > 0 ? live : r.uplinks).map((u) => u.interface);
    // Towards a destination a policy or a hash takes, the packet carries that pool mark instead.
    const mark = explanation.to?.mark ?? explanation.mark ?? 0;
    const [kernel, firewall] = await Promise.all([lookupRoute(this.parts.runner, ip, lan, mark, asked?.to), readFirewall(this.parts.runner)]);
    return { ...explanation, kernel, firewall: firewallForClient(firewall, ip, lan, leaving) };
  }

  /** One of a host's IPv6 addresses: the planner's explanation on the IPv6 views, and the kernel's IPv6 route lookup. */
  private async explain6(ip: string, asked?: Towards): Promise<ResultOf<'explain'>> {
    if (asked !== undefined) throw new RequestError("--to is for IPv4 clients: an IPv6 address leaves by its host's pool, or by a policy naming its host");
    const r = this.parts.reconciler;
    const explanation = explain6(this.config, r.uplinks6, r.clients, ip);
    const host = [...r.clients.values()].find((record) => record.ipv6?.[ip] !== undefined);
    const kernel = await lookupRoute(this.parts.runner, ip, host?.interface || (this.config.lan.interfaces[0] as string), explanation.mark ?? 0);
    return { ...explanation, kernel, firewall: ["the gateway's own IPv6 firewall is not judged yet (explain judges IPv4's forward path)"] };
  }
}

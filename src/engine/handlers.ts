// The daemon's answer to each control request (schema/control.ts), one
// handler per command, typed by the protocol: a handler cannot answer with
// a shape the CLI does not expect. Operator changes become edits carried by
// the next reconcile run; ppp hooks force a verdict at once.

import { checkAssignment, type PppHook } from '../core/requests.js';
import type { Timeline } from '../core/timeline.js';
import type { Config } from '../model/config.js';
import { RequestError } from '../model/errors.js';
import type { Command, ControlRequest, RequestOf, ResultOf, RunReport } from '../schema/control.js';
import { systemClock } from '../system/clock.js';
import type { Logger } from '../system/logger.js';
import type { HaRoles } from './ha.js';
import type { HealthMonitor } from './health.js';
import { type Load, rebalance } from './rebalance.js';
import type { Reconciler } from './reconciler.js';
import { eventsAfter } from './events.js';
import type { DaemonStatus } from './status.js';

export type Handlers = { readonly [C in Command]: (request: RequestOf<C>) => ResultOf<C> | Promise<ResultOf<C>> };

export interface HandlerDeps {
  readonly version: string;
  readonly log: Logger;
  readonly reconciler: Reconciler;
  readonly health: HealthMonitor;
  readonly status: DaemonStatus;
  /** Re-reads the config file (a bad file throws ConfigError and changes nothing). */
  readonly reload: () => Promise<RunReport>;
  readonly load: Load;
  readonly timeline: Timeline;
  /** One of a pair: the roles keepalived gives it. */
  readonly ha: HaRoles;
}

/** An operator's change is kept either way; a failed run is their error to see (the daemon retries it). */
function applied(report: RunReport): RunReport {
  if (!report.ok) throw new Error(`kept, but loading it into the kernel failed (the daemon retries): ${report.error}`);
  return report;
}

export function controlHandlers(deps: HandlerDeps): Handlers {
  const r = deps.reconciler;
  const config = (): Config => r.effectiveConfig;
  return {
    ping: () => ({ pid: process.pid, version: deps.version }),
    pools: () => deps.status.pools(),
    status: () => deps.status.status(),
    traffic: () => deps.status.traffic(),
    explain: ({ ip, to, protocol, port, dscp }) =>
      deps.status.explain(ip, to === undefined ? undefined : { to, ...(protocol ? { protocol } : {}), ...(port !== undefined ? { port } : {}), ...(dscp !== undefined ? { dscp } : {}) }),
    events: ({ after = 0, waitMs = 0, started }) => eventsAfter(deps.timeline, systemClock, { after, waitMs, ...(started !== undefined ? { started } : {}) }),
    scan: () => r.request('operator scan', { scan: true }),
    reload: () => deps.reload(),
    hook: (request) => hook(deps, config(), request),
    ha: ({ role }) => {
      if (!config().ha) throw new RequestError('this gateway is not one of a pair: its config has no ha section');
      return deps.ha.become(role);
    },
    rebalance: async ({ dryRun = false }) => {
      if (!dryRun) refuseOnFollower(config(), r);
      const result = await rebalance(deps, dryRun);
      if (!dryRun) deps.timeline.note('operator', `rebalance: ${movesInWords(result.moves)}`);
      return result;
    },
    assign: async ({ ip, uplink }) => {
      checkAssignment(config(), ip, uplink);
      refuseOnFollower(config(), r);
      const report = await r.request(`assign ${ip}`, {
        edit: (clients, now) => {
          const existing = clients.get(ip);
          clients.set(ip, { mac: '', interface: '', firstSeen: now, ...existing, uplink, pinned: true });
        },
      });
      deps.timeline.note('operator', `${ip} pinned to ${uplink}`, uplink);
      return { ip, uplink, pinned: true, run: applied(report) };
    },
    release: async ({ ip }) => {
      refuseOnFollower(config(), r);
      const from = r.clients.get(ip)?.uplink;
      if (from === undefined) throw new RequestError(`${ip} is not assigned to any pool`);
      const report = await r.request(`release ${ip}`, { edit: (clients) => void clients.delete(ip) });
      deps.timeline.note('operator', `${ip} released from ${from}: it joins the least-loaded pool when next seen`, from);
      return { ip, released: from, run: applied(report) };
    },
  };
}

/** One of a pair that is not master takes its clients from the master: a change made here would be undone by the master's next message. */
function refuseOnFollower(config: Config, r: Reconciler): void {
  if (config.ha && r.role !== 'master') throw new RequestError(`this gateway is ${r.role} in its pair: assign and release on the master (${config.ha.peer} on the sync link), which sends its clients here`);
}

/** A rebalance's moves for the timeline: the first few, and how many more. */
function movesInWords(moves: ResultOf<'rebalance'>['moves']): string {
  if (moves.length === 0) return 'nothing to move';
  const shown = moves.slice(0, 5).map((m) => `${m.ip} ${m.from} → ${m.to}`);
  return `${shown.join(', ')}${moves.length > shown.length ? ` and ${moves.length - shown.length} more` : ''}`;
}

/** Sends a parsed request to its handler. */
export function dispatch(handlers: Handlers, request: ControlRequest): Promise<unknown> {
  const handler = handlers[request.cmd] as (request: ControlRequest) => unknown;
  return Promise.resolve(handler(request));
}

/**
 * pppd's ip-up/ip-down, answered at once (pppd does not wait, and the hook
 * should return at once). The uplink is found by its ipparam, else by
 * its current interface; a ppp link that comes back under another name is
 * rebound to it.
 */
function hook(deps: HandlerDeps, config: Config, request: PppHook): ResultOf<'hook'> {
  const uplink = (request.ipparam ? config.uplinks.find((u) => u.ipparam === request.ipparam) : undefined) ?? config.uplinks.find((u) => u.interface === request.interface);
  if (!uplink) throw new RequestError(`no uplink has ipparam "${request.ipparam ?? ''}" or interface ${request.interface}`);
  if (request.event === 'ip-down') {
    deps.health.force(uplink.name, `ppp ip-down on ${request.interface}`);
    return { uplink: uplink.name, event: request.event };
  }
  if (request.interface !== uplink.interface) {
    const clash = config.uplinks.find((u) => u.interface === request.interface) ?? (config.lan.interfaces.includes(request.interface) ? { name: 'the LAN' } : undefined);
    if (clash) throw new RequestError(`${request.interface} belongs to ${clash.name}; not rebinding ${uplink.name}`);
    deps.log.info('ppp uplink came back on another interface', { uplink: uplink.name, from: uplink.interface, to: request.interface });
    void deps.reconciler.rebind(uplink.name, request.interface);
  }
  deps.health.force(uplink.name, null);
  void deps.reconciler.request(`ppp ip-up on ${request.interface}`);
  return { uplink: uplink.name, event: request.event, interface: request.interface };
}

// Prepared transitions (pure): after every run, the routes each line's next
// verdict would change, worked out ahead of time — a live line's death, a
// dead line's return. The verdict then moves the pools with one `ip -batch`
// at once (about 20 ms; `ip -6 -batch` too for IPv6) instead of waiting for a full run, which reads the
// whole kernel state first (about 100 ms here, more on a busy box). The full
// run follows and settles everything else (weights of degraded lines,
// anything drifted).

import type { Config } from '../model/config.js';
import type { DesiredRoute } from '../model/plan.js';
import type { UplinkView } from '../model/state.js';
import { routeKey } from './diff.js';
import { planRoutes, planRoutes6, planStaticRoutes } from './plan.js';

export interface PreparedTransition {
  /** The verdict this is prepared for: `down` for a live line, `up` for a dead one. */
  readonly to: 'up' | 'down';
  /** The routes that change (replaced in place); the others stay as loaded. */
  readonly routes: readonly DesiredRoute[];
  /** IPv6's routes that change (lan.ipv6.mode nat: a line's IPv6 follows its verdict); empty while IPv6 is off. */
  readonly routes6: readonly DesiredRoute[];
  /** The IPv6 views after the verdict (empty while IPv6 is off). */
  readonly after6: readonly UplinkView[];
  /** Every uplink as it will be after the verdict, for the roles that change (who stands by, who takes over). */
  readonly after: readonly UplinkView[];
}

/**
 * A dead line can return at once only when nothing but its probes held it
 * down: its link is there with an address and a next hop. A line down for a
 * link reason returns by a link event and a full run.
 */
function canReturn(view: UplinkView): boolean {
  return view.state === 'down' && view.present && view.address !== undefined && (view.gateway !== undefined || view.pointToPoint);
}

/** The routes of `routes` that differ from what is loaded. */
function changed(routes: readonly DesiredRoute[], loaded: readonly DesiredRoute[]): DesiredRoute[] {
  const now = new Map(loaded.map((route) => [`${route.table} ${route.dst}`, routeKey(route)]));
  return routes.filter((route) => now.get(`${route.table} ${route.dst}`) !== routeKey(route));
}

/**
 * For each uplink, what its next verdict changes. `uplinks6` and `loaded6`:
 * the IPv6 views and routes (core/uplinks6.ts), whose lines share their IPv4
 * verdict unless their IPv6 is probed on its own (a line with no IPv6 next hop
 * stays down for IPv6).
 */
export function prepareTransitions(config: Config, uplinks: readonly UplinkView[], loaded: readonly DesiredRoute[], uplinks6: readonly UplinkView[] = [], loaded6: readonly DesiredRoute[] = []): Map<string, PreparedTransition> {
  const prepared = new Map<string, PreparedTransition>();
  for (const flipping of uplinks) {
    const to: PreparedTransition['to'] | null = flipping.state === 'up' ? 'down' : canReturn(flipping) ? 'up' : null;
    if (to === null) continue;
    const after = uplinks.map((u): UplinkView => (u.name === flipping.name ? { ...u, state: to } : u));
    // A line whose IPv6 was judged by its own probes keeps that verdict; the others' IPv6 follows the line.
    const follows = (u: UplinkView): boolean => !u.ownVerdict && (to === 'down' || u.gateway !== undefined || u.pointToPoint);
    const after6 = uplinks6.map((u): UplinkView => (u.name === flipping.name && follows(u) ? { ...u, state: to } : u));
    prepared.set(flipping.name, {
      to,
      after,
      routes: changed([...planRoutes(config, after), ...planStaticRoutes(config, after)], loaded),
      routes6: uplinks6.length === 0 ? [] : changed(planRoutes6(config, after6), loaded6),
      after6,
    });
  }
  return prepared;
}

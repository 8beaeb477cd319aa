// Prepared failover (pure): after every run, the routes each live uplink's
// death would change, worked out ahead of time. A down verdict then moves the
// line's pool with one `ip -batch` at once (about 20 ms) instead of waiting
// for a full run, which reads the whole kernel state first (about 100 ms
// here, more on a busy box). The full run follows and settles everything
// else (its connections, weights of degraded lines, anything drifted).

import type { Config } from '../model/config.js';
import type { DesiredRoute } from '../model/plan.js';
import type { UplinkView } from '../model/state.js';
import { routeKey } from './diff.js';
import { planRoutes, planStaticRoutes } from './plan.js';

/** For each live uplink: the routes that change (replaced in place) when it goes down; the others stay as loaded. */
export function prepareFailovers(config: Config, uplinks: readonly UplinkView[], loaded: readonly DesiredRoute[]): Map<string, DesiredRoute[]> {
  const now = new Map(loaded.map((route) => [`${route.table} ${route.dst}`, routeKey(route)]));
  const prepared = new Map<string, DesiredRoute[]>();
  for (const dying of uplinks.filter((u) => u.state === 'up')) {
    const after = uplinks.map((u) => (u.name === dying.name ? { ...u, state: 'down' as const } : u));
    const routes = [...planRoutes(config, after), ...planStaticRoutes(config, after)];
    prepared.set(
      dying.name,
      routes.filter((route) => now.get(`${route.table} ${route.dst}`) !== routeKey(route)),
    );
  }
  return prepared;
}

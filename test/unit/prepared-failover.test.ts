// Prepared failover (core/failover.ts): the routes each live line's death
// changes, computed after every run so a down verdict moves its pool at once.

import { describe, expect, test } from '@jest/globals';
import { parseConfig } from '../../src/config/load.js';
import { prepareFailovers } from '../../src/core/failover.js';
import { planRoutes, planStaticRoutes } from '../../src/core/plan.js';
import type { UplinkView } from '../../src/model/state.js';
import { uplinkView } from '../helpers/uplink-view.js';

const CONFIG = parseConfig(
  `
lan: { interfaces: [lan0] }
uplinks:
  - { name: isp1, interface: ppp0, weight: 2 }
  - { name: isp2, interface: ppp1 }
  - { name: isp3, interface: wan0 }
static_routes:
  - { destination: 203.0.113.200/32, via: [isp1, isp3] }
`,
  'test.yaml',
);

const view = (name: string, index: number, iface: string, weight: number, state: UplinkView['state'] = 'up'): UplinkView => uplinkView(name, index, iface, { weight, state });

const UPLINKS = [view('isp1', 0, 'ppp0', 2), view('isp2', 1, 'ppp1', 1), view('isp3', 2, 'wan0', 1)];
const loaded = (uplinks: readonly UplinkView[]) => [...planRoutes(CONFIG, uplinks), ...planStaticRoutes(CONFIG, uplinks)];

describe('prepared failover', () => {
  test("each live line's death changes exactly the routes a full plan with it down would: its pool, the multipath, its static routes", () => {
    const prepared = prepareFailovers(CONFIG, UPLINKS, loaded(UPLINKS));
    expect([...prepared.keys()]).toEqual(['isp1', 'isp2', 'isp3']);
    for (const [name, routes] of prepared) {
      const after = UPLINKS.map((u) => (u.name === name ? { ...u, state: 'down' as const } : u));
      const full = loaded(after);
      // Loading the prepared routes over the loaded ones gives the full plan.
      const merged = new Map(loaded(UPLINKS).map((r) => [`${r.table} ${r.dst}`, r]));
      for (const route of routes) merged.set(`${route.table} ${route.dst}`, route);
      expect([...merged.values()]).toEqual(full);
    }
    const isp1 = prepared.get('isp1') ?? [];
    // isp1's pool over the survivors, the multipath without it, the static route by isp3; isp1's own table stays.
    expect(isp1.map((r) => `${r.table} ${r.dst} ${r.nexthops.map((h) => h.dev).join('+')}`).sort()).toEqual(['3100 default ppp1+wan0', '3133 default ppp1+wan0', '3199 203.0.113.200/32 wan0'].sort());
  });

  test("a line already down has nothing prepared; the last live line's fall puts the routes back as in normal operation (every line carries); a single line's fall changes nothing", () => {
    const oneLeft = [view('isp1', 0, 'ppp0', 2, 'down'), view('isp2', 1, 'ppp1', 1, 'down'), view('isp3', 2, 'wan0', 1)];
    const prepared = prepareFailovers(CONFIG, oneLeft, loaded(oneLeft));
    expect([...prepared.keys()]).toEqual(['isp3']);
    expect(prepared.get('isp3')?.length).toBeGreaterThan(0);
    const allUp = prepareFailovers(CONFIG, [view('isp1', 0, 'ppp0', 1)], loaded([view('isp1', 0, 'ppp0', 1)]));
    expect(allUp.get('isp1')).toEqual([]);
  });
});

// Tiers (issue 16): only the live lines of the lowest live tier carry; a
// backup line takes no clients and is in no route while a main line is up,
// carries everything when every main line is down, and stands by again when
// one returns. Pure parts: which lines carry, the routes, the assignment, the
// config check.

import { describe, expect, test } from '@jest/globals';
import { parseConfig } from '../../src/config/load.js';
import { countByUplink, updateAssignments } from '../../src/core/assign.js';
import { planRoutes } from '../../src/core/plan.js';
import { carrying, role } from '../../src/core/uplinks.js';
import type { Neighbour } from '../../src/model/kernel.js';
import type { UplinkView } from '../../src/model/state.js';
import { uplinkView } from '../helpers/uplink-view.js';
import type { ConfigError } from '../../src/model/errors.js';

const CONFIG = parseConfig(
  `
lan: { interfaces: [lan0] }
uplinks:
  - { name: dsl1, interface: ppp0, weight: 2 }
  - { name: dsl2, interface: ppp1 }
  - { name: lte, interface: wwan0, tier: 2, failback: move }
`,
  'test.yaml',
);

const view = (name: string, index: number, iface: string, tier: number, state: UplinkView['state'] = 'up'): UplinkView => uplinkView(name, index, iface, { tier, state });

const lines = (dsl1: UplinkView['state'], dsl2: UplinkView['state'], lte: UplinkView['state'] = 'up'): UplinkView[] => [view('dsl1', 0, 'ppp0', 1, dsl1), view('dsl2', 1, 'ppp1', 1, dsl2), view('lte', 2, 'wwan0', 2, lte)];

/** Each route of ours as "table dst dev+dev". */
const routes = (uplinks: readonly UplinkView[]): string[] => planRoutes(CONFIG, uplinks).map((r) => `${r.table} ${r.dst} ${r.nexthops.map((h) => h.dev).join('+')}`);

const neighbours = (count: number): Neighbour[] => Array.from({ length: count }, (_, i) => ({ ip: `198.18.0.${10 + i}`, mac: `02:00:00:00:00:${(10 + i).toString(16)}`, dev: 'lan0', complete: true }));

describe('tiers', () => {
  test('the config keeps tier and failback; a tier with no line below it is refused with the fix', () => {
    expect(CONFIG.uplinks.map((u) => [u.name, u.tier, u.failback])).toEqual([
      ['dsl1', 1, 'keep'],
      ['dsl2', 1, 'keep'],
      ['lte', 2, 'move'],
    ]);
    let problems: readonly { field: string; problem: string; fix: string }[] = [];
    try {
      parseConfig('lan: { interfaces: [lan0] }\nuplinks:\n  - { name: dsl1, interface: ppp0 }\n  - { name: lte, interface: wwan0, tier: 3 }\n', 'gap.yaml');
    } catch (error) {
      problems = (error as ConfigError).problems;
    }
    expect(problems).toEqual([{ field: 'uplinks[1].tier', problem: 'tier 3 has no line in tier 2 below it', fix: 'number the tiers from 1 without gaps: main lines 1, backup lines 2' }]);
    expect(() => parseConfig('lan: { interfaces: [lan0] }\nuplinks:\n  - { name: a, interface: ppp0, failback: later }\n', 'bad.yaml')).toThrow(/uplinks\[0\]\.failback: "later" is not a failback policy/);
  });

  test('while a tier-1 line is up the tier-2 line carries nothing: not in the multipath route, its pool leaves by tier 1', () => {
    const up = lines('up', 'up');
    expect(carrying(up).map((u) => u.name)).toEqual(['dsl1', 'dsl2']);
    expect(up.map((u) => role(u, up))).toEqual(['carrying', 'carrying', 'standby']);
    expect(routes(up)).toEqual(['3100 default ppp0+ppp1', '3101 default ppp0', '3133 default ppp0', '3102 default ppp1', '3134 default ppp1', '3103 default wwan0', '3135 default ppp0+ppp1']);
    // One main line down: the other main line carries, LTE still stands by.
    const one = lines('down', 'up');
    expect(routes(one).filter((r) => r.startsWith('3100 ') || r.startsWith('3133 ') || r.startsWith('3135 '))).toEqual(['3100 default ppp1', '3133 default ppp1', '3135 default ppp1']);
  });

  test('every tier-1 line down: the tier-2 line carries every pool; one back and it stands by again', () => {
    const none = lines('down', 'down');
    expect(none.map((u) => role(u, none))).toEqual(['down', 'down', 'carrying']);
    expect(routes(none).filter((r) => ['3100', '3133', '3134', '3135'].includes(r.split(' ')[0] as string))).toEqual(['3100 default wwan0', '3133 default wwan0', '3134 default wwan0', '3135 default wwan0']);
    const back = lines('up', 'down');
    expect(back.map((u) => role(u, back))).toEqual(['carrying', 'down', 'standby']);
  });

  test('new clients join tier-1 lines only while one is up; the tier-2 line when none is', () => {
    const assign = (uplinks: UplinkView[]) => updateAssignments({ assignments: new Map(), lastSeen: new Map(), present: neighbours(12), uplinks, now: 0, complete: true, expireMs: 0, max: 1000, perMac: 1000 }).assignments;
    const counts = (assignments: ReturnType<typeof assign>) => Object.fromEntries(countByUplink(assignments));
    expect(counts(assign(lines('up', 'up')))).toEqual({ dsl1: 6, dsl2: 6 });
    expect(counts(assign(lines('up', 'down')))).toEqual({ dsl1: 12 });
    expect(counts(assign(lines('down', 'down')))).toEqual({ lte: 12 });
    // Every line down: as before tiers, any may take them (their pools are rerouted when one returns).
    expect(Object.keys(counts(assign(lines('down', 'down', 'down')))).sort()).toEqual(['dsl1', 'dsl2', 'lte']);
  });
});

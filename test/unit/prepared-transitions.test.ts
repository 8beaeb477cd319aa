// Prepared transitions (core/failover.ts): the routes each line's next verdict
// changes — a live line's death, a dead line's return — computed after every
// run, so the verdict moves the pools at once; and the reconciler acting on
// them against the fake kernel, before any full run.

import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { prepareTransitions } from '../../src/core/failover.js';
import { connMark, markLayout } from '../../src/core/marks.js';
import { planRoutes, planStaticRoutes } from '../../src/core/plan.js';
import { Reconciler } from '../../src/engine/reconciler.js';
import type { Config } from '../../src/model/config.js';
import type { HealthVerdict, UplinkView } from '../../src/model/state.js';
import type { Logger } from '../../src/system/logger.js';
import { Store } from '../../src/system/store.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { backend } from '../helpers/scenario.js';
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

const without = (view: UplinkView, key: 'address' | 'gateway'): UplinkView => {
  const { [key]: _, ...rest } = view;
  return rest;
};

/** The loaded routes with the prepared ones put over them: what the kernel holds after the verdict. */
function merged(before: readonly UplinkView[], prepared: ReturnType<typeof prepareTransitions>, name: string) {
  const routes = new Map(loaded(before).map((r) => [`${r.table} ${r.dst}`, r]));
  for (const route of prepared.get(name)?.routes ?? []) routes.set(`${route.table} ${route.dst}`, route);
  return [...routes.values()];
}

describe('prepared transitions (pure)', () => {
  test("each live line's death changes exactly the routes a full plan with it down would: its pool, the multipath, its static routes", () => {
    const prepared = prepareTransitions(CONFIG, UPLINKS, loaded(UPLINKS));
    expect([...prepared.keys()]).toEqual(['isp1', 'isp2', 'isp3']);
    for (const [name, { to, after }] of prepared) {
      expect(to).toBe('down');
      expect(after.map((u) => u.state)).toEqual(UPLINKS.map((u) => (u.name === name ? 'down' : 'up')));
      expect(merged(UPLINKS, prepared, name)).toEqual(loaded(after));
    }
    const isp1 = prepared.get('isp1')?.routes ?? [];
    // isp1's pool over the survivors, the multipath without it, the static route by isp3; isp1's own table stays.
    expect(isp1.map((r) => `${r.table} ${r.dst} ${r.nexthops.map((h) => h.dev).join('+')}`).sort()).toEqual(['3100 default ppp1+wan0', '3133 default ppp1+wan0', '3199 203.0.113.200/32 wan0'].sort());
  });

  test("a dead line's return changes exactly the routes a full plan with it up would: its pool comes home, the multipath and its static route take it back", () => {
    const oneDead = [view('isp1', 0, 'ppp0', 2, 'down'), UPLINKS[1] as UplinkView, UPLINKS[2] as UplinkView];
    const prepared = prepareTransitions(CONFIG, oneDead, loaded(oneDead));
    expect(prepared.get('isp1')?.to).toBe('up');
    expect(merged(oneDead, prepared, 'isp1')).toEqual(loaded(UPLINKS));
    expect((prepared.get('isp1')?.routes ?? []).map((r) => `${r.table} ${r.dst} ${r.nexthops.map((h) => h.dev).join('+')}`).sort()).toEqual(
      ['3100 default ppp0+ppp1+wan0', '3133 default ppp0', '3199 203.0.113.200/32 ppp0'].sort(),
    );
  });

  test('a line down for a link reason (gone, no address, no next hop) returns only by a link event and a full run: nothing is prepared for it', () => {
    const linkDown = [uplinkView('isp1', 0, 'ppp0', { state: 'down', present: false }), without(uplinkView('isp2', 1, 'ppp1', { state: 'down' }), 'address'), without(uplinkView('isp3', 2, 'wan0', { state: 'down' }), 'gateway')];
    expect([...prepareTransitions(CONFIG, linkDown, loaded(linkDown)).keys()]).toEqual([]);
  });

  test("the last live line's fall puts the routes back as in normal operation (every line carries); a single line's fall changes nothing", () => {
    const oneLeft = [view('isp1', 0, 'ppp0', 2, 'down'), view('isp2', 1, 'ppp1', 1, 'down'), view('isp3', 2, 'wan0', 1)];
    const prepared = prepareTransitions(CONFIG, oneLeft, loaded(oneLeft));
    expect(prepared.get('isp3')?.to).toBe('down');
    expect(prepared.get('isp3')?.routes.length).toBeGreaterThan(0);
    const allUp = prepareTransitions(CONFIG, [view('isp1', 0, 'ppp0', 1)], loaded([view('isp1', 0, 'ppp0', 1)]));
    expect(allUp.get('isp1')?.routes).toEqual([]);
  });
});

const TIERED = `lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }
uplinks:
  - { name: isp1, interface: ppp0, probe: { targets: [198.51.100.2] } }
  - { name: isp2, interface: ppp1, probe: { targets: [198.51.100.6] } }
  - { name: lte, interface: wan0, gateway: 192.0.2.9, tier: 2, failback: move, probe: { targets: [198.51.100.10] } }
scan: { schedule: "0 0 1 1 *" }
`;

/** The devices of pool n's default route (the pools' tables are base + 33 + index; base itself holds the multipath). */
const poolHops = (fake: FakeKernel, config: Config, n: number): string[] => fake.routing.routes.filter((r) => r.table === String(config.tables.base + 33 + n) && r.dst === 'default').map((r) => r.hops.map((h) => h.dev).join('+'));

/** The gateway TIERED describes: two ppp main lines and an ethernet backup. */
const tieredGateway = (clients = 0): FakeKernel =>
  FakeKernel.gateway({
    lan: 'lan0',
    uplinks: [
      { name: 'isp1', interface: 'ppp0', gateway: '192.0.2.1' },
      { name: 'isp2', interface: 'ppp1', gateway: '192.0.2.5' },
      { name: 'lte', interface: 'wan0', gateway: '192.0.2.9' },
    ],
    clients,
  });

describe('the reconciler acting on a prepared verdict (fake kernel)', () => {
  let dir: string;
  const logged: string[] = [];
  const log: Logger = { debug: () => {}, info: (msg) => void logged.push(msg), warn: (msg) => void logged.push(msg), error: (msg) => void logged.push(msg) };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-prepared-'));
    logged.length = 0;
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("a main line's return: its pool comes home and the backup's connections are forgotten (failback: move) by one ip batch and one conntrack call, before any full run", async () => {
    const config = { ...parseConfig(TIERED, 'tiered.yaml'), state: dir };
    const fake = tieredGateway(2);
    const verdicts = new Map<string, HealthVerdict>([
      ['isp1', { state: 'down', reason: 'blackholed' }],
      ['isp2', { state: 'down', reason: 'blackholed' }],
      ['lte', { state: 'up', reason: 'answering' }],
    ]);
    const health = { observe: () => verdicts };
    const reconciler = new Reconciler({ runner: fake, store: await Store.open(dir), backend, log, health }, config, new Map());
    expect((await reconciler.request('start', { scan: true })).ok).toBe(true);
    const pool = (n: number) => poolHops(fake, config, n);
    // Both main lines dead: the backup carries every pool.
    expect([pool(0), pool(1), pool(2)]).toEqual([['wan0'], ['wan0'], ['wan0']]);
    const layout = markLayout(config.marks.mask);
    fake.connections.push(
      { proto: 'tcp', src: '198.18.0.10', dst: '203.0.113.9', sport: 40000, dport: 443, mark: connMark(layout, 2) },
      { proto: 'udp', src: '198.18.0.11', dst: '203.0.113.9', sport: 40001, dport: 53, mark: connMark(layout, 2) },
    );
    const writesBefore = fake.writes.length;
    const readsBefore = fake.calls.filter((c) => c.argv[0] === 'iptables-save').length;

    verdicts.set('isp1', { state: 'up', reason: 'answering' });
    await reconciler.failFast('isp1', 'up', 'answering');

    expect(fake.writes.slice(writesBefore).map((c) => c.argv.slice(0, 2).join(' '))).toEqual(['ip -batch', 'conntrack -D']);
    expect(fake.calls.filter((c) => c.argv[0] === 'iptables-save').length).toBe(readsBefore);
    // Every pool (isp2's too: it is still dead) is on isp1 now; the backup stands by and its connections are gone.
    expect([pool(0), pool(1), pool(2)]).toEqual([['ppp0'], ['ppp0'], ['ppp0']]);
    expect(fake.connections).toEqual([]);
    expect(logged).toContain('uplink up: its pool is back home');
    expect(logged.some((m) => m.startsWith('uplink stands by') && m.includes('failback: move'))).toBe(true);
    // The full run that follows finds nothing more to move and forgets nothing again.
    const report = await reconciler.request('health: isp1 up');
    expect(report).toMatchObject({ ok: true, forgotten: {} });
    expect(report.applied.ip).toBe(0);
  });

  test('a verdict while a run is under way: the run finishes first (and prepares afresh), then the pool moves at once', async () => {
    const config = { ...parseConfig(TIERED, 'tiered.yaml'), state: dir };
    const fake = tieredGateway();
    const verdicts = new Map<string, HealthVerdict>([
      ['isp1', { state: 'up', reason: 'answering' }],
      ['isp2', { state: 'up', reason: 'answering' }],
      ['lte', { state: 'up', reason: 'answering' }],
    ]);
    let observed = 0;
    const health = {
      observe: () => {
        observed++;
        return new Map(verdicts);
      },
    };
    const reconciler = new Reconciler({ runner: fake, store: await Store.open(dir), backend, log, health }, config, new Map());
    await reconciler.request('start', { scan: true });
    const pool = (n: number) => poolHops(fake, config, n);
    expect(pool(0)).toEqual(['ppp0']);
    // A run starts and reads the verdicts with isp1 still up; the down verdict arrives during it.
    const before = observed;
    const running = reconciler.request('health: isp1 degraded');
    while (observed === before) await new Promise((resolve) => setImmediate(resolve));
    verdicts.set('isp1', { state: 'down', reason: 'blackholed' });
    await reconciler.failFast('isp1', 'down', 'blackholed');
    await running;
    // No run read the down verdict: the move is failFast's, after the run under way prepared it.
    expect(observed).toBe(before + 1);
    expect(pool(0)).toEqual(['ppp1']);
    expect(logged).toContain('uplink down: its pool moved to the survivors, its connections forgotten');
  });

  test('a verdict nothing was prepared for (the other direction) waits for the full run', async () => {
    const config = { ...parseConfig(TIERED, 'tiered.yaml'), state: dir };
    const fake = tieredGateway();
    const reconciler = new Reconciler({ runner: fake, store: await Store.open(dir), backend, log }, config, new Map());
    await reconciler.request('start', { scan: true });
    const writesBefore = fake.writes.length;
    await reconciler.failFast('isp1', 'up', 'answering');
    expect(fake.writes.length).toBe(writesBefore);
  });
});

// IPv6 prefix mode, the pure parts: what the config refuses, the plan (source
// rules per announced prefix, a fallen line's table refusing, the gateway's
// LAN addresses, the advertisements' lifetimes), the diff of our addresses by
// their metric, radvd's config and explain. The namespace test
// (test/integration/ipv6-prefix.test.ts) proves them with real hosts.

import { describe, expect, test } from '@jest/globals';
import { parseConfig } from '../../src/config/load.js';
import { gatewayAddress6 } from '../../src/core/announce.js';
import { ADDRESS_METRIC } from '../../src/core/contract.js';
import { diffAddresses, diffRouting } from '../../src/core/diff.js';
import { explain6 } from '../../src/core/explain6.js';
import { prepareTransitions } from '../../src/core/failover.js';
import { plan } from '../../src/core/plan.js';
import { viewUplinks6 } from '../../src/core/uplinks6.js';
import type { IpRoute, Link, RoutingState } from '../../src/model/kernel.js';
import type { UplinkView } from '../../src/model/state.js';
import { parseIpAddr } from '../../src/parse/ip-json.js';
import { renderIpBatch } from '../../src/render/payloads.js';
import { radvdConf } from '../../src/render/radvd-conf.js';
import { problemsOf } from '../helpers/config-problems.js';
import { uplinkView } from '../helpers/uplink-view.js';

const PREFIX = `
lan:
  interfaces: [lan0]
  ipv6: { mode: prefix }
uplinks:
  - name: isp1
    interface: wan1
    ipv6: { gateway: fe80::1, prefix: 2001:db8:1:100::/64 }
  - name: isp2
    interface: wan2
    ipv6: { prefix: 2001:db8:2:100::/64 }
netfilter: { backend: nftables }
`;
const config = parseConfig(PREFIX, 't.yaml');

/** IPv6 views of the two lines: up, each with a link-local next hop and a global address of its own. */
const views6 = (over: Partial<Record<'isp1' | 'isp2', Partial<UplinkView>>> = {}): UplinkView[] => [
  uplinkView('isp1', 0, 'wan1', { address: '2001:db8:a::2', gateway: 'fe80::1', ...over.isp1 }),
  uplinkView('isp2', 1, 'wan2', { address: '2001:db8:b::2', gateway: 'fe80::2', ...over.isp2 }),
];
const views4 = [uplinkView('isp1', 0, 'wan1'), uplinkView('isp2', 1, 'wan2')];

describe('the prefix mode keys', () => {
  test('accepted with a global /64 per line and no LAN prefix of its own', () => {
    expect(config.lan.ipv6).toEqual({ mode: 'prefix', prefix: null });
    expect(config.uplinks.map((u) => u.ipv6?.prefix)).toEqual(['2001:db8:1:100::/64', '2001:db8:2:100::/64']);
  });

  // Each: what is changed in the valid config, the field refused.
  const refusals: [string, string, string, string][] = [
    ["a LAN prefix of its own (nat mode's)", 'mode: prefix }', 'mode: prefix, prefix: fd00:18::/64 }', 'lan.ipv6.prefix'],
    ['two LAN interfaces (one /64 is on one link)', 'interfaces: [lan0]', 'interfaces: [lan0, lan1]', 'lan.interfaces'],
    ['a line without a prefix to announce', '    ipv6: { prefix: 2001:db8:2:100::/64 }', '    ipv6: { gateway: fe80::2 }', 'uplinks[1].ipv6.prefix'],
    ['a /56 (SLAAC takes a /64)', 'prefix: 2001:db8:2:100::/64', 'prefix: 2001:db8:2:100::/56', 'uplinks[1].ipv6.prefix'],
    ['a unique local prefix (not routed back)', 'prefix: 2001:db8:2:100::/64', 'prefix: fd00:2::/64', 'uplinks[1].ipv6.prefix'],
    ['a link-local prefix', 'prefix: 2001:db8:2:100::/64', 'prefix: fe80:2::/64', 'uplinks[1].ipv6.prefix'],
    ['a prefix longer than /64', 'prefix: 2001:db8:2:100::/64', 'prefix: 2001:db8:2:100::/80', 'uplinks[1].ipv6.prefix'],
    ['two lines with the same prefix', 'prefix: 2001:db8:2:100::/64', 'prefix: 2001:db8:1:100::/64', 'uplinks[1].ipv6.prefix'],
    ['a probe target inside an announced prefix', 'ipv6: { prefix: 2001:db8:2:100::/64 }', 'ipv6: { prefix: 2001:db8:2:100::/64, probe: { targets: ["2001:db8:1:100::5"] } }', 'uplinks[1].ipv6.probe.targets[0]'],
    ['a next hop inside an announced prefix', 'gateway: fe80::1,', 'gateway: "2001:db8:2:100::1",', 'uplinks[0].ipv6.gateway'],
  ];
  test.each(refusals)('%s is refused with its field and a fix', (_what, from, to, field) => {
    expect(PREFIX.includes(from)).toBe(true);
    const mine = problemsOf(PREFIX.replace(from, to)).find((p) => p.field === field);
    expect(mine).toBeDefined();
    expect(mine?.fix.length).toBeGreaterThan(10);
  });

  test('no line with a prefix at all: the mode itself is refused', () => {
    const bare = PREFIX.replace('    ipv6: { gateway: fe80::1, prefix: 2001:db8:1:100::/64 }\n', '').replace('    ipv6: { prefix: 2001:db8:2:100::/64 }\n', '');
    expect(problemsOf(bare)).toEqual([{ field: 'lan.ipv6.mode', problem: expect.stringContaining('no line has a prefix'), fix: expect.stringContaining('uplinks[].ipv6.prefix') }]);
  });

  test('the /56 fix names the /64 to write', () => {
    const fix = problemsOf(PREFIX.replace('prefix: 2001:db8:2:100::/64', 'prefix: 2001:db8:2::/56')).find((p) => p.field === 'uplinks[1].ipv6.prefix')?.fix;
    expect(fix).toContain('2001:db8:2::/64');
  });
});

describe('the plan of prefix mode', () => {
  test('a source rule per prefix into its line table, the gateway at ::1 of each, both prefixes preferred, no IPv6 packet filter', () => {
    const desired = plan({ config, uplinks: views4, uplinks6: views6(), assignments: new Map() });
    expect(desired.ipv6.rules).toEqual(
      expect.arrayContaining([
        { priority: 4134, src: '2001:db8:1:100::/64', table: '3165' },
        { priority: 4135, src: '2001:db8:2:100::/64', table: '3166' },
      ]),
    );
    expect(desired.ipv6.addresses).toEqual([
      { interface: 'lan0', address: '2001:db8:1:100::1/64' },
      { interface: 'lan0', address: '2001:db8:2:100::1/64' },
    ]);
    expect(desired.announce).toEqual({
      interface: 'lan0',
      prefixes: [
        { uplink: 'isp1', prefix: '2001:db8:1:100::/64', preferred: true },
        { uplink: 'isp2', prefix: '2001:db8:2:100::/64', preferred: true },
      ],
    });
    expect(desired.ipv6.routes.filter((r) => r.type === 'unreachable')).toEqual([]);
    expect(desired.netfilter?.ipv6).toBeNull();
  });

  test("a line whose IPv6 is down: its prefix deprecated, its prefix table refuses, its own table stays (its probes); the other's untouched", () => {
    const desired = plan({ config, uplinks: views4, uplinks6: views6({ isp1: { state: 'down', reason: 'IPv6: probes lost' } }), assignments: new Map() });
    expect(desired.announce?.prefixes.map((p) => p.preferred)).toEqual([false, true]);
    expect(desired.ipv6.routes.filter((r) => r.table === '3165')).toEqual([{ table: '3165', dst: 'default', nexthops: [], type: 'unreachable' }]);
    expect(desired.ipv6.routes.find((r) => r.table === '3101')?.nexthops).toEqual([{ gateway: 'fe80::1', dev: 'wan1', weight: 1, onlink: true }]);
    expect(desired.ipv6.routes.find((r) => r.table === '3166')?.nexthops).toEqual([{ gateway: 'fe80::2', dev: 'wan2', weight: 1, onlink: true }]);
  });

  test('every line down: the prefixes stay preferred and routed as they were (as the pools stay where they were)', () => {
    const desired = plan({ config, uplinks: views4, uplinks6: views6({ isp1: { state: 'down' }, isp2: { state: 'down' } }), assignments: new Map() });
    expect(desired.announce?.prefixes.map((p) => p.preferred)).toEqual([true, true]);
    expect(desired.ipv6.routes.some((r) => r.type === 'unreachable')).toBe(false);
  });

  test("a line's verdict prepares its prefix table's flip for the fast path", () => {
    const desired = plan({ config, uplinks: views4, uplinks6: views6(), assignments: new Map() });
    const prepared = prepareTransitions(config, views4, desired.routes, views6(), desired.ipv6.routes);
    expect(prepared.get('isp1')?.routes6).toEqual(expect.arrayContaining([{ table: '3165', dst: 'default', nexthops: [], type: 'unreachable' }]));
  });

  test('a line standing by for a lower tier: deprecated, but its table still routes (its open connections keep working)', () => {
    const desired = plan({ config, uplinks: views4, uplinks6: views6({ isp2: { tier: 2 } }), assignments: new Map() });
    expect(desired.announce?.prefixes.map((p) => p.preferred)).toEqual([true, false]);
    expect(desired.ipv6.routes.some((r) => r.type === 'unreachable')).toBe(false);
    expect(desired.ipv6.routes.find((r) => r.table === '3166')?.nexthops[0]?.dev).toBe('wan2');
  });

  test('a line with IPv6 but no prefix to announce does not count as carrying: the only announcing line, in tier 2, stays preferred', () => {
    const text = PREFIX.replace('    ipv6: { gateway: fe80::1, prefix: 2001:db8:1:100::/64 }\n', '').replace('    interface: wan2\n', '    interface: wan2\n    tier: 2\n');
    const tiered = parseConfig(text, 't.yaml');
    const desired = plan({ config: tiered, uplinks: views4, uplinks6: views6({ isp2: { tier: 2 } }), assignments: new Map() });
    expect(desired.announce?.prefixes).toEqual([{ uplink: 'isp2', prefix: '2001:db8:2:100::/64', preferred: true }]);
    expect(desired.ipv6.routes.some((r) => r.type === 'unreachable')).toBe(false);
  });

  test('IPv6 off or nat mode: nothing announced, no address of ours', () => {
    const nat = parseConfig(PREFIX.replace('mode: prefix }', 'mode: nat, prefix: fd00:18::/64 }'), 't.yaml');
    const desired = plan({ config: nat, uplinks: views4, uplinks6: views6(), assignments: new Map() });
    expect(desired.announce).toBeNull();
    expect(desired.ipv6.addresses).toEqual([]);
  });
});

const KERNEL_ADDR = JSON.stringify([
  {
    ifindex: 2,
    ifname: 'lan0',
    flags: ['UP', 'LOWER_UP'],
    address: '02:00:00:00:00:01',
    addr_info: [
      { family: 'inet6', local: '2001:db8:1:100::1', prefixlen: 64, metric: ADDRESS_METRIC, scope: 'global' },
      { family: 'inet6', local: '2001:db8:9::1', prefixlen: 64, scope: 'global' },
      { family: 'inet6', local: '2001:db8:3:100::1', prefixlen: 64, metric: ADDRESS_METRIC, scope: 'global', tentative: true },
    ],
  },
]);

describe('our LAN addresses', () => {
  test("are known by their metric, whatever their state; the operator's are not ours", () => {
    const [lan] = parseIpAddr(KERNEL_ADDR) as [Link];
    expect(lan.owned6).toEqual(['2001:db8:1:100::1/64', '2001:db8:3:100::1/64']);
    expect(lan.addresses6).toEqual(['2001:db8:1:100::1', '2001:db8:9::1']);
  });

  test("the missing are added, ours no longer wanted removed, the operator's left alone", () => {
    const links = parseIpAddr(KERNEL_ADDR);
    const change = diffAddresses(
      [
        { interface: 'lan0', address: '2001:db8:1:100::1/64' },
        { interface: 'lan0', address: '2001:db8:2:100::1/64' },
      ],
      links,
    );
    expect(change).toEqual({ add: [{ interface: 'lan0', address: '2001:db8:2:100::1/64' }], remove: [{ interface: 'lan0', address: '2001:db8:3:100::1/64' }] });
    const batch = renderIpBatch({ routes: { replace: [], remove: [] }, rules: { add: [], remove: [] }, addresses: change });
    expect(batch).toBe(`address add 2001:db8:2:100::1/64 dev lan0 metric ${ADDRESS_METRIC} nodad\naddress del 2001:db8:3:100::1/64 dev lan0\n`);
  });

  test('an address the operator has already set is left as it is (not added again: that would fail the batch); a LAN interface not there yet gets none', () => {
    const links = parseIpAddr(KERNEL_ADDR);
    expect(diffAddresses([{ interface: 'lan0', address: '2001:db8:9::1/64' }], links)).toEqual({
      add: [],
      remove: [
        { interface: 'lan0', address: '2001:db8:1:100::1/64' },
        { interface: 'lan0', address: '2001:db8:3:100::1/64' },
      ],
    });
    expect(diffAddresses([{ interface: 'br9', address: '2001:db8:5:100::1/64' }], []).add).toEqual([]);
  });

  test('a kernel that matches the plan, unreachable route included, needs nothing', () => {
    const uplinks6 = views6({ isp1: { state: 'down', reason: 'down' } });
    const desired = plan({ config, uplinks: views4, uplinks6, assignments: new Map() });
    const asKernel = (r: (typeof desired.routes)[number]): IpRoute =>
      r.type === 'unreachable'
        ? { table: r.table, dst: r.dst, type: 'unreachable', protocol: '211', metric: 1024, nexthops: [{ dev: 'lo', weight: 1, onlink: false }], linkdown: false }
        : { table: r.table, dst: r.dst, type: 'unicast', protocol: '211', metric: 1024, nexthops: r.nexthops, linkdown: false };
    const lan = { name: 'lan0', index: 2, up: true, lowerUp: true, pointToPoint: false, addresses: [], addresses6: [], owned6: desired.ipv6.addresses.map((a) => a.address) };
    const observed: RoutingState = {
      rules: desired.rules.map((r) => ({ ...r, protocol: '211' })),
      routes: desired.routes.map((r) => ({ ...asKernel(r), metric: 0 })),
      ipv6: { rules: desired.ipv6.rules.map((r) => ({ ...r, protocol: '211' })), routes: desired.ipv6.routes.map(asKernel) },
      links: [lan],
      sysctls: desired.sysctls,
    };
    const change = diffRouting(config, desired, observed);
    expect(change.ipv6.routes).toEqual({ replace: [], remove: [] });
    expect(change.ipv6.addresses).toEqual({ add: [], remove: [] });
    expect(renderIpBatch({ ...change.ipv6, routes: { replace: desired.ipv6.routes.filter((r) => r.type === 'unreachable'), remove: [] } })).toBe('route replace unreachable default table 3165 proto 211\n');
  });
});

describe('the advertisements', () => {
  test("radvd's config: every prefix on the LAN interface, a deprecated one with preferred lifetime 0", () => {
    const text = radvdConf({
      interface: 'lan0',
      prefixes: [
        { uplink: 'isp1', prefix: '2001:db8:1:100::/64', preferred: false },
        { uplink: 'isp2', prefix: '2001:db8:2:100::/64', preferred: true },
      ],
    });
    expect(text).toContain('interface lan0 {');
    const block = (prefix: string): string => text.slice(text.indexOf(`prefix ${prefix}`), text.indexOf('};', text.indexOf(`prefix ${prefix}`)));
    expect(block('2001:db8:1:100::/64')).toContain('AdvPreferredLifetime 0;');
    expect(block('2001:db8:2:100::/64')).toContain('AdvPreferredLifetime 14400;');
    for (const prefix of ['2001:db8:1:100::/64', '2001:db8:2:100::/64']) expect(block(prefix)).toContain('AdvValidLifetime 86400;');
    expect(text).toMatch(/MaxRtrAdvInterval 30;/);
  });

  test("the line view's inbound address is the gateway's in the line's prefix, once it is on the LAN", () => {
    const link = (name: string, addresses6: string[]): Link => ({ name, index: 1, up: true, lowerUp: true, pointToPoint: false, addresses: [], addresses6, owned6: [] });
    const links = [link('lan0', [gatewayAddress6('2001:db8:1:100::/64')]), link('wan1', ['2001:db8:a::2']), link('wan2', ['2001:db8:b::2'])];
    const v6 = viewUplinks6(config, views4, links, { rules: [], routes: [] });
    expect(v6.map((u) => u.inbound ?? null)).toEqual(['2001:db8:1:100::1', null]);
  });
});

describe('explain in prefix mode', () => {
  test('an address is explained by its prefix: the source rule, the table, preferred or deprecated', () => {
    const up = explain6(config, views6(), new Map(), '2001:db8:2:100:a459:74ff:fecc:8f7e');
    expect(up.verdict).toBe('assigned');
    expect(up.pool).toBe('isp2');
    expect(up.steps.join('\n')).toContain('IPv6 rule 4135: from 2001:db8:2:100::/64 lookup 3166');
    expect(up.steps.join('\n')).toContain('advertised preferred');
    const down = explain6(config, views6({ isp2: { state: 'down', reason: 'IPv6: probes lost' } }), new Map(), '2001:db8:2:100::55');
    expect(down.steps.join('\n')).toContain('unreachable');
    expect(down.steps.join('\n')).toContain('deprecated');
    expect(explain6(config, views6(), new Map(), '2001:db8:7::5').verdict).toBe('not a client');
  });
});

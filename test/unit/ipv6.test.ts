// IPv6 nat mode, the pure parts: the config's IPv6 keys and what they refuse,
// a host's IPv6 addresses joining its IPv4 record, the plan of both families,
// and the nftables table that classifies and translates IPv6. The namespace
// test (test/integration/ipv6.test.ts) proves them on the real kernel.

import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import type { NetfilterBackend } from '../../src/backends/backend.js';
import { createBackend } from '../../src/backends/index.js';
import type { IptablesObserved, IptablesPayload } from '../../src/backends/iptables/types.js';
import { renderSkeleton, renderElements, renderWhole } from '../../src/backends/nftables/render.js';
import { planNft } from '../../src/backends/nftables/index.js';
import { EMPTY } from '../../src/backends/nftables/adapter.js';
import { parseConfig } from '../../src/config/load.js';
import { IPV6_PER_HOST, joinIpv6 } from '../../src/core/assign6.js';
import { updateAssignments } from '../../src/core/assign.js';
import { clientFilter, isNeighbourNews } from '../../src/core/clients.js';
import { diffRoutes } from '../../src/core/diff.js';
import { explain6 } from '../../src/core/explain6.js';
import { prepareTransitions } from '../../src/core/failover.js';
import { ipv6PrefixProblem } from '../../src/core/ipv6.js';
import { plan } from '../../src/core/plan.js';
import { checkExplainAddress } from '../../src/core/requests.js';
import { viewUplinks6, withHealth6 } from '../../src/core/uplinks6.js';
import { problemsOf } from '../helpers/config-problems.js';
import type { Link, Neighbour } from '../../src/model/kernel.js';
import type { NetfilterIntent } from '../../src/model/plan.js';
import type { ClientRecord, UplinkView } from '../../src/model/state.js';
import { parseIptablesSave } from '../../src/parse/iptables-save.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import type { SessionSpec } from '../../src/system/exec.js';
import { systemClock } from '../../src/system/clock.js';
import { ToolSession } from '../../src/system/tool-session.js';

const NAT = `
lan:
  interfaces: [lan0]
  ipv6: { mode: nat, prefix: fd00:18::/64 }
uplinks:
  - name: isp1
    interface: wan1
    ipv6: { gateway: fe80::1, prefix: 2001:db8:1:100::/64 }
  - name: isp2
    interface: wan2
netfilter: { backend: nftables }
`;

/** joinIpv6's records written into `assignments` (as the next version of a run's map would hold them); how many addresses changed. */
function joinInto(assignments: Map<string, ClientRecord>, present6: Parameters<typeof joinIpv6>[1], input: Parameters<typeof joinIpv6>[2]): number {
  const { changes, records } = joinIpv6(assignments, present6, input);
  for (const [ip, record] of records) assignments.set(ip, record);
  return changes;
}

describe('the IPv6 keys', () => {
  test('off by default; nat mode normalises the prefixes and the next hop', () => {
    expect(parseConfig('lan: { interfaces: [lan0] }\nuplinks: [{ name: a, interface: a }]\n', 't.yaml').lan.ipv6).toEqual({ mode: 'off', prefix: null });
    const config = parseConfig(NAT.replace('fd00:18::/64', 'FD00:0018:0:0::/64').replace('fe80::1', 'FE80:0::1'), 't.yaml');
    expect(config.lan.ipv6).toEqual({ mode: 'nat', prefix: 'fd00:18::/64' });
    expect(config.uplinks.map((u) => u.ipv6)).toEqual([{ gateway: 'fe80::1', prefix: '2001:db8:1:100::/64', targets: [] }, undefined]);
  });

  // Each: what is changed in the valid config, the field refused, and a word of its problem.
  const refusals: [string, string, string, string][] = [
    ['a mode that does not exist', 'mode: nat,', 'mode: nat66,', 'lan.ipv6.mode'],
    ['nat mode without a prefix', 'mode: nat, prefix: fd00:18::/64', 'mode: nat', 'lan.ipv6.prefix'],
    ['an IPv4 network as the LAN prefix', 'prefix: fd00:18::/64', 'prefix: 198.18.0.0/16', 'lan.ipv6.prefix'],
    ['a LAN prefix with host bits set', 'prefix: fd00:18::/64', 'prefix: fd00:18::1/64', 'lan.ipv6.prefix'],
    ['a LAN prefix without a length', 'prefix: fd00:18::/64', 'prefix: "fd00:18::"', 'lan.ipv6.prefix'],
    ['a link-local LAN prefix', 'prefix: fd00:18::/64', 'prefix: fe80::/64', 'lan.ipv6.prefix'],
    ['a multicast LAN prefix', 'prefix: fd00:18::/64', 'prefix: ff02::/64', 'lan.ipv6.prefix'],
    ['a LAN prefix longer than /64 (no SLAAC)', 'prefix: fd00:18::/64', 'prefix: fd00:18::/80', 'lan.ipv6.prefix'],
    ['every address as the LAN prefix', 'prefix: fd00:18::/64', 'prefix: ::/0', 'lan.ipv6.prefix'],
    ['the IPv4-mapped range as the LAN prefix', 'prefix: fd00:18::/64', 'prefix: ::ffff:0:0/96', 'lan.ipv6.prefix'],
    ['a link-local line prefix', 'prefix: 2001:db8:1:100::/64', 'prefix: fe80:1::/64', 'uplinks[0].ipv6.prefix'],
    ["a line prefix overlapping the LAN's", 'prefix: 2001:db8:1:100::/64', 'prefix: fd00::/16', 'uplinks[0].ipv6.prefix'],
    ["a line prefix longer than the LAN's", 'prefix: 2001:db8:1:100::/64', 'prefix: 2001:db8:1:100::/72', 'uplinks[0].ipv6.prefix'],
    ['an IPv4 next hop', 'gateway: fe80::1', 'gateway: 192.0.2.1', 'uplinks[0].ipv6.gateway'],
    ['a multicast next hop', 'gateway: fe80::1', 'gateway: ff02::2', 'uplinks[0].ipv6.gateway'],
    ["a global next hop inside the LAN's prefix", 'gateway: fe80::1', 'gateway: fd00:18::1', 'uplinks[0].ipv6.gateway'],
    ['an unknown key', 'gateway: fe80::1,', 'gateway: fe80::1, router: fe80::2,', 'uplinks[0].ipv6.router'],
  ];
  test.each(refusals)('%s is refused with its field and a fix', (_what, from, to, field) => {
    expect(NAT.includes(from)).toBe(true);
    const problems = problemsOf(NAT.replace(from, to));
    const mine = problems.find((p) => p.field === field);
    expect(mine).toBeDefined();
    expect(mine?.fix.length).toBeGreaterThan(10);
  });

  test('IPv6 probe targets: normalised; link-local, inside the LAN prefix or an empty list refused', () => {
    const probed = (targets: string) => NAT.replace('prefix: 2001:db8:1:100::/64 }', `prefix: 2001:db8:1:100::/64, probe: { targets: ${targets} } }`);
    expect(parseConfig(probed('[2001:DB8:FFFF:0::100]'), 't.yaml').uplinks[0]?.ipv6?.targets).toEqual(['2001:db8:ffff::100']);
    expect(problemsOf(probed('[fe80::1]')).map((p) => p.field)).toEqual(['uplinks[0].ipv6.probe.targets[0]']);
    expect(problemsOf(probed('[fd00:18::1]')).map((p) => p.field)).toEqual(['uplinks[0].ipv6.probe.targets[0]']);
    expect(problemsOf(probed('[]')).map((p) => p.field)).toEqual(['uplinks[0].ipv6.probe.targets']);
  });

  test('two lines whose prefixes overlap, and an uplink ipv6 while IPv6 is off, are refused', () => {
    const both = NAT.replace('    interface: wan2\n', '    interface: wan2\n    ipv6: { prefix: 2001:db8:1::/48 }\n');
    expect(problemsOf(both).map((p) => p.field)).toEqual(['uplinks[1].ipv6.prefix']);
    const off = NAT.replace('  ipv6: { mode: nat, prefix: fd00:18::/64 }\n', '');
    expect(problemsOf(off)).toEqual([{ field: 'uplinks[0].ipv6', problem: 'has no effect while lan.ipv6.mode is off', fix: expect.stringContaining('lan.ipv6.mode: nat') }]);
  });

  test('the prefix problems say what is wrong in words', () => {
    expect(ipv6PrefixProblem('fd00:18::1/64', 64)).toBe('"fd00:18::1/64" has host bits set (the network is fd00:18::/64)');
    expect(ipv6PrefixProblem('fe80::/64', 64)).toContain('link-local');
    expect(ipv6PrefixProblem('2001:db8::/48', 64)).toBeNull();
  });
});

const LINK = (name: string, addresses6: string[] = []): Link => ({ name, index: 1, up: true, lowerUp: true, pointToPoint: false, addresses: [], addresses6, owned6: [] });
const MAC_A = '02:00:00:00:00:0a';
const MAC_B = '02:00:00:00:00:0b';
const record = (uplink: string, mac: string, ipv6?: Record<string, number>): ClientRecord => ({ uplink, mac, interface: 'lan0', pinned: false, firstSeen: 0, ...(ipv6 ? { ipv6 } : {}) });
const neighbour = (ip: string, mac: string): Neighbour => ({ ip, mac, dev: 'lan0', complete: true });

describe("a host's IPv6 addresses join its pool", () => {
  const config = parseConfig(NAT, 't.yaml');

  test('the client filter admits the LAN prefix only, never the gateway itself or link-local', () => {
    const filter = clientFilter(config, [LINK('lan0', ['fd00:18::1'])]);
    expect(filter.admits(neighbour('fd00:18::10', MAC_A))).toBe(true);
    expect(filter.admits(neighbour('fd00:18::1', MAC_A))).toBe(false);
    expect(filter.admits(neighbour('fe80::10', MAC_A))).toBe(false);
    expect(filter.admits(neighbour('2001:db8:9::10', MAC_A))).toBe(false);
    const off = parseConfig('lan: { interfaces: [lan0] }\nuplinks: [{ name: a, interface: a }]\n', 't.yaml');
    expect(clientFilter(off, []).admits(neighbour('fd00:18::10', MAC_A))).toBe(false);
  });

  test('by MAC and interface: each address goes to its host; an IPv6-only host stays out', () => {
    const assignments = new Map([
      ['198.18.0.10', record('isp1', MAC_A)],
      ['198.18.0.11', record('isp2', MAC_B)],
    ]);
    const changes = joinInto(assignments, [neighbour('fd00:18::10', MAC_A), neighbour('fd00:18::a1', MAC_A), neighbour('fd00:18::11', MAC_B), neighbour('fd00:18::99', '02:00:00:00:00:99')], {
      now: 5,
      complete: false,
      expireMs: 1000,
    });
    expect(changes).toBe(3);
    expect(assignments.get('198.18.0.10')?.ipv6).toEqual({ 'fd00:18::10': 5, 'fd00:18::a1': 5 });
    expect(assignments.get('198.18.0.11')?.ipv6).toEqual({ 'fd00:18::11': 5 });
  });

  test('a full scan drops addresses gone longer than the expiry; a host keeps its newest few', () => {
    const many = Object.fromEntries(Array.from({ length: IPV6_PER_HOST }, (_, i) => [`fd00:18::${i + 1}`, 100 + i]));
    const assignments = new Map([['198.18.0.10', record('isp1', MAC_A, { ...many, 'fd00:18::dead': 0 })]]);
    const changes = joinInto(assignments, [neighbour('fd00:18::f', MAC_A)], { now: 1000, complete: true, expireMs: 950 });
    const kept = assignments.get('198.18.0.10')?.ipv6 ?? {};
    expect(Object.keys(kept)).toHaveLength(IPV6_PER_HOST);
    expect(kept['fd00:18::dead']).toBeUndefined();
    expect(kept['fd00:18::f']).toBe(1000);
    // The oldest of the others made room.
    expect(kept['fd00:18::1']).toBeUndefined();
    expect(changes).toBe(3);
  });

  test('updateAssignments keeps IPv6 entries out of the clients and reports what joined', () => {
    const result = updateAssignments({
      assignments: new Map(),
      lastSeen: new Map(),
      present: [neighbour('198.18.0.10', MAC_A), neighbour('fd00:18::10', MAC_A)],
      uplinks: [{ name: 'isp1', index: 0, interface: 'wan1', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '192.0.2.1', pointToPoint: false }],
      now: 1,
      complete: true,
      expireMs: 0,
      max: 10,
      perMac: 2,
    });
    expect([...result.assignments.keys()]).toEqual(['198.18.0.10']);
    expect(result.assignments.get('198.18.0.10')?.ipv6).toEqual({ 'fd00:18::10': 1 });
    expect(result.addresses6).toBe(1);
  });

  test('news is only what can join a host now: not link-local, other prefixes, IPv6-only hosts or a full host', () => {
    const assignments = new Map([
      ['198.18.0.10', record('isp1', MAC_A, { 'fd00:18::10': 1 })],
      ['198.18.0.11', record('isp2', MAC_B)],
    ]);
    expect(isNeighbourNews(config, assignments, neighbour('fd00:18::10', MAC_A))).toBe(false);
    expect(isNeighbourNews(config, assignments, neighbour('fd00:18::a', MAC_A))).toBe(true);
    // The address moved to another host's MAC.
    expect(isNeighbourNews(config, assignments, neighbour('fd00:18::10', MAC_B))).toBe(true);
    expect(isNeighbourNews(config, assignments, neighbour('fe80::10', MAC_A))).toBe(false);
    expect(isNeighbourNews(config, assignments, neighbour('2001:db8::5', MAC_A))).toBe(false);
    expect(isNeighbourNews(config, assignments, neighbour('fd00:18::99', '02:00:00:00:00:99'))).toBe(false);
    const full = Object.fromEntries(Array.from({ length: IPV6_PER_HOST }, (_, i) => [`fd00:18::${i + 1}`, 1]));
    expect(isNeighbourNews(config, new Map([['198.18.0.10', record('isp1', MAC_A, full)]]), neighbour('fd00:18::ff', MAC_A))).toBe(false);
  });

  test('a host with more active addresses than it keeps gives the same set scan after scan (no churn)', () => {
    const present = Array.from({ length: IPV6_PER_HOST + 3 }, (_, i) => neighbour(`fd00:18::${(i + 1).toString(16)}`, MAC_A));
    const assignments = new Map([['198.18.0.10', record('isp1', MAC_A)]]);
    joinInto(assignments, present, { now: 10, complete: true, expireMs: 1000 });
    const first = Object.keys(assignments.get('198.18.0.10')?.ipv6 ?? {}).sort();
    expect(first).toHaveLength(IPV6_PER_HOST);
    expect(joinInto(assignments, present, { now: 20, complete: true, expireMs: 1000 })).toBe(0);
    expect(Object.keys(assignments.get('198.18.0.10')?.ipv6 ?? {}).sort()).toEqual(first);
  });

  test("another device taking the IPv4 address does not inherit the old one's IPv6 addresses", () => {
    const result = updateAssignments({
      assignments: new Map([['198.18.0.10', record('isp1', MAC_A, { 'fd00:18::10': 1 })]]),
      lastSeen: new Map(),
      present: [neighbour('198.18.0.10', MAC_B)],
      uplinks: [{ name: 'isp1', index: 0, interface: 'wan1', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '192.0.2.1', pointToPoint: false }],
      now: 5,
      complete: false,
      expireMs: 0,
      max: 10,
      perMac: 2,
    });
    expect(result.assignments.get('198.18.0.10')).toMatchObject({ mac: MAC_B });
    expect(result.assignments.get('198.18.0.10')?.ipv6).toBeUndefined();
  });
});

describe('both families planned', () => {
  const config = parseConfig(NAT, 't.yaml');
  const up = (name: string, index: number, iface: string, gateway: string): UplinkView => ({
    name,
    index,
    interface: iface,
    weight: 1,
    tier: 1,
    state: 'up',
    reason: 'up',
    present: true,
    gateway,
    pointToPoint: false,
    address: `192.0.2.${index + 2}`,
  });
  const uplinks = [up('isp1', 0, 'wan1', '192.0.2.1'), up('isp2', 1, 'wan2', '192.0.2.5')];
  const links = [LINK('wan1', ['2001:db8:a::2']), LINK('wan2', ['2001:db8:b::2'])];

  test('weights and a shared link-local next hop: the IPv6 multipath route keeps both lines apart by device, weighted as configured', () => {
    const shared = parseConfig(NAT.replace('interface: wan1\n', 'interface: wan1\n    weight: 3\n').replace('interface: wan2\n', 'interface: wan2\n    ipv6: { gateway: fe80::1 }\n'), 't.yaml');
    const weighted = uplinks.map((u) => ({ ...u, weight: u.name === 'isp1' ? 3 : 1 }));
    const views6 = viewUplinks6(shared, weighted, links, { rules: [], routes: [] });
    expect(views6.map((v) => [v.gateway, v.weight])).toEqual([
      ['fe80::1', 3],
      ['fe80::1', 1],
    ]);
    const desired = plan({ config: shared, uplinks: weighted, uplinks6: views6, assignments: new Map() });
    const multipath = desired.ipv6.routes.find((r) => r.table === '3100');
    expect(multipath?.nexthops).toEqual([
      { gateway: 'fe80::1', dev: 'wan1', weight: 3, onlink: true },
      { gateway: 'fe80::1', dev: 'wan2', weight: 1, onlink: true },
    ]);
    // Each line's own table routes by its own device, though the next hop's address is the same.
    expect(desired.ipv6.routes.find((r) => r.table === '3102')?.nexthops).toEqual([{ gateway: 'fe80::1', dev: 'wan2', weight: 1, onlink: true }]);
  });

  test("IPv6 next hops: configured, else the uplink's IPv6 default route; a line with neither is down for IPv6 alone", () => {
    const routes = [{ table: 'main', dst: 'default', type: 'unicast', nexthops: [{ gateway: 'fe80::2', dev: 'wan2', weight: 1, onlink: false }], linkdown: false, metric: 1024 }];
    const views = viewUplinks6(config, uplinks, links, { rules: [], routes });
    expect(views.map((v) => [v.name, v.state, v.gateway, v.gatewaySource, v.address])).toEqual([
      ['isp1', 'up', 'fe80::1', 'config', '2001:db8:a::2'],
      ['isp2', 'up', 'fe80::2', 'route', '2001:db8:b::2'],
    ]);
    const without = viewUplinks6(config, uplinks, links, { rules: [], routes: [] });
    expect(without[1]?.state).toBe('down');
    expect(without[1]?.reason).toContain('no IPv6 next hop');
  });

  test('the same rules and tables in both families, host rules /128, IPv6 forwarding and accept_ra=2', () => {
    const routes = [{ table: 'main', dst: 'default', type: 'unicast', nexthops: [{ gateway: 'fe80::2', dev: 'wan2', weight: 1, onlink: false }], linkdown: false }];
    const uplinks6 = viewUplinks6(config, uplinks, [...links, LINK('lan0', ['fd00:18::1'])], { rules: [], routes });
    // Each line's inbound address (its AAAA record): the gateway's LAN address translated onto its prefix, or its own.
    expect(uplinks6.map((u) => u.inbound)).toEqual(['2001:db8:1:100::1', '2001:db8:b::2']);
    expect(viewUplinks6(config, uplinks, links, { rules: [], routes }).map((u) => u.inbound)).toEqual([undefined, '2001:db8:b::2']);
    const desired = plan({ config, uplinks, uplinks6, assignments: new Map([['198.18.0.10', record('isp1', MAC_A, { 'fd00:18::10': 1 })]]) });
    expect(desired.ipv6.rules.map((r) => [r.priority, r.table])).toEqual(desired.rules.map((r) => [r.priority, r.table]));
    expect(desired.ipv6.rules.find((r) => r.priority === 4134)?.src).toBe('2001:db8:a::2/128');
    expect(desired.ipv6.routes.find((r) => r.table === '3102')?.nexthops).toEqual([{ gateway: 'fe80::2', dev: 'wan2', weight: 1, onlink: true }]);
    expect(desired.sysctls).toMatchObject({ 'net.ipv6.conf.all.forwarding': '1', 'net.ipv6.conf.wan1.accept_ra': '2', 'net.ipv4.ip_forward': '1' });
    expect(desired.netfilter?.ipv6).toEqual({
      lanPrefix: 'fd00:18::/64',
      clients: new Map([['fd00:18::10', 0x01000000]]),
      maxClients: 65536 * IPV6_PER_HOST,
      translate: [
        { interface: 'wan1', prefix: '2001:db8:1:100::/64', inbound: null },
        { interface: 'wan2', prefix: null, inbound: null },
      ],
    });
    // The gateway's translated address is given to the gateway only where it is published (ddns, the line not excluded).
    const inboundWith = (ddns: string) =>
      plan({ config: parseConfig(`${NAT}ddns: { server: 203.0.113.53, zone: example.test, name: gw.example.test, key: /k${ddns} }\n`, 't.yaml'), uplinks, uplinks6, assignments: new Map() }).netfilter?.ipv6?.translate.map(
        (t) => t.inbound,
      );
    expect(inboundWith('')).toEqual([{ address: '2001:db8:1:100::1', to: 'fd00:18::1' }, null]);
    expect(inboundWith(', exclude: [isp1]')).toEqual([null, null]);
    const off = plan({ config: parseConfig(NAT.replace('mode: nat', 'mode: off').replace('    ipv6: { gateway: fe80::1, prefix: 2001:db8:1:100::/64 }\n', ''), 't.yaml'), uplinks, uplinks6, assignments: new Map() });
    expect(off.ipv6).toEqual({ rules: [], routes: [], addresses: [] });
    expect(off.netfilter?.ipv6).toBeNull();
    expect(Object.keys(off.sysctls).some((k) => k.includes('ipv6'))).toBe(false);
  });

  test("IPv6's own verdict where the line's IPv6 is probed; elsewhere the line's verdict and weight", () => {
    const routes = [{ table: 'main', dst: 'default', type: 'unicast', nexthops: [{ gateway: 'fe80::2', dev: 'wan2', weight: 1, onlink: false }], linkdown: false }];
    const views6 = viewUplinks6(config, uplinks, links, { rules: [], routes });
    const judged = uplinks.map((u) => (u.name === 'isp2' ? { ...u, state: 'down' as const, reason: 'probes lost' } : { ...u, weight: 4 }));
    const own = new Map([['isp1', { state: 'down' as const, reason: '0 of 1 targets answer' }]]);
    expect(withHealth6(views6, own, judged).map((v) => [v.name, v.state, v.reason, v.weight])).toEqual([
      ['isp1', 'down', 'IPv6: 0 of 1 targets answer', 4],
      ['isp2', 'down', 'probes lost', 1],
    ]);
    // No IPv6 verdict yet: the line's.
    expect(withHealth6(views6, new Map([['isp1', { state: 'unknown' as const, reason: 'no verdict yet' }]]), judged)[0]?.state).toBe('up');
  });

  test("a verdict moves IPv6's pools at once too: the prepared transition holds both families' routes", () => {
    const routes = [{ table: 'main', dst: 'default', type: 'unicast', nexthops: [{ gateway: 'fe80::2', dev: 'wan2', weight: 1, onlink: false }], linkdown: false }];
    const uplinks6 = viewUplinks6(config, uplinks, links, { rules: [], routes });
    const desired = plan({ config, uplinks, uplinks6, assignments: new Map() });
    const prepared = prepareTransitions(config, uplinks, desired.routes, uplinks6, desired.ipv6.routes).get('isp1');
    expect(prepared?.to).toBe('down');
    // isp1's pool table (3133) and the multipath table (3100) move to isp2 in each family; its own table stays.
    expect(prepared?.routes6.map((r) => [r.table, r.nexthops.map((h) => `${h.gateway} ${h.dev}`)])).toEqual([
      ['3100', ['fe80::2 wan2']],
      ['3133', ['fe80::2 wan2']],
    ]);
    expect(prepared?.routes.map((r) => r.table)).toEqual(['3100', '3133']);
    expect(prepareTransitions(config, uplinks, desired.routes).get('isp1')?.routes6).toEqual([]);
    // A line whose IPv6 is judged by its own probes keeps its IPv6 routes when its IPv4 verdict falls.
    const own = uplinks6.map((u) => (u.name === 'isp1' ? { ...u, ownVerdict: true as const } : u));
    expect(prepareTransitions(config, uplinks, desired.routes, own, desired.ipv6.routes).get('isp1')?.routes6).toEqual([]);
  });

  test("IPv6 routes of ours carry the kernel's metric 1024: kept as they are, any other metric replaced", () => {
    const owners = [{ tables: { base: 3100 }, rules: { priority: 4100 } }];
    const want = [{ table: '3101', dst: 'default', nexthops: [{ gateway: 'fe80::1', dev: 'wan1', weight: 1, onlink: true }] }];
    const have = (metric: number) => [{ table: '3101', dst: 'default', type: 'unicast', protocol: '211', metric, nexthops: want[0]?.nexthops ?? [], linkdown: false }];
    expect(diffRoutes(owners, want, have(1024), 'ipv6')).toEqual({ replace: [], remove: [] });
    expect(diffRoutes(owners, want, have(0), 'ipv4')).toEqual({ replace: [], remove: [] });
    expect(diffRoutes(owners, want, have(5), 'ipv6').remove).toHaveLength(1);
  });
});

/** Two lines, one host of each family in isp1's pool: isp1 translates the LAN's prefix onto its own, isp2 masquerades it. */
const IPV6 = {
  lanPrefix: 'fd00:18::/64',
  clients: new Map([['fd00:18::10', 0x01000000]]),
  maxClients: 16,
  translate: [
    { interface: 'wan1', prefix: '2001:db8:1:100::/64', inbound: { address: '2001:db8:1:100::1', to: 'fd00:18::1' } },
    { interface: 'wan2', prefix: null, inbound: null },
  ],
};
const INTENT = {
  connMask: 0xf0000000,
  poolMask: 0x0f000000,
  lans: ['lan0'],
  uplinks: [
    { name: 'isp1', interface: 'wan1', connMark: 0x10000000, poolMark: 0x01000000, group: 64100, snat: null },
    { name: 'isp2', interface: 'wan2', connMark: 0x20000000, poolMark: 0x02000000, group: 64101, snat: null },
  ],
  clients: new Map([['198.18.0.10', 0x01000000]]),
  maxClients: 2,
  choose: null,
  spread: null,
  ipv6: IPV6,
  fence: null,
};

/** The two lines up, for plans with policies. */
const VIEWS: UplinkView[] = [
  { name: 'isp1', index: 0, interface: 'wan1', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '192.0.2.1', pointToPoint: false },
  { name: 'isp2', index: 1, interface: 'wan2', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '192.0.2.5', pointToPoint: false },
];

describe('the nftables table in IPv6 nat mode', () => {
  test('one more map lookup per packet for IPv6, the LAN prefix translated per line (NPTv6) or masqueraded', () => {
    const text = renderSkeleton(INTENT);
    expect(text).toContain('map clients6 {\n    type ipv6_addr : verdict\n    size 16');
    expect(text).toContain('    ip saddr vmap @clients\n    ip6 saddr vmap @clients6\n');
    expect(text).toContain('    ip daddr vmap @clients\n    ip6 daddr vmap @clients6\n');
    // IPv6 packets take our hooks too: no `meta nfproto ipv6 return`.
    expect(text).toContain('type filter hook prerouting priority mangle; policy accept;\n    iifname vmap {');
    expect(text).toContain('oifname "wan1" ip6 saddr fd00:18::/64 snat ip6 prefix to 2001:db8:1:100::/64');
    expect(text).toContain('oifname "wan2" ip6 saddr fd00:18::/64 masquerade');
    expect(text).toContain('oifname "wan1" meta nfproto ipv4 masquerade');
    // Nothing new may be forwarded into a translated prefix (it would follow the default route back to the
    // ISP); the gateway's own translated address is given to the gateway before routing.
    expect(text).toContain('chain guard {\n    type filter hook forward priority mangle; policy accept;\n    ip6 daddr 2001:db8:1:100::/64 ct state new drop\n  }');
    // By the line it belongs to, and from the LAN (its hosts resolve the gateway's name too; the guard would drop them otherwise).
    expect(text).toContain(
      'chain inbound {\n    type nat hook prerouting priority dstnat; policy accept;\n    iifname "wan1" ip6 daddr 2001:db8:1:100::1 dnat ip6 to fd00:18::1\n    iifname "lan0" ip6 daddr 2001:db8:1:100::1 dnat ip6 to fd00:18::1\n  }',
    );
  });

  test("a MAC policy takes the host's IPv6 addresses too, and the hashing modes hash each family", () => {
    const withPolicy = parseConfig(`${NAT}balance: { mode: destination }\npolicies:\n  - { name: tv, match: { source: [02:00:00:00:00:0a] }, via: [isp2] }\n`, 't.yaml');
    const desired = plan({ config: withPolicy, uplinks: VIEWS, uplinks6: VIEWS, assignments: new Map([['198.18.0.10', record('isp1', MAC_A, { 'fd00:18::10': 1 })]]) });
    const netfilter = desired.netfilter as NonNullable<typeof desired.netfilter>;
    const text = renderSkeleton(netfilter);
    expect(text).toContain('set p1_hosts {\n    type ipv4_addr');
    expect(text).toContain('set p1_hosts6 {\n    type ipv6_addr');
    expect(text).toContain('ip saddr @p1_hosts goto pool_');
    expect(text).toContain('ip6 saddr @p1_hosts6 goto pool_');
    expect(text).toMatch(/meta nfproto ipv4 jhash ip saddr \. ip daddr mod 64/);
    expect(text).toMatch(/meta nfproto ipv6 jhash ip6 saddr \. ip6 daddr mod 64/);
    const whole = planNft(netfilter, EMPTY).text;
    expect(whole).toContain('add element inet dispatcher p1_hosts { 198.18.0.10 }');
    expect(whole).toContain('add element inet dispatcher p1_hosts6 { fd00:18::10 }');
  });

  test("a DSCP policy reads each family's own header; a destination list (IPv4 networks) takes no IPv6", () => {
    const dscp = parseConfig(
      `${NAT}policies:\n  - { name: voice, match: { dscp: [46] }, via: [isp2] }\n  - { name: tv, match: { source: [02:00:00:00:00:0a], dscp: [34] }, via: [isp2] }\n  - { name: bank, match: { source: [02:00:00:00:00:0a], destination: [203.0.113.0/24] }, via: [isp1] }\n`,
      't.yaml',
    );
    const desired = plan({ config: dscp, uplinks: VIEWS, uplinks6: VIEWS, assignments: new Map([['198.18.0.10', record('isp1', MAC_A, { 'fd00:18::10': 1 })]]) });
    const rules = renderSkeleton(desired.netfilter as NetfilterIntent)
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.includes('goto pool_'));
    expect(rules.map((r) => r.replace(/ goto pool_\S+$/, ''))).toEqual(['ip dscp 46', 'ip6 dscp 46', 'ip saddr @p2_hosts ip dscp 34', 'ip6 saddr @p2_hosts6 ip6 dscp 34', 'ip saddr @p3_hosts ip daddr 203.0.113.0/24']);
  });

  test("each family's addresses go to its own map, whole or by elements", () => {
    const whole = planNft(INTENT, EMPTY).text;
    expect(whole).toContain('add element inet dispatcher clients { 198.18.0.10 : jump pool_01000000_0f000000 }');
    expect(whole).toContain('add element inet dispatcher clients6 { fd00:18::10 : jump pool_01000000_0f000000 }');
    expect(renderWhole('', new Map([['fd00:18::10', 'p']]), false)).not.toContain('dispatcher clients {');
    expect(renderElements(['fd00:18::10', '198.18.0.9'], [['fd00:18::11', 'p']])).toBe(
      ['delete element inet dispatcher clients { 198.18.0.9 }', 'delete element inet dispatcher clients6 { fd00:18::10 }', 'add element inet dispatcher clients6 { fd00:18::11 : jump p }', ''].join('\n'),
    );
  });
});

describe('the iptables backend in IPv6 nat mode: ip6tables and an inet6 client set', () => {
  const backend = createBackend('iptables', { skeleton: readFileSync(new URL('../../iptables/skeleton.rules', import.meta.url), 'utf8') }) as NetfilterBackend<IptablesObserved, IptablesPayload>;
  const policyConfig = parseConfig(
    `${NAT.replace('backend: nftables', 'backend: iptables')}balance: { mode: destination }\npolicies:\n  - { name: tv, match: { source: [02:00:00:00:00:0a] }, via: [isp2] }\n  - { name: bank, match: { destination: [203.0.113.0/24] }, via: [isp1] }\n`,
    't.yaml',
  );
  const withPolicies = plan({ config: policyConfig, uplinks: VIEWS, uplinks6: VIEWS, assignments: new Map([['198.18.0.10', record('isp1', MAC_A, { 'fd00:18::10': 1 })]]) }).netfilter as NetfilterIntent;

  test('the same skeleton for ip6tables: the IPv6 set per packet, the LAN prefix onto the line (NETMAP) or masqueraded, nothing new into a translated prefix', async () => {
    const payload = backend.plan(INTENT, await backend.observe(new FakeKernel()));
    expect(payload.ipsetBefore).toContain('create dispatcher-clients6 hash:ip family inet6 hashsize 1024 maxelem 16 counters skbinfo\nadd dispatcher-clients6 fd00:18::10 skbmark 0x1000000/0xf000000\n');
    const rules6 = payload.ip6tables.split('\n');
    // Nothing new is forwarded into a translated prefix; the gateway's own translated address is its, before routing.
    expect(rules6).toContain('-I FORWARD 1 -j DISPATCHER-FWD');
    expect(rules6).toContain('-A DISPATCHER-FWD -d 2001:db8:1:100::/64 -m conntrack --ctstate NEW -j DROP');
    expect(rules6).toContain('-I PREROUTING 1 -j DISPATCHER-DNAT');
    expect(rules6).toContain('-A DISPATCHER-DNAT -d 2001:db8:1:100::1/128 -i wan1 -j DNAT --to-destination fd00:18::1');
    expect(rules6).toContain('-A DISPATCHER-DNAT -d 2001:db8:1:100::1/128 -i lan0 -j DNAT --to-destination fd00:18::1');
    expect(rules6).toContain('-A DISPATCHER-PRE -i lan0 -j SET --map-set dispatcher-clients6 src --map-mark');
    expect(rules6).toContain('-A DISPATCHER-COUNT -j SET --map-set dispatcher-clients6 dst --map-mark');
    expect(rules6).toContain('-A DISPATCHER-NAT -s fd00:18::/64 -o wan1 -j NETMAP --to 2001:db8:1:100::/64');
    expect(rules6).toContain('-A DISPATCHER-NAT -s fd00:18::/64 -o wan2 -j MASQUERADE');
    // IPv4 is what it always was: masquerade per uplink, no guard, no inbound address (nor their chains).
    expect(payload.iptables.split('\n')).toContain('-A DISPATCHER-NAT -o wan1 -j MASQUERADE');
    expect(payload.iptables).not.toMatch(/DROP|DISPATCHER-FWD|DISPATCHER-DNAT/);
    expect(backend.describe(payload)).toContain('# ip6tables-restore --noflush\n*mangle');
  });

  test('loaded into the kernel it plans nothing more; a moved IPv6 address is one set entry, known without reading back', async () => {
    const kernel = new FakeKernel();
    await backend.apply(kernel, backend.plan(INTENT, await backend.observe(kernel)));
    expect(backend.isEmpty(backend.plan(INTENT, await backend.observe(kernel)))).toBe(true);
    const moved = { ...INTENT, ipv6: { ...IPV6, clients: new Map([['fd00:18::10', 0x02000000]]) } };
    const observed = await backend.observe(kernel);
    const move = backend.plan(moved, observed);
    expect(move).toEqual({ ipsetBefore: 'add dispatcher-clients6 fd00:18::10 skbmark 0x2000000/0xf000000\n', iptables: '', ip6tables: '', ipsetAfter: '' });
    const expected = backend.expected(move);
    expect(expected).not.toBeNull();
    await backend.apply(kernel, move);
    expect(backend.isEmpty(backend.plan(moved, expected as IptablesObserved))).toBe(true);
    expect(backend.isEmpty(backend.plan(moved, await backend.observe(kernel)))).toBe(true);
    // The kernel's IPv4 client set holds only IPv4: a restart adopts a host by its IPv4 address.
    expect([...backend.classified(await backend.observe(kernel)).keys()]).toEqual(['198.18.0.10']);
  });

  test("policies: a MAC policy's hosts' IPv6 addresses in a set of their own; a destination list (IPv4 networks) takes no IPv6; the hash covers the whole IPv6 address", () => {
    const payload = backend.plan(withPolicies, { netfilter: [], netfilter6: [], sets: { sets: [], entries: [] } });
    expect(payload.ipsetBefore).toContain('create dispatcher-p1-src6 hash:net family inet6\nadd dispatcher-p1-src6 fd00:18::10/128\n');
    expect(payload.ipsetBefore).toContain('create dispatcher-p1-src hash:net family inet\nadd dispatcher-p1-src 198.18.0.10/32\n');
    const choose = (text: string) => text.split('\n').filter((r) => r.startsWith('-A DISPATCHER-CHOOSE '));
    const [mac, bank, otherwise] = choose(payload.iptables);
    expect(mac).toMatch(/^-A DISPATCHER-CHOOSE -m set --match-set dispatcher-p1-src src -g DISPATCHER-POOL-[0-9]+$/);
    expect(bank).toMatch(/^-A DISPATCHER-CHOOSE -m set --match-set dispatcher-p2-dst dst -g DISPATCHER-POOL-[0-9]+$/);
    expect(choose(payload.ip6tables)).toEqual([mac?.replace('p1-src src', 'p1-src6 src'), otherwise]);
    expect(payload.ip6tables).toContain('-j HMARK --hmark-src-prefix 128 --hmark-dst-prefix 128 ');
    expect(payload.iptables).toContain('-j HMARK --hmark-src-prefix 32 --hmark-dst-prefix 32 ');
  });

  test('IPv6 turned off removes only our ip6tables chains and IPv6 sets; flush then leaves both families as before the first start', async () => {
    const kernel = new FakeKernel();
    const pristine = kernel.dump();
    const first = backend.plan(withPolicies, await backend.observe(kernel));
    // Tables the run created are recorded per family, so that flush can delete them bare.
    expect(backend.created(await backend.observe(kernel), first)).toEqual(['mangle', 'nat', 'ip6 mangle', 'ip6 nat']);
    await backend.apply(kernel, first);
    const off = { ...withPolicies, ipv6: null };
    await backend.apply(kernel, backend.plan(off, await backend.observe(kernel)));
    const observed = await backend.observe(kernel);
    expect((observed.netfilter6 ?? []).flatMap((t) => t.chains.map((c) => c.name)).filter((c) => c.startsWith('DISPATCHER'))).toEqual([]);
    expect(observed.sets.sets.map((s) => s.name).sort()).toEqual(['dispatcher-clients', 'dispatcher-p1-src', 'dispatcher-p2-dst']);
    expect(backend.isEmpty(backend.plan(off, observed))).toBe(true);
    const removal = await backend.flush(kernel, await backend.observe(kernel), ['mangle', 'nat', 'ip6 mangle', 'ip6 nat']);
    expect(removal.tablesDeleted).toEqual(['mangle', 'nat', 'ip6 mangle', 'ip6 nat']);
    expect(kernel.dump()).toBe(pristine);
  });

  test('flush with IPv6 on removes both families at once', async () => {
    const kernel = new FakeKernel();
    const pristine = kernel.dump();
    await backend.apply(kernel, backend.plan(withPolicies, await backend.observe(kernel)));
    expect(kernel.dump()).toContain('## ip6tables\n');
    const removal = await backend.flush(kernel, await backend.observe(kernel), ['mangle', 'nat', 'ip6 mangle', 'ip6 nat']);
    expect(removal.chains).toContain('ip6 mangle/DISPATCHER-PRE');
    expect(removal.chains).toContain('nat/DISPATCHER-NAT');
    expect(kernel.dump()).toBe(pristine);
  });

  test("the watch's check reads both client sets' headers in one question, and changes when another program empties one", async () => {
    const kernel = new FakeKernel();
    await backend.apply(kernel, backend.plan(INTENT, await backend.observe(kernel)));
    const check = backend.watch.check as NonNullable<typeof backend.watch.check>;
    const once = async (runner: FakeKernel): Promise<string> => check.read((await runner.run(check.once)).stdout);
    const before = kernel.calls.length;
    expect(await once(kernel)).toBe('dispatcher-clients: 1 references, 1 entries; dispatcher-clients6: 1 references, 1 entries');
    expect(kernel.calls.length - before).toBe(1);
    await kernel.run(['ipset', 'restore'], { input: 'flush dispatcher-clients6\n' });
    expect(await once(kernel)).toBe('dispatcher-clients: 1 references, 1 entries; dispatcher-clients6: 1 references, 0 entries');
    expect(await once(new FakeKernel())).toBe('dispatcher-clients: absent; dispatcher-clients6: absent');
    // The session asks the same question of one ipset kept running, and reads the same answer.
    const session = new ToolSession(kernel, check.session as SessionSpec, systemClock);
    try {
      expect(check.read(await session.ask(check.request))).toBe('dispatcher-clients: 1 references, 1 entries; dispatcher-clients6: 1 references, 0 entries');
      expect(check.read(await session.ask(check.request))).toBe(await once(kernel));
      expect(session.starts).toBe(1);
    } finally {
      session.close();
    }
  });

  test('a kernel whose ip6tables cannot be read: an IPv4-only gateway works on and leaves it alone; one that wants IPv6 fails its run with the reason', async () => {
    const kernel = new FakeKernel().handle(['ip6tables-save'], () => ({ stdout: '', stderr: 'ip6tables-save: Address family not supported by protocol\n', exitCode: 1 }));
    const observed = await backend.observe(kernel);
    expect(observed.netfilter6).toBeNull();
    const ipv4Only = backend.plan({ ...INTENT, ipv6: null }, observed);
    expect(ipv4Only.iptables).toContain('*mangle');
    expect(ipv4Only.ip6tables).toBe('');
    // Planned blind, every hook would be inserted again.
    expect(() => backend.plan(INTENT, observed)).toThrow(/^ip6tables-save could not be read \(ip6tables-save: Address family not supported by protocol\): IPv6 nat mode/);
  });

  test("another program's ip6tables rule using our mark bits refuses the config, naming the tool", () => {
    const foreign = parseIptablesSave('*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -j MARK --set-xmark 0x1000000/0x1000000\nCOMMIT\n');
    const problems = backend.collisions(policyConfig, { netfilter: [], netfilter6: foreign, sets: { sets: [], entries: [] } });
    expect(problems).toHaveLength(1);
    expect(problems[0]?.problem).toMatch(/^ip6tables rule "-t mangle -A PREROUTING -j MARK --set-xmark 0x1000000\/0x1000000" of other software/);
  });
});

describe("explain for one of a host's IPv6 addresses", () => {
  const config = parseConfig(NAT, 't.yaml');
  const views6: UplinkView[] = [
    { ...(VIEWS[0] as UplinkView), gateway: 'fe80::1', ownVerdict: true },
    { ...(VIEWS[1] as UplinkView), gateway: 'fe80::2', address: '2001:db8:b::2', inbound: '2001:db8:b::2' },
  ];
  const assignments = new Map([['198.18.0.10', record('isp1', MAC_A, { 'fd00:18::10': 1 })]]);

  test("an address of a known host: the host's pool, the IPv6 classifier's mark, IPv6's rule and table, the translated source, and what a dead line's IPv6 does", () => {
    const result = explain6(config, views6, assignments, 'fd00:18::10');
    expect(result).toMatchObject({ verdict: 'assigned', pool: 'isp1', mark: 0x01000000 });
    expect(result.steps[0]).toContain("one of host 198.18.0.10's IPv6 addresses");
    expect(result.steps).toContain('the IPv6 client map (clients6) gives its packets the pool mark 0x1000000/0xf000000');
    expect(result.steps.some((s) => /^IPv6 table 3133: default via isp1 \(via fe80::1 dev wan1\)$/.test(s))).toBe(true);
    expect(result.steps.some((s) => s.includes("its own IPv6 probes' verdict") && s.includes('seen as 2001:db8:1:100::10'))).toBe(true);
    expect(result.ifUplinkDies).toMatch(/^if isp1's IPv6 dies: IPv6 table 3133 points at isp2 \(via fe80::2 dev wan2\); its IPv6 connections/);
    // On a masquerading line the host is seen as the line's address.
    const onIsp2 = explain6(config, views6, new Map([['198.18.0.10', record('isp2', MAC_A, { 'fd00:18::10': 1 })]]), 'fd00:18::10');
    expect(onIsp2.steps.some((s) => s.includes("masqueraded to the line's own address (2001:db8:b::2)"))).toBe(true);
  });

  test('an unknown address, one outside the LAN prefix, and IPv6 off say so', () => {
    expect(explain6(config, views6, assignments, 'fd00:18::99')).toMatchObject({ verdict: 'not assigned', pool: null, mark: null });
    // With a hashing mode its new connections still get a pool mark from the hash: said so, not "no mark".
    const hashing = parseConfig(`${NAT}balance: { mode: destination }\n`, 't.yaml');
    const unknown = explain6(hashing, views6, assignments, 'fd00:18::99');
    expect(unknown.steps.some((s) => s.startsWith('balance: destination'))).toBe(true);
    expect(unknown.steps.some((s) => s.includes('unless a policy or the balancing mode gives its connection one'))).toBe(true);
    expect(explain6(config, views6, assignments, '2001:db8:9::1').verdict).toBe('not a client');
    const off = parseConfig('lan: { interfaces: [lan0] }\nuplinks: [{ name: isp1, interface: wan1 }]\n', 't.yaml');
    expect(explain6(off, [], assignments, 'fd00:18::10').steps[0]).toContain('IPv6 is off');
  });

  test('the address asked about: canonical IPv6, or IPv4; link-local and multicast refused', () => {
    expect(checkExplainAddress('FD00:18:0:0::10')).toBe('fd00:18::10');
    expect(checkExplainAddress('198.18.0.10')).toBe('198.18.0.10');
    expect(() => checkExplainAddress('fe80::1')).toThrow(/not link-local or multicast/);
    expect(() => checkExplainAddress('ff02::1')).toThrow(/IPv6 address a LAN host can have/);
    expect(() => checkExplainAddress('198.18.0.256')).toThrow(/not a unicast IPv4 address/);
  });
});

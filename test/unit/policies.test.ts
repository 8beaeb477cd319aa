// Policies' pure parts: what the config accepts and refuses (with the field
// and the fix), what a match takes and when an earlier policy hides a later
// one, the pools `via` lists become (routes and rules that follow the lines'
// health while the packet filter stays as it is), MACs resolved to their
// clients' addresses, and how each backend writes the choose chain.

import { describe, expect, test } from '@jest/globals';
import { desiredIptables } from '../../src/backends/iptables/desired.js';
import { hostSets, renderSkeleton } from '../../src/backends/nftables/render.js';
import { parseConfig } from '../../src/config/load.js';
import { policyFor, viaPools } from '../../src/core/balance/policies.js';
import { covers, matchesPacket, type PolicyMatch } from '../../src/core/balance/policy-match.js';
import { explain } from '../../src/core/explain.js';
import { planNetfilter } from '../../src/core/netfilter.js';
import { planRoutes, planRules } from '../../src/core/plan.js';
import { ConfigError } from '../../src/model/errors.js';
import type { ClientRecord } from '../../src/model/state.js';
import { skeleton } from '../helpers/scenario.js';
import { uplinkView } from '../helpers/uplink-view.js';

const UPLINKS = `
lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }
uplinks:
  - { name: isp1, interface: ppp0, weight: 2 }
  - { name: isp2, interface: ppp1 }
  - { name: lte, interface: wan0, tier: 2 }
`;
const config = (policies: string, extra = '') => parseConfig(`${UPLINKS}${extra}\npolicies:\n${policies}`, 'test.yaml');

/** The problems a config is refused with, as "field: problem — fix". */
function refused(policies: string, extra = ''): string[] {
  try {
    config(policies, extra);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.field}: ${p.problem} — ${p.fix}`);
    throw error;
  }
  return [];
}

const VIEWS = [uplinkView('isp1', 0, 'ppp0', { weight: 2 }), uplinkView('isp2', 1, 'ppp1'), uplinkView('lte', 2, 'wan0', { tier: 2 })];
const down = (name: string) => VIEWS.map((v) => (v.name === name ? { ...v, state: 'down' as const, reason: 'dead' } : v));

const match = (over: Partial<PolicyMatch>): PolicyMatch => ({ sources: [], macs: [], destinations: [], protocols: [], ports: [], dscp: [], ...over });

describe('the config', () => {
  test('normalises a match: networks in CIDR form, MACs in lower case, a port without protocol is tcp and udp, each policy named', () => {
    const parsed = config(`
  - { name: bank, match: { destination: [203.0.113.7, 203.0.113.0/24], protocol: tcp, port: [443, "8000-8080"] }, via: [isp2, isp1] }
  - { match: { source: [198.18.5.0/24, 02:AA:bb:cc:dd:EE], port: [53] }, balance: connection }
  - { match: { dscp: [46] }, via: [lte] }
`);
    expect(parsed.policies).toEqual([
      {
        name: 'bank',
        match: match({
          destinations: ['203.0.113.7/32', '203.0.113.0/24'],
          protocols: ['tcp'],
          ports: [
            { from: 443, to: 443 },
            { from: 8000, to: 8080 },
          ],
        }),
        action: { kind: 'via', via: ['isp2', 'isp1'] },
      },
      { name: '2', match: match({ sources: ['198.18.5.0/24'], macs: ['02:aa:bb:cc:dd:ee'], protocols: ['tcp', 'udp'], ports: [{ from: 53, to: 53 }] }), action: { kind: 'balance', mode: 'connection' } },
      { name: '3', match: match({ dscp: [46] }), action: { kind: 'via', via: ['lte'] } },
    ]);
  });

  test('refuses each wrong policy with its field and the fix, and changes nothing', () => {
    expect(
      refused(`
  - { match: { destination: [203.0.113.0/24] }, via: [isp9, isp1] }
  - { match: { destination: [198.51.100.0/24] } }
  - { match: { destination: [198.51.100.0/25] }, via: [isp1], balance: host }
  - { match: { protocol: icmp, port: [7] }, via: [isp1] }
  - { match: { port: ["9000-8000"] }, via: [isp1] }
  - { match: { port: [1, 2, 3, 4, 5, 6, 7, 8, "10-11", "20-21", "30-31", "40-41"] }, via: [isp1] }
  - { match: { destination: [0.0.0.0/0] }, via: [isp1] }
  - { match: { source: [02:aa:bb] }, via: [isp1] }
  - { match: { dscp: [64] }, via: [isp1, isp1] }
`),
    ).toEqual([
      'policies[1]: says neither via nor balance — give a policy one action: via: [lines in order] or balance: host | destination | connection',
      'policies[2]: says both via and balance — give a policy one action: via: [lines in order] or balance: host | destination | connection',
      'policies[3].match.port: icmp has no ports — match ports with tcp, udp, sctp, or leave protocol out (tcp and udp)',
      'policies[4].match.port[0]: "9000-8000" is not a range of ports — write the lower port first, both from 1 to 65535, e.g. "8000-8080"',
      'policies[5].match.port: takes 16 port slots (a range takes two) — list at most 15 slots in one policy; split the ports over two policies with the same action',
      'policies[6].match.destination[0]: "0.0.0.0/0" is not an address or a network (other than 0.0.0.0/0) — list addresses or networks, e.g. [203.0.113.0/24]; leave destination out to match every destination',
      'policies[7].match.source[0]: "02:aa:bb" is not an address, a network or a MAC address — list addresses, networks or MAC addresses, e.g. [198.18.5.0/24, 02:00:00:00:00:01]',
      'policies[8].match.dscp[0]: must be a whole number from 0 to 63, not 64 — write DSCP values from 0 to 63, e.g. 46 (EF, voice)',
      'policies[8].via[1]: "isp1" is listed twice — list each uplink once',
      'policies[0].via[0]: no uplink is named "isp9" — use one of: isp1, isp2, lte',
    ]);
  });

  test('a policy an earlier one hides is refused: a wider destination, two halves that make the whole, the same match again; a narrower earlier one is fine', () => {
    expect(
      refused(`
  - { match: { destination: [203.0.113.0/25, 203.0.113.128/25] }, via: [isp1] }
  - { match: { destination: [203.0.113.64/26], protocol: tcp, port: [443] }, via: [isp2] }
  - { name: voice, match: { dscp: [46] }, via: [isp1] }
  - { name: voice, match: { dscp: [46] }, via: [isp2] }
  - { match: { source: [198.18.0.10], destination: [198.51.100.1] }, via: [isp2] }
  - { match: { source: [198.18.0.0/24] }, via: [isp1] }
`),
    ).toEqual([
      'policies[3].name: "voice" already names policies[2] — give each policy its own name',
      'policies[1].match: can never match: policies[0] comes first and takes all of its connections — put it before policies[0], narrow policies[0], or remove it',
      'policies[3].match: can never match: policies[2] comes first and takes all of its connections — put it before policies[2], narrow policies[2], or remove it',
    ]);
  });

  test('one mistake in a later policy is named with its field, not a crash of the shadow check', () => {
    expect(
      refused(`
  - { match: { destination: [203.0.113.0/24] }, via: [isp1] }
  - { match: { destination: [203.0.113.300] }, via: [isp2] }
`),
    ).toEqual(['policies[1].match.destination[0]: "203.0.113.300" is not an address or a network (other than 0.0.0.0/0) — list addresses or networks, e.g. [203.0.113.0/24]; leave destination out to match every destination']);
    expect(refused('  - { match: { protocol: icmp, port: [7] }, via: [isp1] }\n  - { match: { dscp: [46] }, via: [isp2] }', '')).toHaveLength(1);
  });

  test("assign: traffic with a hashing mode is refused: the pool counters do not say where a client's connections go", () => {
    expect(refused('  - { match: { dscp: [46] }, via: [isp1] }', '\nbalance: { mode: destination, assign: traffic }')).toEqual([
      "balance.assign: traffic weighs clients by their pools' bytes, but in destination mode a client's connections are spread by a hash, not by its pool — use assign: count with this mode, or mode: host with assign: traffic",
    ]);
  });

  test('every distinct via list is a pool: with the default mask 15 pools, uplinks included', () => {
    const lists = Array.from({ length: 13 }, (_, i) => `  - { match: { destination: [203.0.113.${i}] }, via: [${i % 2 ? 'isp1, isp2' : 'isp2, isp1'}${i > 1 ? ', lte' : ''}] }`);
    // 13 policies, 4 distinct lists: fits.
    expect(refused(lists.join('\n'))).toEqual([]);
    const distinct = ['isp1', 'isp2', 'lte', 'isp1, isp2', 'isp2, isp1', 'isp1, lte', 'lte, isp1', 'isp2, lte', 'lte, isp2', 'isp1, isp2, lte', 'isp1, lte, isp2', 'isp2, isp1, lte', 'isp2, lte, isp1'];
    const many = distinct.map((via, i) => `  - { match: { destination: [203.0.113.${i}] }, via: [${via}] }`).join('\n');
    expect(refused(many)).toEqual([
      "policies[12].via: the policies name 13 different via lists; with 3 uplinks that is 16 pools, and 0xff000000's pool field holds 15 — give policies that go the same way the same via list, or widen marks.mask (0xfff00000 holds 32 pools)",
    ]);
    expect(refused(many, '\nmarks: { mask: "0xfff00000" }')).toEqual([]);
  });
});

describe('what a match takes', () => {
  test('every key must hold, any entry of a list may; a fact a match needs and the packet lacks is no match', () => {
    const bank = match({ sources: ['198.18.5.0/24'], macs: ['02:00:00:00:00:01'], destinations: ['203.0.113.0/24'], protocols: ['tcp'], ports: [{ from: 443, to: 443 }] });
    expect(matchesPacket(bank, { source: '198.18.5.9', destination: '203.0.113.7', protocol: 'tcp', port: 443 })).toBe(true);
    expect(matchesPacket(bank, { source: '198.18.0.10', mac: '02:00:00:00:00:01', destination: '203.0.113.7', protocol: 'tcp', port: 443 })).toBe(true);
    expect(matchesPacket(bank, { source: '198.18.0.10', destination: '203.0.113.7', protocol: 'tcp', port: 443 })).toBe(false);
    expect(matchesPacket(bank, { source: '198.18.5.9', destination: '203.0.113.7', protocol: 'udp', port: 443 })).toBe(false);
    expect(matchesPacket(bank, { source: '198.18.5.9', destination: '203.0.113.7', protocol: 'tcp' })).toBe(false);
    expect(matchesPacket(match({ dscp: [46] }), { source: '198.18.0.1', dscp: 46 })).toBe(true);
  });

  test('an earlier match covers a later one only where it provably takes every packet of it', () => {
    expect(covers(match({}), match({ dscp: [46] }))).toBe(true);
    expect(covers(match({ destinations: ['10.0.0.0/25', '10.0.0.128/25'] }), match({ destinations: ['10.0.0.0/24'] }))).toBe(true);
    expect(covers(match({ destinations: ['10.0.0.0/25'] }), match({ destinations: ['10.0.0.0/24'] }))).toBe(false);
    expect(
      covers(
        match({
          ports: [
            { from: 1, to: 100 },
            { from: 101, to: 200 },
          ],
        }),
        match({ ports: [{ from: 50, to: 150 }] }),
      ),
    ).toBe(true);
    expect(covers(match({ protocols: ['tcp', 'udp'] }), match({ protocols: ['tcp'] }))).toBe(true);
    expect(covers(match({ protocols: ['tcp'] }), match({ protocols: ['tcp', 'udp'] }))).toBe(false);
    // An address says nothing of a MAC; a later policy of any source is wider than one of some sources.
    expect(covers(match({ sources: ['198.18.0.0/16'] }), match({ macs: ['02:00:00:00:00:01'] }))).toBe(false);
    expect(covers(match({ macs: ['02:00:00:00:00:01', '02:00:00:00:00:02'] }), match({ macs: ['02:00:00:00:00:02'] }))).toBe(true);
    expect(covers(match({ sources: ['198.18.0.0/16'] }), match({}))).toBe(false);
  });

  test('first match wins', () => {
    const parsed = config(`
  - { name: one, match: { destination: [203.0.113.40] }, via: [isp2] }
  - { name: four, match: { destination: [203.0.113.40/30] }, via: [lte] }
`);
    expect(policyFor(parsed, { source: '198.18.0.10', destination: '203.0.113.40' })?.policy.name).toBe('one');
    expect(policyFor(parsed, { source: '198.18.0.10', destination: '203.0.113.41' })?.policy.name).toBe('four');
    expect(policyFor(parsed, { source: '198.18.0.10', destination: '203.0.113.44' })).toBeNull();
  });
});

describe('explain', () => {
  test('names the policy that takes a connection; a policy it lacks a fact for is mentioned only when what is known matches', () => {
    const parsed = config('  - { name: web, match: { destination: [203.0.113.20/31], protocol: tcp, port: [7] }, via: [lte, isp1] }');
    const clients = new Map<string, ClientRecord>([['198.18.0.10', { uplink: 'isp1', mac: '', interface: 'lan0', pinned: false, firstSeen: 0 }]]);
    const known = explain(parsed, VIEWS, clients, '198.18.0.10', { to: '203.0.113.20', protocol: 'tcp', port: 7 });
    expect(known.to).toMatchObject({ policy: 'web', uplink: 'lte', mark: 0x4000000 });
    const unsure = explain(parsed, VIEWS, clients, '198.18.0.10', { to: '203.0.113.20' });
    expect(unsure.steps).toContain("policy web would need the connection's protocol (--protocol) and port (--port) to be judged; taken as not matching");
    const elsewhere = explain(parsed, VIEWS, clients, '198.18.0.10', { to: '203.0.113.99' });
    expect(elsewhere.steps.some((s) => s.includes('would need'))).toBe(false);
  });
});

describe('via lists are pools', () => {
  const parsed = config(`
  - { name: web, match: { destination: [203.0.113.20/31], protocol: tcp, port: [7] }, via: [lte, isp1] }
  - { name: also, match: { dscp: [46] }, via: [lte, isp1] }
  - { name: mac, match: { source: [02:00:00:00:00:0b] }, via: [lte] }
  - { name: spread, match: { destination: [203.0.113.90] }, balance: connection }
`);

  test('numbered after the uplinks, one per distinct list; a rule and a table each, routed by the first live line, else by the lines that carry', () => {
    expect(viaPools(parsed)).toEqual([
      { index: 3, via: ['lte', 'isp1'] },
      { index: 4, via: ['lte'] },
    ]);
    expect(planRules(parsed, VIEWS).filter((r) => r.priority >= 4169)).toEqual([
      { priority: 4169, src: 'all', fwmark: 0x4000000, fwmask: 0xf000000, table: '3136' },
      { priority: 4170, src: 'all', fwmark: 0x5000000, fwmask: 0xf000000, table: '3137' },
      { priority: 4199, src: 'all', table: '3100' },
    ]);
    const routeOf = (views: typeof VIEWS, table: string) =>
      planRoutes(parsed, views)
        .find((r) => r.table === table)
        ?.nexthops.map((h) => h.dev);
    // lte (tier 2) stands by, yet a list that names it first sends by it.
    expect(routeOf(VIEWS, '3136')).toEqual(['wan0']);
    expect(routeOf(down('lte'), '3136')).toEqual(['ppp0']);
    // A list with no live line: over the lines that carry, weighted.
    expect(routeOf(down('lte'), '3137')).toEqual(['ppp0', 'ppp1']);
  });

  test("a line's death and return change routes only: the packet filter's intent is the same", () => {
    const clients = new Map<string, ClientRecord>([['198.18.0.11', { uplink: 'isp1', mac: '02:00:00:00:00:0B', interface: 'lan0', pinned: false, firstSeen: 0 }]]);
    expect(planNetfilter(parsed, down('lte'), clients)).toEqual(planNetfilter(parsed, VIEWS, clients));
    expect(planNetfilter(parsed, down('isp1'), clients).choose).toEqual(planNetfilter(parsed, VIEWS, clients).choose);
  });

  test('MACs become the addresses of the clients that have them; a policy of MACs no client has takes nothing (iptables: no rule; nftables: an empty host set)', () => {
    const clients = new Map<string, ClientRecord>([['198.18.0.11', { uplink: 'isp1', mac: '02:00:00:00:00:0B', interface: 'lan0', pinned: false, firstSeen: 0 }]]);
    const some = planNetfilter(parsed, VIEWS, clients);
    expect(some.choose?.policies[2]?.match.sources).toEqual({ networks: [], hosts: ['198.18.0.11/32'] });
    const none = planNetfilter(parsed, VIEWS, new Map());
    expect(none.choose?.policies[2]?.match.sources).toEqual({ networks: [], hosts: [] });
    const iptables = desiredIptables(skeleton, none);
    expect(iptables.policySets.map((s) => s.name)).toEqual(['dispatcher-p1-dst', 'dispatcher-p4-dst']);
    expect((iptables.tables[0]?.rules ?? []).some((r) => r.args.includes('DISPATCHER-POOL-5'))).toBe(false);
    // nftables: the rule names the host set; the set's elements are the clients, so the rules (and the digest) stay as they were.
    expect(renderSkeleton(none)).toContain('ip saddr @p3_hosts goto pool_05000000_0f000000');
    expect(renderSkeleton(none)).toBe(renderSkeleton(some));
    expect(hostSets(some)).toEqual(new Map([['p3_hosts', ['198.18.0.11/32']]]));
  });

  test('iptables: DISPATCHER-CHOOSE in iptables-save order (protocol first), one rule per DSCP value, a chain per via pool, set lookups for the lists', () => {
    const clients = new Map<string, ClientRecord>([['198.18.0.11', { uplink: 'isp1', mac: '02:00:00:00:00:0b', interface: 'lan0', pinned: false, firstSeen: 0 }]]);
    const desired = desiredIptables(skeleton, planNetfilter(parsed, VIEWS, clients));
    const mangle = desired.tables.find((t) => t.name === 'mangle');
    const rules = (chain: string) => (mangle?.rules ?? []).filter((r) => r.chain === chain).map((r) => r.args.join(' '));
    expect(rules('DISPATCHER-CHOOSE')).toEqual([
      '-p tcp -m set --match-set dispatcher-p1-dst dst -m multiport --dports 7 -g DISPATCHER-POOL-4',
      '-m dscp --dscp 0x2e -g DISPATCHER-POOL-4',
      '-m set --match-set dispatcher-p3-src src -g DISPATCHER-POOL-5',
      '-m set --match-set dispatcher-p4-dst dst -g DISPATCHER-HASH-CONN',
    ]);
    expect(rules('DISPATCHER-POOL-4')).toEqual(['-j MARK --set-xmark 0x4000000/0xf000000']);
    expect(rules('DISPATCHER-PRE')).toContain('-i lan0 -m connmark --mark 0x0/0xf0000000 -j DISPATCHER-CHOOSE');
    expect(desired.policySets).toEqual([
      { name: 'dispatcher-p1-dst', type: 'hash:net', family: 'inet', members: ['203.0.113.20/31'] },
      { name: 'dispatcher-p3-src', type: 'hash:net', family: 'inet', members: ['198.18.0.11/32'] },
      { name: 'dispatcher-p4-dst', type: 'hash:net', family: 'inet', members: ['203.0.113.90/32'] },
    ]);
    // A bucket block of one (2:1 is 43:21 buckets) is printed as iptables-save prints it: no full mask.
    expect(rules('DISPATCHER-SPREAD')).toContain('-m mark --mark 0x8000002a -j MARK --set-xmark 0x1000000/0xffffffff');
  });

  test('a list written twice over (an address and the MAC of the same client, a repeated network) is one entry each; DSCP under 16 as iptables-save prints it', () => {
    const repeated = config(`  - { match: { source: [198.18.0.11, 02:00:00:00:00:0b, 198.18.0.11/32], destination: [203.0.113.0/24, 203.0.113.0/24], dscp: [10] }, via: [isp2] }`);
    const clients = new Map<string, ClientRecord>([['198.18.0.11', { uplink: 'isp1', mac: '02:00:00:00:00:0b', interface: 'lan0', pinned: false, firstSeen: 0 }]]);
    const desired = desiredIptables(skeleton, planNetfilter(repeated, VIEWS, clients));
    expect(desired.policySets.map((s) => s.members)).toEqual([['198.18.0.11/32'], ['203.0.113.0/24']]);
    expect(
      desired.tables
        .find((t) => t.name === 'mangle')
        ?.rules.find((r) => r.chain === 'DISPATCHER-CHOOSE')
        ?.args.join(' '),
    ).toContain('-m dscp --dscp 0x0a');
  });

  test('in a hashing mode a pinned client keeps its pool: a rule after the policies, before the mode', () => {
    const hashing = config('  - { match: { destination: [203.0.113.9] }, via: [isp2] }', '\nbalance: { mode: destination }');
    const clients = new Map<string, ClientRecord>([
      ['198.18.0.11', { uplink: 'isp2', mac: '', interface: 'lan0', pinned: true, firstSeen: 0 }],
      ['198.18.0.12', { uplink: 'isp1', mac: '', interface: 'lan0', pinned: false, firstSeen: 0 }],
    ]);
    const mangle = desiredIptables(skeleton, planNetfilter(hashing, VIEWS, clients)).tables.find((t) => t.name === 'mangle');
    expect((mangle?.rules ?? []).filter((r) => r.chain === 'DISPATCHER-CHOOSE').map((r) => r.args.join(' '))).toEqual([
      '-m set --match-set dispatcher-p1-dst dst -g DISPATCHER-POOL-4',
      '-m set --match-set dispatcher-p2-src src -j RETURN',
      '-g DISPATCHER-HASH-DST',
    ]);
    expect(renderSkeleton(planNetfilter(hashing, VIEWS, clients))).toContain('    ip saddr @p2_hosts return\n    goto hash_destination\n');
    // Host mode: a pinned client keeps its pool anyway; no rule for it.
    expect(planNetfilter(config('  - { match: { destination: [203.0.113.9] }, via: [isp2] }'), VIEWS, clients).choose?.policies.map((p) => p.name)).toEqual(['1']);
  });

  test('nftables: a choose chain of one rule per policy with anonymous sets, goto the via pool chain or the hash chain', () => {
    const text = renderSkeleton(planNetfilter(parsed, VIEWS, new Map()));
    expect(text).toContain(
      [
        '  chain choose {',
        '    ip daddr 203.0.113.20/31 tcp dport 7 goto pool_04000000_0f000000',
        '    ip dscp 46 goto pool_04000000_0f000000',
        '    ip saddr @p3_hosts goto pool_05000000_0f000000',
        '    ip daddr 203.0.113.90/32 goto hash_connection',
        '  }',
      ].join('\n'),
    );
    expect(text).toContain('  chain pool_05000000_0f000000 {\n    meta mark set meta mark and 0xf0ffffff or 0x5000000\n  }');
    const ported = renderSkeleton(planNetfilter(config('  - { match: { port: [53, "5000-5010"] }, via: [isp2] }'), VIEWS, new Map()));
    expect(ported).toContain('meta l4proto { tcp, udp } th dport { 53, 5000-5010 } goto pool_04000000_0f000000');
  });
});

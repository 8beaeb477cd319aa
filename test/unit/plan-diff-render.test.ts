import { describe, expect, test } from '@jest/globals';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { desiredIptables } from '../../src/backends/iptables/desired.js';
import { diffIptables } from '../../src/backends/iptables/diff.js';
import type { IptablesPayload } from '../../src/backends/iptables/types.js';
import { diffRouting, isRoutingEmpty, NOTHING } from '../../src/core/diff.js';
import { plan } from '../../src/core/plan.js';
import type { DesiredState, NetfilterIntent, RoutingChange } from '../../src/model/plan.js';
import type { OwnedRanges, UplinkView } from '../../src/model/state.js';
import { probePaths } from '../../src/core/run.js';
import { describeKernelPayloads, renderIpBatch, renderKernelPayloads } from '../../src/render/payloads.js';
import type { Config } from '../../src/model/config.js';
import { parseIpRoutes } from '../../src/parse/ip-json.js';
import { parseIptablesSave } from '../../src/parse/iptables-save.js';
import { backend, capturedAssignments, capturedKernel, labConfig, labUplinks, netfilterOf, pristineKernel, skeleton } from '../helpers/scenario.js';
import type { KernelState } from '../helpers/scenario.js';

/** A run's whole change as the reconciler makes it: the shared diff, and the iptables backend's payload. */
type RunChange = RoutingChange & { readonly netfilter: IptablesPayload };

function diff(config: Config, desired: DesiredState, observed: KernelState, previous: readonly OwnedRanges[] = []): RunChange {
  return { ...diffRouting(config, desired, observed, previous), netfilter: backend.plan(desired.netfilter, netfilterOf(observed)) };
}

/** The payloads flat, as these tests compare them: the backend's texts beside the ip batch and the sysctls. */
function payloadsOf(change: RunChange): IptablesPayload & { readonly ip: string; readonly sysctls: Readonly<Record<string, string>> } {
  return { ...change.netfilter, ip: renderIpBatch(change), sysctls: change.sysctls };
}

/** What `dispatcher plan` prints for the change. */
function described(change: RunChange): string {
  return describeKernelPayloads(backend.describe, renderKernelPayloads(change.netfilter, change));
}

function isEmpty(change: RunChange): boolean {
  return isRoutingEmpty(change) && backend.isEmpty(change.netfilter);
}

/** Golden files: set UPDATE_GOLDEN=1 to rewrite them after an intended change, then review the diff. */
function golden(name: string, text: string): void {
  const file = new URL(`../fixtures/golden/${name}.txt`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

function down(uplinks: UplinkView[], name: string): UplinkView[] {
  return uplinks.map((u) => (u.name === name ? { ...u, state: 'down', reason: 'test' } : u));
}

describe('uplink views from captured links', () => {
  test('ppp gateways come from the peer, the cable line from the config', () => {
    expect(labUplinks().map((u) => [u.name, u.state, u.address, u.gateway, u.gatewaySource])).toEqual([
      ['isp1', 'up', '192.0.2.2', '192.0.2.1', 'ppp-peer'],
      ['isp2', 'up', '192.0.2.6', '192.0.2.1', 'ppp-peer'],
      ['isp3', 'up', '192.0.2.10', '192.0.2.9', 'config'],
    ]);
  });
});

describe('planning the lab', () => {
  test('the plan for the captured assignments is exactly what the kernel holds: nothing to change', () => {
    const kernel = capturedKernel();
    const desired = plan({ config: labConfig, uplinks: labUplinks(kernel), assignments: capturedAssignments() });
    const change = diff(labConfig, desired, kernel);
    expect(payloadsOf(change)).toEqual({ ipsetBefore: '', iptables: '', ip6tables: '', ip: '', ipsetAfter: '', sysctls: {} });
    expect(isEmpty(change)).toBe(true);
  });

  test('golden: first start on a pristine gateway', () => {
    const desired = plan({ config: labConfig, uplinks: labUplinks(), assignments: capturedAssignments() });
    golden('lab-first-start', described(diff(labConfig, desired, pristineKernel())));
  });

  test('golden: isp2 down — its pool table points at isp1 and isp3, weighted; nothing else moves', () => {
    const kernel = capturedKernel();
    const desired = plan({ config: labConfig, uplinks: down(labUplinks(kernel), 'isp2'), assignments: capturedAssignments() });
    const change = diff(labConfig, desired, kernel);
    const payloads = payloadsOf(change);
    expect(payloads.ipsetBefore + payloads.iptables).toBe('');
    golden('lab-isp2-down', described(change));
  });

  test('all uplinks down: routes stay where they are', () => {
    const kernel = capturedKernel();
    let uplinks = labUplinks(kernel);
    for (const name of ['isp1', 'isp2', 'isp3']) uplinks = down(uplinks, name);
    const change = diff(labConfig, plan({ config: labConfig, uplinks, assignments: capturedAssignments() }), kernel);
    expect(change.routes).toEqual({ replace: [], remove: [] });
  });

  test('a static route that is in place is left alone (host routes compare in CIDR form)', () => {
    const config = { ...labConfig, staticRoutes: [{ destination: '203.0.113.200/32', via: ['isp2', 'isp1'] }] };
    const kernel = capturedKernel();
    const planned = plan({ config, uplinks: labUplinks(kernel), assignments: capturedAssignments() });
    const first = diff(config, planned, kernel);
    expect(payloadsOf(first).ip).toBe('route replace table 3199 203.0.113.200/32 proto 211 via 192.0.2.1 dev ppp1 onlink\nrule add priority 4133 from all lookup 3199 protocol 211\n');
    const loaded = {
      ...kernel,
      routes: [...kernel.routes, ...parseIpRoutes('[{"dst":"203.0.113.200","gateway":"192.0.2.1","dev":"ppp1","table":"3199","protocol":"211","flags":["onlink"]}]')],
      rules: [...kernel.rules, { priority: 4133, src: 'all', table: '3199', protocol: '211' }],
    };
    expect(isEmpty(diff(config, planned, loaded))).toBe(true);
  });

  test('moving a client is one set entry', () => {
    const assignments = capturedAssignments();
    assignments.set('198.18.0.10', { ...assignments.get('198.18.0.10')!, uplink: 'isp3' });
    const payloads = payloadsOf(diff(labConfig, plan({ config: labConfig, uplinks: labUplinks(), assignments }), capturedKernel()));
    expect(payloads).toEqual({ ipsetBefore: 'add dispatcher-clients 198.18.0.10 skbmark 0x3000000/0xf000000\n', iptables: '', ip6tables: '', ip: '', ipsetAfter: '', sysctls: {} });
  });

  test('a run that changed no assignment gets the client map and the set diff it had: the same objects, not 50,000 entries again', () => {
    const assignments = capturedAssignments();
    const observed = netfilterOf(capturedKernel());
    const clientsOf = (desired: DesiredState) => desired.netfilter?.clients;
    const setDiff = (desired: DesiredState) => diffIptables(desiredIptables(skeleton, desired.netfilter as NetfilterIntent), observed).set;
    const first = plan({ config: labConfig, uplinks: labUplinks(), assignments });
    const again = plan({ config: labConfig, uplinks: labUplinks(), assignments });
    expect(clientsOf(again)).toBe(clientsOf(first));
    expect(setDiff(again)).toBe(setDiff(first));
    // A new map (a client moved) is derived afresh, and its diff is the move; so are the same assignments under other pool marks.
    const moved = new Map(assignments).set('198.18.0.10', { ...assignments.get('198.18.0.10')!, uplink: 'isp3' });
    const after = plan({ config: labConfig, uplinks: labUplinks(), assignments: moved });
    expect(clientsOf(after)).not.toBe(clientsOf(first));
    expect(setDiff(after).add).toEqual([['198.18.0.10', '0x3000000/0xf000000']]);
    const renumbered = labUplinks().map((u) => ({ ...u, index: u.index + 1 }));
    expect(clientsOf(plan({ config: labConfig, uplinks: renumbered, assignments }))).not.toBe(clientsOf(first));
  });

  test('a released client is one set deletion; a new one one addition', () => {
    const assignments = capturedAssignments();
    assignments.delete('198.18.0.11');
    assignments.set('198.18.1.7', { uplink: 'isp2', mac: '', interface: 'lan0', pinned: true, firstSeen: 0 });
    const { ipsetBefore } = payloadsOf(diff(labConfig, plan({ config: labConfig, uplinks: labUplinks(), assignments }), capturedKernel()));
    expect(ipsetBefore).toBe('add dispatcher-clients 198.18.1.7 skbmark 0x2000000/0xf000000\ndel dispatcher-clients 198.18.0.11\n');
  });

  test('the number of netfilter rules does not depend on the number of clients', () => {
    const many = new Map(Array.from({ length: 5000 }, (_, i) => [`198.18.${(i + 10) >> 8}.${(i + 10) & 255}`, { uplink: 'isp1', mac: '', interface: 'lan0', pinned: false, firstSeen: 0 }]));
    const few = plan({ config: labConfig, uplinks: labUplinks(), assignments: capturedAssignments() });
    const lots = plan({ config: labConfig, uplinks: labUplinks(), assignments: many });
    expect(desiredIptables(skeleton, lots.netfilter).tables).toEqual(desiredIptables(skeleton, few.netfilter).tables);
    expect(lots.rules).toEqual(few.rules);
    expect(desiredIptables(skeleton, lots.netfilter).set?.entries.size).toBe(5000);
  });
});

describe('diff owns only what is ours', () => {
  test('flush removes our chains, hooks, set, rules and tables, and nothing of other software', () => {
    const kernel = capturedKernel();
    const foreign = parseIptablesSave(
      [
        '*mangle',
        ':PREROUTING ACCEPT [0:0]',
        ':OUTPUT ACCEPT [0:0]',
        ':POSTROUTING ACCEPT [0:0]',
        ':DISPATCHER-PRE - [0:0]',
        ':DISPATCHER-OUT - [0:0]',
        ':DISPATCHER-POST - [0:0]',
        ':mwan3_hook - [0:0]',
        '-A PREROUTING -j mwan3_hook',
        '-A PREROUTING -j DISPATCHER-PRE',
        '-A OUTPUT -j DISPATCHER-OUT',
        '-A POSTROUTING -j DISPATCHER-POST',
        '-A mwan3_hook -j MARK --set-xmark 0x100/0x3f00',
        'COMMIT',
      ].join('\n'),
    );
    const withForeign = {
      ...kernel,
      netfilter: [...foreign, ...kernel.netfilter.filter((t) => t.name !== 'mangle')],
      rules: [...kernel.rules, { priority: 2001, src: 'all', fwmark: 0x100, fwmask: 0x3f00, table: '1' }],
      routes: [...kernel.routes, { table: '1', dst: 'default', type: 'unicast', nexthops: [{ gateway: '192.0.2.1', dev: 'ppp0', weight: 1, onlink: false }], linkdown: false }],
    };
    golden('flush-with-foreign', described(diff(labConfig, NOTHING, withForeign)));
    const text = described(diff(labConfig, NOTHING, withForeign));
    expect(text).not.toMatch(/mwan3|2001|table 1 /);
  });

  test('a duplicated hook is removed, a missing one added', () => {
    const kernel = capturedKernel();
    const mangle = kernel.netfilter.find((t) => t.name === 'mangle')!;
    const hooks = mangle.rules.filter((r) => r.chain === 'PREROUTING');
    const tampered = { ...mangle, rules: [...mangle.rules.filter((r) => r.chain !== 'OUTPUT'), ...hooks] };
    const desired = plan({ config: labConfig, uplinks: labUplinks(kernel), assignments: capturedAssignments() });
    const change = diff(labConfig, desired, { ...kernel, netfilter: [tampered, ...kernel.netfilter.filter((t) => t.name !== 'mangle')] });
    expect(payloadsOf(change).iptables).toBe('*mangle\n-D PREROUTING -j DISPATCHER-PRE\n-I OUTPUT 1 -j DISPATCHER-OUT\nCOMMIT\n');
  });

  test('a rule of other software inside our priority block is reported and left alone', () => {
    const kernel = capturedKernel();
    const desired = plan({ config: labConfig, uplinks: labUplinks(kernel), assignments: capturedAssignments() });
    const change = diff(labConfig, desired, { ...kernel, rules: [...kernel.rules, { priority: 4150, src: 'all', table: '77' }] });
    expect(change.rules).toEqual({ add: [], remove: [] });
    expect(change.conflicts).toEqual(['ip rule at priority 4150 (4150 all  77 ) belongs to other software; move rules.priority or that rule']);
  });

  test('a set with the wrong header is rebuilt beside the old one and swapped in', () => {
    const kernel = capturedKernel();
    const old = { ...kernel.sets, sets: kernel.sets.sets.map((s) => ({ ...s, options: { ...s.options, maxelem: '1024' } })) };
    const desired = plan({ config: labConfig, uplinks: labUplinks(kernel), assignments: capturedAssignments() });
    const { ipsetBefore } = payloadsOf(diff(labConfig, desired, { ...kernel, sets: old }));
    const lines = ipsetBefore.trim().split('\n');
    expect(lines[0]).toBe('create dispatcher-clients-next hash:ip family inet hashsize 1024 maxelem 65536 counters skbinfo');
    expect(lines.filter((l) => l.startsWith('add dispatcher-clients-next '))).toHaveLength(8);
    // Each client keeps its byte count (the clients table's bytes) in the new set.
    const counted = kernel.sets.entries.find((e) => e.member === '198.18.0.13');
    expect(lines).toContain(`add dispatcher-clients-next 198.18.0.13 packets ${counted?.options.packets} bytes ${counted?.options.bytes} skbmark 0x3000000/0xf000000`);
    expect(lines.slice(-2)).toEqual(['swap dispatcher-clients-next dispatcher-clients', 'destroy dispatcher-clients-next']);
  });

  test('a set made before it counted bytes (no counters extension) is swapped for one that does, marks kept', () => {
    const kernel = capturedKernel();
    const uncounted = {
      sets: kernel.sets.sets.map((s) => ({ ...s, options: Object.fromEntries(Object.entries(s.options).filter(([key]) => key !== 'counters')) })),
      entries: kernel.sets.entries.map((e) => ({ ...e, options: { skbmark: e.options.skbmark as string } })),
    };
    const desired = plan({ config: labConfig, uplinks: labUplinks(kernel), assignments: capturedAssignments() });
    const lines = payloadsOf(diff(labConfig, desired, { ...kernel, sets: uncounted }))
      .ipsetBefore.trim()
      .split('\n');
    expect(lines[0]).toBe('create dispatcher-clients-next hash:ip family inet hashsize 1024 maxelem 65536 counters skbinfo');
    expect(lines).toContain('add dispatcher-clients-next 198.18.0.13 skbmark 0x3000000/0xf000000');
    expect(lines.slice(-2)).toEqual(['swap dispatcher-clients-next dispatcher-clients', 'destroy dispatcher-clients-next']);
  });

  test('after a reload that moves our ranges, the old range is cleaned up', () => {
    const kernel = capturedKernel();
    const moved = { ...labConfig, tables: { base: 5000 }, rules: { priority: 6000 } };
    const desired = plan({ config: moved, uplinks: labUplinks(kernel), assignments: capturedAssignments() });
    const change = diff(moved, desired, kernel, [labConfig]);
    expect(change.rules.remove).toHaveLength(11);
    expect(change.rules.add).toHaveLength(11);
    expect(change.routes.remove.map((r) => r.table).sort()).toEqual(['3100', '3101', '3102', '3103', '3133', '3134', '3135']);
  });
});

describe('probe paths before the first run', () => {
  test('a pristine gateway gets each uplink table, connection rule and source rule, nothing else; a programmed one gets nothing', () => {
    const pristine = pristineKernel();
    const first = renderIpBatch(probePaths(labConfig, labUplinks(pristine), pristine));
    expect(first.trim().split('\n')).toEqual([
      'route replace table 3101 default proto 211 via 192.0.2.1 dev ppp0 onlink',
      'route replace table 3102 default proto 211 via 192.0.2.1 dev ppp1 onlink',
      'route replace table 3103 default proto 211 via 192.0.2.9 dev wan0 onlink',
      'rule add priority 4101 from all fwmark 0x10000000/0xf0000000 lookup 3101 protocol 211',
      'rule add priority 4134 from 192.0.2.2/32 lookup 3101 protocol 211',
      'rule add priority 4102 from all fwmark 0x20000000/0xf0000000 lookup 3102 protocol 211',
      'rule add priority 4135 from 192.0.2.6/32 lookup 3102 protocol 211',
      'rule add priority 4103 from all fwmark 0x30000000/0xf0000000 lookup 3103 protocol 211',
      'rule add priority 4136 from 192.0.2.10/32 lookup 3103 protocol 211',
    ]);
    const kernel = capturedKernel();
    expect(renderIpBatch(probePaths(labConfig, labUplinks(kernel), kernel))).toBe('');
  });
});

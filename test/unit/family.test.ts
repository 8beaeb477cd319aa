// The per-family contract values (src/core/family.ts): IPv4's are exactly the
// values the code used before they were computed, IPv6's are its counterparts,
// and the planner and the kernel reader take their sysctl keys from one list.

import { describe, expect, test } from '@jest/globals';
import { CLIENT_SET, CLIENT_SET_NEXT, clientSets, ids, inOurPriorityRange, isOurTable } from '../../src/core/contract.js';
import { FAMILIES, familyContract, familySysctls } from '../../src/core/family.js';
import { planSysctls } from '../../src/core/plan.js';
import type { UplinkView } from '../../src/model/state.js';

const RANGES = { tables: { base: 1000 }, rules: { priority: 20000 } };

describe('family contract', () => {
  test('IPv4: the values of iptables/README.md', () => {
    expect(familyContract('ipv4')).toMatchObject({
      family: 'ipv4',
      ipFlag: '-4',
      clientSet: 'dispatcher-clients',
      clientSetNext: 'dispatcher-clients-next',
      setFamily: 'inet',
      nftFamily: 'ip',
      iptables: { tool: 'iptables', save: 'iptables-save', restore: 'iptables-restore' },
      hostPrefix: 32,
      forwarding: { key: 'net.ipv4.ip_forward', value: '1' },
    });
    expect(familyContract('ipv4').uplinkSysctl('ppp0')).toEqual({ key: 'net.ipv4.conf.ppp0.rp_filter', value: '2' });
    expect(familyContract()).toBe(familyContract('ipv4'));
  });

  test('IPv6: ip -6, ip6tables, inet6 sets with their own names, forwarding and accept_ra', () => {
    expect(familyContract('ipv6')).toMatchObject({
      family: 'ipv6',
      ipFlag: '-6',
      clientSet: 'dispatcher-clients6',
      clientSetNext: 'dispatcher-clients6-next',
      setFamily: 'inet6',
      nftFamily: 'ip6',
      iptables: { tool: 'ip6tables', save: 'ip6tables-save', restore: 'ip6tables-restore' },
      hostPrefix: 128,
      forwarding: { key: 'net.ipv6.conf.all.forwarding', value: '1' },
    });
    expect(familyContract('ipv6').uplinkSysctl('wan0')).toEqual({ key: 'net.ipv6.conf.wan0.accept_ra', value: '2' });
  });

  test('no name is shared between families, and set names fit ipset (31 characters)', () => {
    const names = FAMILIES.flatMap((f) => [familyContract(f).clientSet, familyContract(f).clientSetNext]);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name.length).toBeLessThanOrEqual(31);
    expect(clientSets('ipv6')).toEqual({ current: 'dispatcher-clients6', next: 'dispatcher-clients6-next' });
    expect(clientSets()).toEqual({ current: CLIENT_SET, next: CLIENT_SET_NEXT });
    expect([CLIENT_SET, CLIENT_SET_NEXT]).toEqual(['dispatcher-clients', 'dispatcher-clients-next']);
  });

  test('table ids and rule priorities: IPv6 shares the configured blocks (the kernel keeps them apart per family)', () => {
    const v4 = ids(RANGES, 'ipv4');
    const v6 = ids(RANGES, 'ipv6');
    expect(ids(RANGES).tables.pool(3)).toBe(v4.tables.pool(3));
    expect({ first: v4.tables.first, last: v4.tables.last, uplink0: v4.tables.uplink(0), pool0: v4.tables.pool(0), static: v4.tables.static }).toEqual({ first: 1000, last: 1099, uplink0: 1001, pool0: 1033, static: 1099 });
    expect({ first: v4.priorities.first, last: v4.priorities.last, conn0: v4.priorities.conn(0), source0: v4.priorities.source(0), pool0: v4.priorities.pool(0) }).toEqual({
      first: 20000,
      last: 20099,
      conn0: 20001,
      source0: 20034,
      pool0: 20066,
    });
    for (const index of [0, 5, 31]) {
      expect(v6.tables.uplink(index)).toBe(v4.tables.uplink(index));
      expect(v6.tables.pool(index)).toBe(v4.tables.pool(index));
      expect(v6.priorities.pool(index)).toBe(v4.priorities.pool(index));
    }
    expect([isOurTable(RANGES, '1050', 'ipv6'), isOurTable(RANGES, '1100', 'ipv6'), inOurPriorityRange(RANGES, 20099, 'ipv6'), inOurPriorityRange(RANGES, 19999, 'ipv6')]).toEqual([true, false, true, false]);
  });
});

describe('sysctls from one list', () => {
  const view = (index: number, iface: string, present: boolean): UplinkView => ({ index, interface: iface, present }) as unknown as UplinkView;

  test('the planner sets, for present uplinks, exactly what the one list gives (IPv4 as before)', () => {
    const uplinks = [view(0, 'ppp0', true), view(1, 'ppp1', false), view(2, 'wan0', true)];
    expect(planSysctls(uplinks)).toEqual({ 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.ppp0.rp_filter': '2', 'net.ipv4.conf.wan0.rp_filter': '2' });
    expect(Object.keys(planSysctls(uplinks))).toEqual(['net.ipv4.ip_forward', 'net.ipv4.conf.ppp0.rp_filter', 'net.ipv4.conf.wan0.rp_filter']);
    expect(planSysctls(uplinks, 'ipv6')).toEqual({ 'net.ipv6.conf.all.forwarding': '1', 'net.ipv6.conf.ppp0.accept_ra': '2', 'net.ipv6.conf.wan0.accept_ra': '2' });
  });

  test('every key the planner can set is a key the reader reads (all configured uplinks)', () => {
    const interfaces = ['ppp0', 'ppp1', 'wan0'];
    for (const family of FAMILIES) {
      const readable = Object.keys(familySysctls(interfaces, family));
      const planned = Object.keys(
        planSysctls(
          interfaces.map((iface, i) => view(i, iface, i !== 1)),
          family,
        ),
      );
      expect(planned.every((key) => readable.includes(key))).toBe(true);
      expect(readable).toHaveLength(interfaces.length + 1);
    }
  });
});

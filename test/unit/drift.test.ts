// Self-repair's pure parts: reading `nft monitor` and `ip monitor rule route`
// lines (captured from iproute2 6.1 / nftables 1.0.6 here), telling other
// software's changes to ours from our own, and not turning repairs into a
// busy loop when something keeps fighting us.

import { describe, expect, test } from '@jest/globals';
import { isOurRouting, loadedOf, routingDrift, sysctlDrift } from '../../src/core/drift.js';
import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, CALM_MS, LIMIT, RepairLoop } from '../../src/core/repair-loop.js';
import type { RoutingEvent } from '../../src/model/kernel.js';
import { generationEnd, tableOfEvent } from '../../src/parse/nft-monitor.js';
import { parseRoutingEvent } from '../../src/parse/routing-events.js';

describe('nft monitor lines', () => {
  test('the end of a transaction names the committing process', () => {
    expect(generationEnd('# new generation 4 by process 17500 (iptables-restor)')).toEqual({ generation: 4, pid: 17500, process: 'iptables-restor' });
    expect(generationEnd('# new generation 6 by process 17505 (nft)')).toEqual({ generation: 6, pid: 17505, process: 'nft' });
    expect(generationEnd('# new generation 9')).toEqual({ generation: 9, pid: null, process: null });
    expect(generationEnd('delete table ip mangle')).toBeNull();
  });

  test('event lines name their table; flush ruleset names them all', () => {
    expect(tableOfEvent('delete rule ip mangle DISPATCHER-PRE handle 4')).toBe('ip mangle');
    expect(tableOfEvent('delete chain ip nat DISPATCHER-NAT')).toBe('ip nat');
    expect(tableOfEvent('delete table ip mangle')).toBe('ip mangle');
    expect(tableOfEvent('add chain ip mangle PREROUTING { type filter hook prerouting priority mangle; policy accept; }')).toBe('ip mangle');
    expect(tableOfEvent('add rule inet firewalld filter_FORWARD ct state established accept')).toBe('inet firewalld');
    expect(tableOfEvent('create chain ip mangle DSP-X')).toBe('ip mangle');
    expect(tableOfEvent('flush ruleset')).toBe('ruleset');
    expect(tableOfEvent('# new generation 6 by process 17505 (nft)')).toBeNull();
  });
});

describe('ip monitor rule route lines', () => {
  test('rules: priority, selector and table; deleted or added', () => {
    expect(parseRoutingEvent('Deleted 4101:\tfrom all fwmark 0x10000000/0xf0000000 lookup 3101 proto 211')).toEqual({
      kind: 'rule',
      deleted: true,
      rule: { priority: 4101, src: 'all', fwmark: 0x10000000, fwmask: 0xf0000000, table: '3101', protocol: '211' },
    });
    expect(parseRoutingEvent('4100:\tfrom all lookup main suppress_prefixlength 0 proto 211')).toEqual({
      kind: 'rule',
      deleted: false,
      rule: { priority: 4100, src: 'all', table: 'main', suppressPrefixlength: 0, protocol: '211' },
    });
    expect(parseRoutingEvent('4120:\tfrom 192.0.2.2 lookup 3111 proto 211')).toMatchObject({ rule: { priority: 4120, src: '192.0.2.2/32', table: '3111' } });
    expect(parseRoutingEvent('4121:\tfrom 198.18.0.0/15 lookup 3111')).toMatchObject({ rule: { src: '198.18.0.0/15' } });
  });

  test('routes: table and destination; continuation lines and noise are skipped', () => {
    expect(parseRoutingEvent('default via 192.0.2.1 dev ppp0 table 3101 proto 211 onlink')).toEqual({ kind: 'route', deleted: false, table: '3101', dst: 'default' });
    expect(parseRoutingEvent('Deleted 198.51.100.0/24 table 3102 proto 211')).toEqual({ kind: 'route', deleted: true, table: '3102', dst: '198.51.100.0/24' });
    expect(parseRoutingEvent('Deleted 203.0.113.7 via 192.0.2.1 dev ppp0 table 3109 proto 211')).toMatchObject({ dst: '203.0.113.7/32', table: '3109' });
    expect(parseRoutingEvent('unreachable default table 3105 proto 211')).toMatchObject({ dst: 'default', table: '3105' });
    expect(parseRoutingEvent('default via 192.0.2.1 dev wan0 proto dhcp metric 100')).toMatchObject({ table: 'main' });
    expect(parseRoutingEvent('\tnexthop via 192.0.2.1 dev ppp0 weight 2 onlink')).toBeNull();
    expect(parseRoutingEvent('')).toBeNull();
  });
});

describe('drift of routing and sysctls', () => {
  const owned = { tables: { base: 3100 }, rules: { priority: 4100 } };
  const loaded = loadedOf({
    rules: [{ priority: 4101, src: 'all', fwmark: 0x10000000, fwmask: 0xf0000000, table: '3101' }],
    routes: [{ table: '3101', dst: 'default', nexthops: [] }],
    ipv6: { rules: [{ priority: 4134, src: '2001:db8:a::2/128', table: '3101' }], routes: [{ table: '3133', dst: 'default', nexthops: [] }], addresses: [] },
    sysctls: { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.ppp0.rp_filter': '2' },
    netfilter: null,
  });
  const event = (line: string): RoutingEvent => {
    const parsed = parseRoutingEvent(line);
    if (!parsed) throw new Error(`unparsed: ${line}`);
    return parsed;
  };

  test('a rule or route we want, deleted behind our back, is drift; our own adds and deletes are not', () => {
    expect(routingDrift(event('Deleted 4101:\tfrom all fwmark 0x10000000/0xf0000000 lookup 3101 proto 211'), loaded, owned)).toBe('ip rule 4101 (lookup 3101) deleted');
    expect(routingDrift(event('4101:\tfrom all fwmark 0x10000000/0xf0000000 lookup 3101 proto 211'), loaded, owned)).toBeNull();
    expect(routingDrift(event('Deleted default via 192.0.2.1 dev ppp0 table 3101 proto 211 onlink'), loaded, owned)).toBe('route default in table 3101 deleted');
    expect(routingDrift(event('default via 192.0.2.1 dev ppp0 table 3101 proto 211 onlink'), loaded, owned)).toBeNull();
    // What we remove is what we no longer want.
    expect(routingDrift(event('Deleted 4102:\tfrom all fwmark 0x20000000/0xf0000000 lookup 3102 proto 211'), loaded, owned)).toBeNull();
    expect(routingDrift(event('Deleted default via 192.0.2.5 dev ppp1 table 3102 proto 211 onlink'), loaded, owned)).toBeNull();
  });

  test("IPv6's rules and routes are ours too: our own adds are no drift, a deletion behind our back is", () => {
    expect(routingDrift(event('4134:\tfrom 2001:db8:a::2 lookup 3101 proto 211'), loaded, owned)).toBeNull();
    expect(routingDrift(event('Deleted 4134:\tfrom 2001:db8:a::2 lookup 3101 proto 211'), loaded, owned)).toBe('ip rule 4134 (lookup 3101) deleted');
    expect(routingDrift(event('default via fe80::1 dev wan1 table 3133 proto 211 metric 1024 onlink pref medium'), loaded, owned)).toBeNull();
    expect(routingDrift(event('Deleted default via fe80::1 dev wan1 table 3133 proto 211 metric 1024 onlink pref medium'), loaded, owned)).toBe('route default in table 3133 deleted');
  });

  test('something we do not want, added in our ranges, is drift; anything outside them is not ours', () => {
    expect(routingDrift(event('4150:\tfrom all lookup 100'), loaded, owned)).toBe('ip rule 4150 (lookup 100) added in our priority range');
    expect(routingDrift(event('10.9.0.0/16 via 192.0.2.1 dev ppp0 table 3101'), loaded, owned)).toBe('route 10.9.0.0/16 added to our table 3101');
    expect(routingDrift(event('Deleted 32766:\tfrom all lookup main'), loaded, owned)).toBeNull();
    expect(routingDrift(event('Deleted default via 192.0.2.1 dev wan0 proto dhcp metric 100'), loaded, owned)).toBeNull();
    expect(routingDrift(event('1000:\tfrom all lookup 100'), loaded, owned)).toBeNull();
  });

  test('a change outside our ranges is someone else’s (the next run reads routing again: a main-table route is what gateway discovery reads); ours, of either family, are judged as drift', () => {
    for (const line of [
      '4101:\tfrom all fwmark 0x10000000/0xf0000000 lookup 3101 proto 211',
      'Deleted default via 192.0.2.1 dev ppp0 table 3101 proto 211 onlink',
      '4134:\tfrom 2001:db8:a::2 lookup 3101 proto 211',
      'default via fe80::1 dev wan1 table 3133 proto 211 metric 1024 onlink pref medium',
    ]) {
      expect(isOurRouting(event(line), owned)).toBe(true);
    }
    for (const line of ['Deleted default via 192.0.2.1 dev wan0 proto dhcp metric 100', 'default via 192.0.2.9 dev wan0 proto dhcp metric 100', 'Deleted 32766:\tfrom all lookup main', '1000:\tfrom all lookup 100']) {
      expect(isOurRouting(event(line), owned)).toBe(false);
    }
  });

  test('a sysctl of ours reading otherwise is drift; unreadable ones are not judged', () => {
    expect(sysctlDrift(loaded, { 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.ppp0.rp_filter': '2' })).toEqual(['sysctl net.ipv4.ip_forward is 0 (ours: 1)']);
    expect(sysctlDrift(loaded, { 'net.ipv4.ip_forward': '1' })).toEqual([]);
  });
});

describe('a repair loop is backed off, never busy', () => {
  test(`more than ${LIMIT} repairs within the window make a fight; repairs are then spaced by a doubling delay`, () => {
    const loop = new RepairLoop();
    let now = 1_000_000;
    for (let i = 0; i < LIMIT; i++) {
      expect(loop.allowedAt(now)).toBe(now);
      loop.repaired(now, ['iptables-restor']);
      now += 1000;
    }
    expect(loop.fighting(now)).toBeNull();
    loop.repaired(now, ['ufw']);
    const fight = loop.fighting(now);
    expect(fight).toMatchObject({ since: now, repairs: LIMIT + 1, nextAt: now + BACKOFF_MIN_MS });
    expect(fight?.by).toEqual(['ufw']);
    expect(loop.allowedAt(now + 100)).toBe(now + BACKOFF_MIN_MS);
    now += BACKOFF_MIN_MS;
    loop.repaired(now, ['iptables-restor']);
    expect(loop.allowedAt(now)).toBe(now + 2 * BACKOFF_MIN_MS);
    expect(loop.fighting(now)?.by).toEqual(['iptables-restor', 'ufw']);
    for (let i = 0; i < 20; i++) {
      now = loop.allowedAt(now);
      loop.repaired(now, []);
    }
    expect(loop.allowedAt(now) - now).toBe(BACKOFF_MAX_MS);
  });

  test('calm for a while ends the fight; repairs are immediate again', () => {
    const loop = new RepairLoop();
    let now = 0;
    for (let i = 0; i <= LIMIT; i++) loop.repaired((now += 100), []);
    expect(loop.fighting(now)).not.toBeNull();
    now += CALM_MS;
    expect(loop.fighting(now)).toBeNull();
    expect(loop.allowedAt(now)).toBe(now);
  });

  test('repairs spread over more than the window are no fight', () => {
    const loop = new RepairLoop();
    for (let i = 0; i < 50; i++) loop.repaired(i * 10_000, []);
    expect(loop.fighting(500_000)).toBeNull();
  });
});

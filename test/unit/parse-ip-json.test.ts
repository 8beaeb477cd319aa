import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseIpAddr, parseIpRoutes, parseIpRules } from '../../src/parse/ip-json.js';
import { ParseError } from '../../src/parse/iptables-save.js';
import { fixture } from '../helpers/fixtures.js';

describe('ip -j rule', () => {
  test('coerces hex marks and text tables from captured output', () => {
    const rules = parseIpRules(fixture('ip-rule.json'));
    expect(rules.find((r) => r.priority === 4100)).toEqual({ priority: 4100, src: 'all', table: 'main', suppressPrefixlength: 0, protocol: '211' });
    expect(rules.find((r) => r.priority === 4134)).toEqual({ priority: 4134, src: '192.0.2.2/32', table: '3101', protocol: '211' });
    expect(rules.find((r) => r.priority === 4101)).toEqual({ priority: 4101, src: 'all', fwmark: 0x10000000, fwmask: 0xf0000000, table: '3101', protocol: '211' });
    expect(rules.find((r) => r.priority === 32766)).toEqual({ priority: 32766, src: 'all', table: 'main' });
  });

  test('prefixes, plain marks, actions and not-rules', () => {
    const rules = parseIpRules(
      '[{"priority":100,"src":"198.18.0.0","srclen":16,"table":"5"},{"priority":101,"src":"all","fwmark":"0x10","table":"6"},' + '{"priority":102,"not":null,"src":"all","iif":"lo","action":"unreachable"}]',
    );
    expect(rules[0]?.src).toBe('198.18.0.0/16');
    expect(rules[1]).toMatchObject({ fwmark: 0x10, fwmask: 0xffffffff });
    expect(rules[2]).toMatchObject({ iif: 'lo', action: 'not unreachable', table: '' });
  });

  test('wrong types are ParseErrors', () => {
    expect(() => parseIpRules('[{"src":"all"}]')).toThrow(/without a priority/);
    expect(() => parseIpRules('[{"priority":1,"fwmark":"0xZZ"}]')).toThrow(/not a mark/);
    expect(() => parseIpRules('{"priority":1}')).toThrow(/expected a JSON list/);
    expect(() => parseIpRules('not json')).toThrow(ParseError);
  });
});

describe('ip -j route', () => {
  test('single and multipath routes, tables, the omitted main table', () => {
    const routes = parseIpRoutes(fixture('ip-route.json'));
    const multipath = routes.find((r) => r.table === '3100');
    expect(multipath).toEqual({
      table: '3100',
      dst: 'default',
      type: 'unicast',
      protocol: '211',
      nexthops: [
        { gateway: '192.0.2.1', dev: 'ppp0', weight: 2, onlink: true },
        { gateway: '192.0.2.1', dev: 'ppp1', weight: 1, onlink: true },
        { gateway: '192.0.2.9', dev: 'wan0', weight: 1, onlink: true },
      ],
      linkdown: false,
    });
    expect(routes.find((r) => r.table === '3102')?.nexthops).toEqual([{ gateway: '192.0.2.1', dev: 'ppp1', weight: 1, onlink: true }]);
    expect(routes.find((r) => r.dst === '198.18.0.0/16')).toMatchObject({ table: 'main', protocol: 'kernel', nexthops: [{ dev: 'lan0' }] });
    expect(routes.filter((r) => r.table === 'local').length).toBeGreaterThan(0);
  });

  test('host routes are read in CIDR form, as the planner writes them', () => {
    const [route] = parseIpRoutes('[{"dst":"203.0.113.200","gateway":"192.0.2.1","dev":"ppp1","table":"3199","protocol":"211","flags":["onlink"]}]');
    expect(route?.dst).toBe('203.0.113.200/32');
  });

  test('blackhole routes have no nexthop; linkdown is kept apart from identity', () => {
    const routes = parseIpRoutes(
      '[{"type":"blackhole","dst":"203.0.113.0/24","table":"9","metric":5,"flags":[]},' + '{"dst":"default","table":"7","flags":[],"nexthops":[{"gateway":"192.0.2.1","dev":"ppp1","weight":1,"flags":["onlink","linkdown"]}]}]',
    );
    expect(routes[0]).toEqual({ table: '9', dst: '203.0.113.0/24', type: 'blackhole', metric: 5, nexthops: [], linkdown: false });
    expect(routes[1]?.linkdown).toBe(true);
    expect(routes[1]?.nexthops[0]?.onlink).toBe(true);
  });
});

describe('ip -j addr', () => {
  test('links, flags, point-to-point peers and IPv4 addresses only', () => {
    const links = parseIpAddr(fixture('ip-addr.json'));
    const ppp0 = links.find((l) => l.name === 'ppp0');
    expect(ppp0).toMatchObject({ up: true, lowerUp: true, pointToPoint: true, addresses: [{ local: '192.0.2.2', peer: '192.0.2.1', prefixlen: 32 }] });
    const wan0 = links.find((l) => l.name === 'wan0');
    expect(wan0).toMatchObject({ pointToPoint: false, addresses: [{ local: '192.0.2.10', prefixlen: 30 }] });
    expect(links.find((l) => l.name === 'lo')?.addresses).toEqual([{ local: '127.0.0.1', prefixlen: 8 }]);
  });
});

test('the ip -j parsers never fail except with a ParseError', () => {
  const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));
  fc.assert(
    fc.property(fc.oneof(json, fc.string()), (text) => {
      for (const parse of [parseIpRules, parseIpRoutes, parseIpAddr]) {
        try {
          parse(text);
        } catch (error) {
          expect(error).toBeInstanceOf(ParseError);
        }
      }
    }),
  );
});

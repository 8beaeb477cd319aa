import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseNeighbourEvent, parseNeighbourTable } from '../../src/parse/neighbours.js';
import { fixture } from '../helpers/fixtures.js';

describe('ip -4 neigh show (the full table)', () => {
  test('reads every resolved entry of a captured table, with its device', () => {
    const { neighbours, rejected } = parseNeighbourTable(fixture('ip-neigh.txt'));
    expect(rejected).toBe(0);
    // 15 lines: one unresolved (INCOMPLETE) entry is no client yet.
    expect(neighbours).toHaveLength(14);
    expect(
      neighbours
        .filter((n) => n.dev === 'lan0')
        .map((n) => n.ip)
        .sort(),
    ).toEqual(['198.18.0.10', '198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.14', '198.18.0.15', '198.18.0.16', '198.18.0.17']);
    expect(neighbours.find((n) => n.ip === '198.18.0.14')).toEqual({ ip: '198.18.0.14', mac: '6e:79:9c:28:90:aa', dev: 'lan0', complete: true });
    // The same gateway address is a neighbour on two devices.
    expect(
      neighbours
        .filter((n) => n.ip === '192.0.2.1')
        .map((n) => n.dev)
        .sort(),
    ).toEqual(['ppp0', 'ppp1']);
  });

  test('malformed lines are counted and dropped, never guessed at', () => {
    const text = [
      '198.18.0.300 dev lan0 lladdr 02:00:00:00:00:01 REACHABLE',
      '198.18.0.2 dev lan0 lladdr 02:00:00:00:00:zz REACHABLE',
      '198.18.0.3 dev lan0;rm lladdr 02:00:00:00:00:03 REACHABLE',
      'garbage',
      '198.18.0.5 dev lan0 FAILED',
      '198.18.0.4 dev lan0 lladdr 02:00:00:00:00:04 PERMANENT',
    ].join('\n');
    const { neighbours, rejected } = parseNeighbourTable(text);
    expect(rejected).toBe(3);
    expect(neighbours.map((n) => n.ip)).toEqual(['198.18.0.4']);
  });

  test('never throws on arbitrary text, and admits only well-formed devices and MACs', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const { neighbours } = parseNeighbourTable(text);
        for (const n of neighbours) {
          expect(n.dev).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/);
          expect(n.mac).toMatch(/^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
        }
      }),
    );
  });
});

describe('ip monitor neigh', () => {
  test('a resolved entry is a present client', () => {
    expect(parseNeighbourEvent('198.18.0.10 dev lan0 lladdr ce:bd:ba:4b:61:cf STALE ')).toEqual({ ip: '198.18.0.10', mac: 'ce:bd:ba:4b:61:cf', dev: 'lan0', complete: true });
    expect(parseNeighbourEvent('198.18.0.77 dev lan0 lladdr 02:00:00:00:00:77 PERMANENT')?.ip).toBe('198.18.0.77');
  });

  test("IPv6 entries are read like IPv4 ones (which of them are clients is the client filter's call)", () => {
    expect(parseNeighbourEvent('fd00:18::10 dev lan0 lladdr ce:bd:ba:4b:61:cf REACHABLE')).toEqual({ ip: 'fd00:18::10', dev: 'lan0', mac: 'ce:bd:ba:4b:61:cf', complete: true });
    expect(parseNeighbourEvent('fe80::1 dev lan0 lladdr ce:bd:ba:4b:61:cf router STALE')).toEqual({ ip: 'fe80::1', dev: 'lan0', mac: 'ce:bd:ba:4b:61:cf', complete: true });
    expect(parseNeighbourEvent('fd00:18::10 dev lan0 FAILED')).toBeNull();
    expect(parseNeighbourEvent('fd00:18:::10 dev lan0 lladdr ce:bd:ba:4b:61:cf REACHABLE')).toBeNull();
  });

  test('deletions, unresolved states and noise are ignored', () => {
    for (const line of [
      'Deleted 198.18.0.10 dev lan0 lladdr ce:bd:ba:4b:61:cf STALE',
      '198.18.0.10 dev lan0  INCOMPLETE',
      '198.18.0.10 dev lan0 lladdr ce:bd:ba:4b:61:cf FAILED',
      'miss 198.18.0.10 dev lan0',
      '198.18.0.10 dev $(reboot) lladdr ce:bd:ba:4b:61:cf REACHABLE',
      '',
    ]) {
      expect(parseNeighbourEvent(line)).toBeNull();
    }
  });
});

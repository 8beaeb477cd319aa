import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseNeighbourEvent, parseProcNetArp } from '../../src/parse/neighbours.js';
import { fixture } from '../helpers/fixtures.js';

describe('/proc/net/arp', () => {
  test('reads every entry of a captured table, with device and completeness', () => {
    const { neighbours, rejected } = parseProcNetArp(fixture('proc-net-arp.txt'));
    expect(rejected).toBe(0);
    expect(neighbours).toHaveLength(14);
    expect(neighbours.filter((n) => n.dev === 'lan0')).toHaveLength(8);
    expect(neighbours.find((n) => n.ip === '198.18.0.14')).toEqual({ ip: '198.18.0.14', mac: '16:59:ba:b0:22:71', dev: 'lan0', complete: true });
    // The same gateway address is a neighbour on two devices.
    expect(neighbours.filter((n) => n.ip === '192.0.2.1').map((n) => n.dev).sort()).toEqual(['ppp0', 'ppp1']);
  });

  test('incomplete entries and permanent ones are told apart by the flags', () => {
    const text = [
      'IP address       HW type     Flags       HW address            Mask     Device',
      '198.18.0.77      0x1         0x6         02:00:00:00:00:77     *        lan0',
      '198.18.0.78      0x1         0x0         00:00:00:00:00:00     *        lan0',
    ].join('\n');
    const { neighbours } = parseProcNetArp(text);
    expect(neighbours.map((n) => [n.ip, n.complete])).toEqual([
      ['198.18.0.77', true],
      ['198.18.0.78', false],
    ]);
  });

  test('malformed lines are counted and dropped, never guessed at', () => {
    const text = [
      'header',
      '198.18.0.1 0x1 0x2 02:00:00:00:00:01 * lan0 extra',
      '198.18.0.300 0x1 0x2 02:00:00:00:00:01 * lan0',
      '198.18.0.2 0x1 0x2 02:00:00:00:00:zz * lan0',
      '198.18.0.3 0x1 0x2 02:00:00:00:00:03 * lan0;rm',
      '198.18.0.4 0x1 0x2 02:00:00:00:00:04 * lan0',
    ].join('\n');
    const { neighbours, rejected } = parseProcNetArp(text);
    expect(rejected).toBe(4);
    expect(neighbours.map((n) => n.ip)).toEqual(['198.18.0.4']);
  });

  test('never throws on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        const { neighbours } = parseProcNetArp(`header\n${text}`);
        for (const n of neighbours) expect(n.dev).toMatch(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/);
      }),
    );
  });
});

describe('ip monitor neigh', () => {
  test('a resolved entry is a present client', () => {
    expect(parseNeighbourEvent('198.18.0.10 dev lan0 lladdr ce:bd:ba:4b:61:cf STALE ')).toEqual({ ip: '198.18.0.10', mac: 'ce:bd:ba:4b:61:cf', dev: 'lan0', complete: true });
    expect(parseNeighbourEvent('198.18.0.77 dev lan0 lladdr 02:00:00:00:00:77 PERMANENT')?.ip).toBe('198.18.0.77');
  });

  test('deletions, unresolved states, IPv6 and noise are ignored', () => {
    for (const line of [
      'Deleted 198.18.0.10 dev lan0 lladdr ce:bd:ba:4b:61:cf STALE',
      '198.18.0.10 dev lan0  INCOMPLETE',
      '198.18.0.10 dev lan0 lladdr ce:bd:ba:4b:61:cf FAILED',
      'fe80::1 dev lan0 lladdr ce:bd:ba:4b:61:cf router STALE',
      'miss 198.18.0.10 dev lan0',
      '198.18.0.10 dev $(reboot) lladdr ce:bd:ba:4b:61:cf REACHABLE',
      '',
    ]) {
      expect(parseNeighbourEvent(line)).toBeNull();
    }
  });
});

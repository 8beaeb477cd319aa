import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { countByUplink, updateAssignments } from '../../src/core/assign.js';
import { leastLoaded } from '../../src/core/balance/host.js';
import type { Candidate } from '../../src/core/balance/strategy.js';
import { isNeighbourNews } from '../../src/core/clients.js';
import { labConfig } from '../helpers/scenario.js';
import type { Neighbour } from '../../src/model/kernel.js';
import type { ClientRecord, UplinkView } from '../../src/model/state.js';

function uplink(name: string, index: number, weight: number, state: 'up' | 'down' = 'up'): UplinkView {
  return { name, index, interface: `ppp${index}`, weight, tier: 1, state, reason: '', present: true, pointToPoint: true };
}

function neighbours(count: number, offset = 0): Neighbour[] {
  return Array.from({ length: count }, (_, i) => {
    const n = 10 + offset + i;
    return { ip: `198.18.${n >> 8}.${n & 255}`, mac: `02:00:00:00:${(n >> 8).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')}`, dev: 'lan0', complete: true };
  });
}

const NOW = 1_700_000_000_000;

function assign(uplinks: UplinkView[], present: Neighbour[], assignments: ReadonlyMap<string, ClientRecord> = new Map<string, ClientRecord>(), extra: Partial<Parameters<typeof updateAssignments>[0]> = {}) {
  return updateAssignments({ assignments, lastSeen: new Map(), present, uplinks, now: NOW, complete: true, expireMs: 0, max: 1_000_000, perMac: 1_000_000, ...extra });
}

describe('least load', () => {
  test('clients ÷ weight, ties to the higher weight, then config order', () => {
    const c: Candidate[] = [
      { name: 'a', weight: 1, index: 0 },
      { name: 'b', weight: 2, index: 1 },
      { name: 'c', weight: 2, index: 2 },
    ];
    expect(leastLoaded(new Map(), c).name).toBe('b');
    expect(leastLoaded(new Map([['b', 1]]), c).name).toBe('c');
    expect(
      leastLoaded(
        new Map([
          ['b', 1],
          ['c', 1],
        ]),
        c,
      ).name,
    ).toBe('a');
    expect(
      leastLoaded(
        new Map([
          ['a', 1],
          ['b', 2],
          ['c', 2],
        ]),
        c,
      ).name,
    ).toBe('b');
  });

  test('weights 2:1:1 fill 8 clients exactly 4:2:2', () => {
    const result = assign([uplink('isp1', 0, 2), uplink('isp2', 1, 1), uplink('isp3', 2, 1)], neighbours(8));
    expect(Object.fromEntries(countByUplink(result.assignments))).toEqual({ isp1: 4, isp2: 2, isp3: 2 });
  });

  test('property: for any weights and client count, the split is as balanced as the weights allow', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 256 }), { minLength: 1, maxLength: 16 }), fc.integer({ min: 0, max: 600 }), (weights, count) => {
        const uplinks = weights.map((w, i) => uplink(`u${i}`, i, w));
        const counts = countByUplink(assign(uplinks, neighbours(count)).assignments);
        const total = weights.reduce((a, b) => a + b, 0);
        let sum = 0;
        for (const [i, w] of weights.entries()) {
          const mine = counts.get(`u${i}`) ?? 0;
          sum += mine;
          // Taking one client away from any pool never leaves it less loaded than another pool:
          // (mine - 1) / w <= other / w'  (greedy least-load invariant, cross-multiplied).
          for (const [j, v] of weights.entries()) {
            if (mine > 0) expect((mine - 1) * v).toBeLessThanOrEqual((counts.get(`u${j}`) ?? 0) * w);
          }
          // And every pool is within one client of its exact proportional share… times the pool count.
          expect(Math.abs(mine - (count * w) / total)).toBeLessThanOrEqual(weights.length);
        }
        expect(sum).toBe(count);
      }),
    );
  });

  test('property: the result does not depend on the order clients are listed in', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 8 }), { minLength: 2, maxLength: 5 }), fc.integer({ min: 1, max: 60 }), fc.integer(), (weights, count, seed) => {
        const uplinks = weights.map((w, i) => uplink(`u${i}`, i, w));
        const ordered = neighbours(count);
        const shuffled = [...ordered].sort((a, b) => ((a.ip.length * seed) % 7) - ((b.ip.length * seed) % 7) || (a.ip < b.ip ? 1 : -1));
        expect(assign(uplinks, shuffled).assignments).toEqual(assign(uplinks, ordered).assignments);
      }),
    );
  });
});

describe('sticky assignments', () => {
  test('present clients keep their uplink even when another is emptier', () => {
    const first = assign([uplink('a', 0, 1), uplink('b', 1, 1)], neighbours(4));
    const again = assign([uplink('a', 0, 1), uplink('b', 1, 100)], neighbours(4), first.assignments);
    expect(again.added).toEqual([]);
    expect([...again.assignments].map(([ip, r]) => [ip, r.uplink])).toEqual([...first.assignments].map(([ip, r]) => [ip, r.uplink]));
  });

  test('new clients go to live uplinks only; with none live, to any', () => {
    const down = [uplink('a', 0, 1, 'down'), uplink('b', 1, 1)];
    expect(new Set(assign(down, neighbours(5)).added.map((a) => a.uplink))).toEqual(new Set(['b']));
    const allDown = [uplink('a', 0, 1, 'down'), uplink('b', 1, 1, 'down')];
    expect(new Set(assign(allDown, neighbours(4)).added.map((a) => a.uplink))).toEqual(new Set(['a', 'b']));
  });

  test('clients of an uplink removed from the config are moved, pins included', () => {
    const old = new Map<string, ClientRecord>([
      ['198.18.0.10', { uplink: 'gone', mac: '', interface: 'lan0', pinned: true, firstSeen: 1 }],
      ['198.18.0.11', { uplink: 'a', mac: '', interface: 'lan0', pinned: false, firstSeen: 1 }],
    ]);
    const result = assign([uplink('a', 0, 1), uplink('b', 1, 1)], [], old);
    expect(result.moved).toEqual([{ ip: '198.18.0.10', from: 'gone', uplink: 'b' }]);
    expect(result.assignments.get('198.18.0.10')?.pinned).toBe(false);
  });

  test('absent clients expire only on a full scan, pinned ones never; one never seen since counts from its firstSeen', () => {
    const day = 86_400_000;
    const old = new Map<string, ClientRecord>([
      ['198.18.0.10', { uplink: 'a', mac: '', interface: 'lan0', pinned: false, firstSeen: 1 }],
      ['198.18.0.11', { uplink: 'a', mac: '', interface: 'lan0', pinned: true, firstSeen: 1 }],
      ['198.18.0.12', { uplink: 'a', mac: '', interface: 'lan0', pinned: false, firstSeen: 1 }],
      ['198.18.0.13', { uplink: 'a', mac: '', interface: 'lan0', pinned: false, firstSeen: 1 }],
    ]);
    const lastSeen = new Map([
      ['198.18.0.10', NOW - 2 * day],
      ['198.18.0.11', NOW - 2 * day],
      ['198.18.0.12', NOW - day / 2],
    ]);
    const uplinks = [uplink('a', 0, 1)];
    expect(assign(uplinks, [], old, { expireMs: day, lastSeen, complete: false }).expired).toEqual([]);
    const scanned = assign(uplinks, [], old, { expireMs: day, lastSeen });
    expect(scanned.expired).toEqual(['198.18.0.10', '198.18.0.13']);
    expect([...scanned.assignments.keys()]).toEqual(['198.18.0.11', '198.18.0.12']);
  });

  test('clients.max refuses new clients beyond the cap', () => {
    const result = assign([uplink('a', 0, 1)], neighbours(5), new Map(), { max: 3 });
    expect(result.added).toHaveLength(3);
    // Refused clients hold nothing: not seen.
    expect(result.seen).toEqual(result.added.map((a) => a.ip));
    expect(result.refused.map((r) => [r.ip, r.cap])).toEqual([
      ['198.18.0.13', 'clients.max'],
      ['198.18.0.14', 'clients.max'],
    ]);
  });

  test('clients.per_mac: one MAC claiming many addresses gets the first ones only; other MACs are unaffected', () => {
    const claimer = neighbours(100).map((n) => ({ ...n, mac: '02:aa:aa:aa:aa:aa' }));
    const others = neighbours(3, 200);
    const result = assign([uplink('a', 0, 1), uplink('b', 1, 1)], [...claimer, ...others], new Map(), { perMac: 4 });
    expect(result.added.map((a) => a.ip)).toEqual(['198.18.0.10', '198.18.0.11', '198.18.0.12', '198.18.0.13', '198.18.0.210', '198.18.0.211', '198.18.0.212']);
    expect(result.refused).toHaveLength(96);
    expect(new Set(result.refused.map((r) => `${r.mac} ${r.cap}`))).toEqual(new Set(['02:aa:aa:aa:aa:aa clients.per_mac']));
    // Already assigned addresses count against the cap on later runs too.
    const later = assign([uplink('a', 0, 1)], claimer, result.assignments, { perMac: 4 });
    expect(later.added).toEqual([]);
    expect(later.assignments.size).toBe(7);
  });

  test('property: no MAC ever holds more new assignments than the cap, and the total never passes max', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 0, max: 5 })), { maxLength: 200 }), fc.integer({ min: 1, max: 10 }), fc.integer({ min: 1, max: 150 }), (entries, perMac, max) => {
        const present = entries.map(([host, macId]) => ({ ip: `198.18.1.${(host % 250) + 1}`, mac: `02:00:00:00:00:0${macId}`, dev: 'lan0', complete: true }));
        const result = assign([uplink('a', 0, 1), uplink('b', 1, 2)], present, new Map(), { perMac, max });
        const byMac = new Map<string, number>();
        for (const record of result.assignments.values()) byMac.set(record.mac, (byMac.get(record.mac) ?? 0) + 1);
        expect(Math.max(0, ...byMac.values())).toBeLessThanOrEqual(perMac);
        expect(result.assignments.size).toBeLessThanOrEqual(max);
        const refused = new Set(result.refused.map((r) => r.ip));
        for (const { ip } of present) expect(result.assignments.has(ip) || refused.has(ip)).toBe(true);
      }),
    );
  });

  test('a present client at another MAC or interface: its record follows', () => {
    const first = assign([uplink('a', 0, 1)], neighbours(1));
    const moved = [{ ...neighbours(1)[0]!, mac: '02:00:00:00:00:99', dev: 'lan1' }];
    const later = updateAssignments({ assignments: first.assignments, lastSeen: new Map(), present: moved, uplinks: [uplink('a', 0, 1)], now: NOW + 5, complete: true, expireMs: 0, max: 10, perMac: 10 });
    expect(later.assignments.get('198.18.0.10')).toEqual({ uplink: 'a', mac: '02:00:00:00:00:99', interface: 'lan1', pinned: false, firstSeen: NOW });
    expect(later.updated).toEqual(['198.18.0.10']);
  });

  test('a present client keeps its record however long since it was last seen: a scan of 50,000 present clients writes none (when they were seen is kept apart)', () => {
    const day = 86_400_000;
    const first = assign([uplink('a', 0, 1)], neighbours(2), new Map(), { expireMs: day });
    const lastSeen = new Map([
      ['198.18.0.10', NOW],
      ['198.18.0.11', NOW],
    ]);
    for (const now of [NOW + 1, NOW + day - 1, NOW + 30 * day]) {
      const later = assign([uplink('a', 0, 1)], neighbours(2), first.assignments, { expireMs: day, lastSeen, now });
      expect(later.assignments).toBe(first.assignments);
      expect(later.expired).toEqual([]);
      expect(later.seen).toEqual(['198.18.0.10', '198.18.0.11']);
    }
  });

  test('a scan that changes nothing hands back the assignments it was given; one that changes something never writes into them', () => {
    const day = 86_400_000;
    const first = assign([uplink('a', 0, 1), uplink('b', 1, 1)], neighbours(4), new Map(), { expireMs: day });
    const given = first.assignments;
    const before = [...given];
    const steady = assign([uplink('a', 0, 1), uplink('b', 1, 1)], neighbours(4), given, { expireMs: day, now: NOW + 1000 });
    expect(steady.assignments).toBe(given);
    expect(steady).toMatchObject({ added: [], moved: [], expired: [], updated: [], refused: [], addresses6: 0 });
    // Each kind of change: a new client, another device at an address, an uplink removed, an expiry, an IPv6 address joining.
    const changes: Parameters<typeof assign>[] = [
      [[uplink('a', 0, 1), uplink('b', 1, 1)], neighbours(5), given, { expireMs: day, now: NOW + 1000 }],
      [[uplink('a', 0, 1), uplink('b', 1, 1)], [{ ...neighbours(1)[0]!, mac: '02:00:00:00:00:99' }], given, { complete: false, now: NOW + 1000 }],
      [[uplink('a', 0, 1)], neighbours(4), given, { expireMs: day, now: NOW + 1000 }],
      [[uplink('a', 0, 1), uplink('b', 1, 1)], neighbours(2), given, { expireMs: 60_000, now: NOW + 10 * 60_000 }],
      [[uplink('a', 0, 1), uplink('b', 1, 1)], [...neighbours(4), { ip: 'fd00:18::10', mac: neighbours(1)[0]!.mac, dev: 'lan0', complete: true }], given, { expireMs: day, now: NOW + 1000 }],
    ];
    for (const args of changes) {
      const result = assign(...args);
      expect(result.assignments).not.toBe(given);
      expect(result.added.length + result.moved.length + result.expired.length + result.updated.length + result.addresses6).toBeGreaterThan(0);
      expect([...given]).toEqual(before);
    }
  });

  test('an absent client expires once clients.expire has passed since it was last seen, not before', () => {
    const expireMs = 5 * 60_000;
    const seen = NOW - 1234;
    const old = new Map<string, ClientRecord>([['198.18.0.10', { uplink: 'a', mac: '', interface: 'lan0', pinned: false, firstSeen: 1 }]]);
    const at = (now: number) => assign([uplink('a', 0, 1)], [], old, { expireMs, now, lastSeen: new Map([['198.18.0.10', seen]]) }).expired;
    expect(at(seen + expireMs)).toEqual([]);
    expect(at(seen + expireMs + 1)).toEqual(['198.18.0.10']);
  });
});

describe('which neighbour events are news', () => {
  const record: ClientRecord = { uplink: 'isp1', mac: '02:00:00:00:00:0a', interface: 'lan0', pinned: false, firstSeen: 0 };
  const known = new Map([['198.18.0.10', record]]);
  const event = (ip: string, mac: string, dev: string): Neighbour => ({ ip, mac, dev, complete: true });

  test('a new client, or a known address at another MAC or interface, needs a run', () => {
    expect(isNeighbourNews(labConfig, known, event('198.18.0.11', '02:00:00:00:00:0b', 'lan0'))).toBe(true);
    expect(isNeighbourNews(labConfig, known, event('198.18.0.10', '02:00:00:00:00:ff', 'lan0'))).toBe(true);
  });

  test("state churn of a known client, and neighbours off the LAN (the ISPs' routers), do not", () => {
    expect(isNeighbourNews(labConfig, known, event('198.18.0.10', '02:00:00:00:00:0a', 'lan0'))).toBe(false);
    expect(isNeighbourNews(labConfig, known, event('192.0.2.1', '02:00:00:00:00:01', 'ppp0'))).toBe(false);
  });
});

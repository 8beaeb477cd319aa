// balance.assign: traffic and dispatcher rebalance, the pure parts: rates
// from two counter readings, the line a new client joins by measured load,
// which idle clients a rebalance moves, and which clients conntrack says are busy.

import { describe, expect, test } from '@jest/globals';
import { planRebalance, trafficStrategy } from '../../src/core/balance/traffic.js';
import { poolRates } from '../../src/core/traffic.js';
import type { ClientRecord } from '../../src/model/state.js';
import { busySources, untranslatedByUplink } from '../../src/parse/conntrack.js';
import { uplinkView } from '../helpers/uplink-view.js';

const VIEWS = [uplinkView('isp1', 0, 'ppp0'), uplinkView('isp2', 1, 'ppp1'), uplinkView('lte', 2, 'wan0', { tier: 2 })];
const candidates = VIEWS.slice(0, 2).map(({ name, weight, index }) => ({ name, weight, index }));
const record = (uplink: string, pinned = false): ClientRecord => ({ uplink, mac: '', interface: 'lan0', pinned, firstSeen: 0 });

describe('pool rates', () => {
  test('bytes per second between the oldest and the newest reading, sent and received together; a counter that went down counts from 0', () => {
    const rates = poolRates([
      { at: 0, pools: { isp1: { sent: 1000, received: 9000 }, isp2: { sent: 5000, received: 5000 } } },
      { at: 5000, pools: { isp1: { sent: 2000, received: 58_000 }, isp2: { sent: 100, received: 400 } } },
    ]);
    expect(rates).toEqual(
      new Map([
        ['isp1', 10_000],
        ['isp2', 100],
      ]),
    );
    expect(poolRates([{ at: 0, pools: {} }])).toBeNull();
  });
});

describe('assign: traffic', () => {
  test('a new client joins the line with the least bytes per second ÷ weight, not the fewest clients', () => {
    const counts = new Map([
      ['isp1', 1],
      ['isp2', 3],
    ]);
    const strategy = trafficStrategy(
      new Map([
        ['isp1', 0],
        ['isp2', 0],
      ]),
      counts,
    );
    // Nothing measured: the counts decide.
    expect(strategy.choose(counts, candidates).name).toBe('isp1');
    const busy = trafficStrategy(
      new Map([
        ['isp1', 800_000],
        ['isp2', 1000],
      ]),
      counts,
    );
    expect(busy.choose(counts, candidates).name).toBe('isp2');
  });

  test('each client of a burst adds what the average client carries, so a burst is spread', () => {
    // 4 clients, 400 kB/s in all: 100 kB/s each. isp1 carries 300, isp2 100.
    const counts = new Map([
      ['isp1', 2],
      ['isp2', 2],
    ]);
    const strategy = trafficStrategy(
      new Map([
        ['isp1', 300_000],
        ['isp2', 100_000],
      ]),
      counts,
    );
    const current = new Map(counts);
    const chosen: string[] = [];
    for (let i = 0; i < 4; i++) {
      const line = strategy.choose(current, candidates).name;
      chosen.push(line);
      current.set(line, (current.get(line) ?? 0) + 1);
    }
    // isp2 100 → 200 → 300 (tie: the earlier line, isp1, by config order) → …
    expect(chosen).toEqual(['isp2', 'isp2', 'isp1', 'isp2']);
  });
});

describe('rebalance', () => {
  const assignments = new Map<string, ClientRecord>([
    ['198.18.0.10', record('isp1')],
    ['198.18.0.11', record('isp1')],
    ['198.18.0.12', record('isp1', true)],
    ['198.18.0.13', record('isp1')],
    ['198.18.0.20', record('isp2')],
  ]);

  test('moves idle clients from the busiest line to the quietest while the gap narrows; never a busy or pinned one', () => {
    // 500 kB/s in all, 5 clients: 100 kB/s each. isp1 carries all of it.
    const plan = planRebalance({
      assignments,
      uplinks: VIEWS,
      rates: new Map([
        ['isp1', 500_000],
        ['isp2', 0],
      ]),
      busy: new Set(['198.18.0.10']),
    });
    expect(plan.moves).toEqual([
      { ip: '198.18.0.11', from: 'isp1', to: 'isp2' },
      { ip: '198.18.0.13', from: 'isp1', to: 'isp2' },
    ]);
    expect(plan.before).toEqual({ isp1: 500_000, isp2: 0 });
    expect(plan.after).toEqual({ isp1: 300_000, isp2: 200_000 });
    expect({ idle: plan.idle, busy: plan.busy }).toEqual({ idle: 3, busy: 1 });
  });

  test('nothing moves when nothing is measured, when the lines are even, or onto a line that does not carry', () => {
    expect(planRebalance({ assignments, uplinks: VIEWS, rates: new Map(), busy: new Set() }).moves).toEqual([]);
    expect(
      planRebalance({
        assignments,
        uplinks: VIEWS,
        rates: new Map([
          ['isp1', 100_000],
          ['isp2', 100_000],
        ]),
        busy: new Set(),
      }).moves,
    ).toEqual([]);
    const isp2Down = VIEWS.map((v) => (v.name === 'isp2' ? { ...v, state: 'down' as const } : v));
    expect(planRebalance({ assignments, uplinks: isp2Down, rates: new Map([['isp1', 500_000]]), busy: new Set() }).moves).toEqual([]);
  });
});

describe('conntrack', () => {
  test('busy: the original source of each entry whose mark has a connection field', () => {
    const text = [
      'tcp      6 431999 ESTABLISHED src=198.18.0.10 dst=203.0.113.100 sport=40000 dport=7 src=203.0.113.100 dst=192.0.2.2 sport=7 dport=40000 [ASSURED] mark=268435456 use=1',
      'udp      17 29 src=198.18.0.11 dst=198.18.0.1 sport=5353 dport=9 [UNREPLIED] src=198.18.0.1 dst=198.18.0.11 sport=9 dport=5353 mark=16777216 use=1',
      'icmp     1 29 src=198.18.0.12 dst=203.0.113.9 type=8 code=0 id=7 src=203.0.113.9 dst=192.0.2.6 type=0 code=0 id=7 mark=553648128 use=1',
    ].join('\n');
    expect(busySources(text, 0xf0000000)).toEqual(new Set(['198.18.0.10', '198.18.0.12']));
  });

  test('untranslated: entries that left by an uplink with their source as it was, one (source, uplink) pair each', () => {
    const text = [
      // Translated: kept.
      'udp      17 29 src=198.18.0.10 dst=203.0.113.100 sport=40000 dport=9000 [UNREPLIED] src=203.0.113.100 dst=192.0.2.2 sport=9000 dport=40000 mark=268435456 use=1',
      // Untranslated, by uplink 1 (twice) and uplink 2.
      'udp      17 29 src=198.18.0.11 dst=203.0.113.100 sport=40001 dport=9000 [UNREPLIED] src=203.0.113.100 dst=198.18.0.11 sport=9000 dport=40001 mark=268435456 use=1',
      'tcp      6 431999 ESTABLISHED src=198.18.0.11 dst=203.0.113.9 sport=40002 dport=443 src=203.0.113.9 dst=198.18.0.11 sport=443 dport=40002 [ASSURED] mark=285212672 use=1',
      'tcp      6 431999 ESTABLISHED src=198.18.0.11 dst=203.0.113.9 sport=40003 dport=443 src=203.0.113.9 dst=198.18.0.11 sport=443 dport=40003 [ASSURED] mark=536870912 use=1',
      // Untranslated without an uplink (to the gateway itself): not this function's.
      'udp      17 29 src=198.18.0.12 dst=198.18.0.1 sport=5353 dport=53 src=198.18.0.1 dst=198.18.0.12 sport=53 dport=5353 mark=0 use=1',
    ].join('\n');
    expect(untranslatedByUplink(text, 0xf0000000)).toEqual([
      { source: '198.18.0.11', connMark: 0x10000000 },
      { source: '198.18.0.11', connMark: 0x20000000 },
    ]);
  });
});

// The passive signal's pure parts: the stall watch fed with counters, and the
// reading of /proc/net/dev.

import { describe, expect, test } from '@jest/globals';
import { StallWatch, TRAFFIC_WINDOW_MS } from '../../src/core/stall.js';
import { parseNetDev } from '../../src/parse/proc-net-dev.js';

describe('stall watch', () => {
  test('sent and nothing received for the stall time: a stall, reported once, then watched afresh', () => {
    const watch = new StallWatch(300);
    expect(watch.sample(0, 10, 10)).toBeNull();
    // Both counters move: the line speaks.
    expect(watch.sample(25, 11, 11)).toBeNull();
    // Only sent from 50 ms on.
    const seen: (string | null)[] = [];
    for (let at = 50, tx = 12; at <= 400; at += 25, tx++) seen.push(watch.sample(at, 11, tx));
    expect(seen.filter((s) => s !== null)).toEqual(['packets sent and none received for 300 ms']);
    // The stall was at 350 ms (50 + 300); the next needs another 300 ms from the next packet sent.
    expect(seen.findIndex((s) => s !== null)).toBe((350 - 50) / 25);
  });

  test('a line that sends nothing never stalls, however long nothing arrives', () => {
    const watch = new StallWatch(300);
    for (let at = 0; at <= 10_000; at += 25) expect(watch.sample(at, 5, 7)).toBeNull();
  });

  test('anything received restarts the wait; a sample that saw both counts as received', () => {
    const watch = new StallWatch(300);
    watch.sample(0, 1, 1);
    expect(watch.sample(100, 1, 2)).toBeNull();
    expect(watch.sample(250, 2, 3)).toBeNull();
    expect(watch.sample(375, 2, 4)).toBeNull();
    expect(watch.sample(650, 2, 5)).toBeNull();
    expect(watch.sample(675, 2, 5)).toBe('packets sent and none received for 300 ms');
  });

  test('restart forgets what was unanswered (a burst was answered)', () => {
    const watch = new StallWatch(100);
    watch.sample(0, 1, 1);
    watch.sample(25, 1, 2);
    watch.restart();
    expect(watch.sample(150, 1, 2)).toBeNull();
    expect(watch.sample(175, 1, 3)).toBeNull();
    expect(watch.sample(275, 1, 3)).toBe('packets sent and none received for 100 ms');
  });

  test('counters that restart (a new interface of the same name) count as received', () => {
    const watch = new StallWatch(100);
    watch.sample(0, 500, 500);
    watch.sample(25, 500, 501);
    expect(watch.sample(150, 0, 3)).toBeNull();
    expect(watch.sample(175, 0, 4)).toBeNull();
  });

  test('a line carries traffic when it sent more than twice its probes and a few packets more over a full window', () => {
    const watch = new StallWatch(300);
    const probes = 10;
    // Only its probes (one every 100 ms) for a second: not carrying, sampled every 100 ms.
    let tx = 0;
    for (let at = 0; at <= 1000; at += 100, tx++) watch.sample(at, tx, tx, probes);
    expect(watch.carriesTraffic).toBe(false);
    // A client's stream of 100 packets a second on top: judged by the end of the next full window.
    for (let at = 1100; at <= 1000 + TRAFFIC_WINDOW_MS + 100; at += 100) {
      tx += 11;
      watch.sample(at, tx, tx, probes);
    }
    expect(watch.carriesTraffic).toBe(true);
    // The same rate is nothing but probes on a line with ten times the probes.
    const busier = new StallWatch(300);
    for (let at = 0, sent = 0; at <= 1000; at += 100, sent += 11) busier.sample(at, sent, sent, 100);
    expect(busier.carriesTraffic).toBe(false);
    // Counters that restart start a new window rather than a negative one; the stream's end is seen a window later.
    watch.sample(2000, 0, 0, probes);
    expect(watch.carriesTraffic).toBe(true);
    watch.sample(2000 + TRAFFIC_WINDOW_MS, 1, 2, probes);
    expect(watch.carriesTraffic).toBe(false);
  });
});

describe('/proc/net/dev', () => {
  test('packet counters by interface; headers skipped', () => {
    const text = [
      'Inter-|   Receive                                                |  Transmit',
      ' face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed',
      '    lo:    1234      12    0    0    0     0          0         0     1234      12    0    0    0     0       0          0',
      '  ppp0: 98765432  123456    0    3    0     0          0         0 12345678   65432    0    0    0     0       0          0',
      'wan.10:0 1 0 0 0 0 0 0 0 2 0 0 0 0 0 0',
      '',
    ].join('\n');
    expect([...parseNetDev(text)]).toEqual([
      ['lo', { rxPackets: 12, txPackets: 12 }],
      ['ppp0', { rxPackets: 123456, txPackets: 65432 }],
      ['wan.10', { rxPackets: 1, txPackets: 2 }],
    ]);
  });
});

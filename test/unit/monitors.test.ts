// After the kernel dropped neighbour events (netlink overrun), the rescan that
// repairs them waits for the burst to end: a table dump taken while entries
// are still being inserted misses some. Events that keep arriving (the rest of
// the burst) are what says it has not ended; a storm that never ends is
// scanned after SETTLE_SCAN_MAX_MS all the same.

import { expect, test } from '@jest/globals';
import { Monitors } from '../../src/engine/monitors.js';
import { NEIGHBOURS_LOST_REASON, type Reconciler } from '../../src/engine/reconciler.js';
import { silentLogger } from '../../src/system/logger.js';
import { watchNetfilter } from '../../src/system/netfilter-events.js';
import { FakeRunner } from '../helpers/fake-runner.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { labConfig } from '../helpers/scenario.js';

function watched(config = labConfig): {
  clock: ManualClock;
  requests: string[];
  events: (from: number, to: number, everyMs: number) => Promise<void>;
  overrun: () => void;
  linkOverrun: () => void;
  linkLine: (line: string) => void;
  monitors: Monitors;
} {
  const clock = new ManualClock();
  const runner = new FakeRunner();
  const requests: string[] = [];
  const reconciler = {
    effectiveConfig: config,
    clients: new Map(),
    request: (reason: string) => {
      requests.push(reason);
      return new Promise(() => undefined);
    },
  } as unknown as Reconciler;
  const monitors = new Monitors({ runner, log: silentLogger, clock, reconciler });
  monitors.start();
  const neigh = runner.spawned.find((s) => s.argv.join(' ').endsWith('monitor neigh'));
  const event = (n: number): void => neigh?.options.onLine?.(`198.18.${4 + (n >> 8)}.${n & 255} dev lan0 lladdr 02:be:00:00:${((n >> 8) & 255).toString(16).padStart(2, '0')}:${(n & 255).toString(16).padStart(2, '0')} PERMANENT`);
  const link = runner.spawned.find((s) => s.argv.join(' ').endsWith('monitor link address'));
  const lost = 'netlink receive error No buffer space available (105)';
  /** Neighbour events numbered from..to-1, one every `everyMs`. */
  const events = async (from: number, to: number, everyMs: number): Promise<void> => {
    for (let n = from; n < to; n++) {
      await clock.advance(everyMs);
      event(n);
    }
  };
  return { clock, requests, events, overrun: () => neigh?.options.onErrorLine?.(lost), linkOverrun: () => link?.options.onErrorLine?.(lost), linkLine: (line) => link?.options.onLine?.(line), monitors };
}

test('the rescan after lost events waits until the burst has been quiet for 250 ms, then one more confirms 2 s later', async () => {
  const { clock, requests, events, overrun } = watched();
  overrun();
  // The burst goes on for 3 s after the loss, an event every 100 ms.
  await events(0, 30, 100);
  const rescans = (): string[] => requests.filter((r) => r.includes('events lost'));
  expect(rescans()).toEqual([]);
  await clock.advance(249);
  expect(rescans()).toEqual([]);
  await clock.advance(1);
  // Only neighbour events were lost: the rescan reads the neighbour table, and may trust the rules.
  expect(rescans()).toEqual([NEIGHBOURS_LOST_REASON]);
  await clock.advance(2000);
  expect(rescans()).toEqual([NEIGHBOURS_LOST_REASON, NEIGHBOURS_LOST_REASON]);
});

test('the neighbour events are trusted to report every change since the monitor started, or since events were last lost once their rescans are done (a scheduled scan may then skip the table)', async () => {
  const { clock, events, overrun, monitors } = watched();
  const started = clock.now();
  expect(monitors.neighboursWatchedSince).toBe(started);
  await events(0, 3, 100);
  expect(monitors.neighboursWatchedSince).toBe(started);
  overrun();
  const lost = clock.now();
  // Until the settle scan and its confirmation have been asked for, nothing is trusted.
  expect(monitors.neighboursWatchedSince).toBeNull();
  await clock.advance(250);
  expect(monitors.neighboursWatchedSince).toBeNull();
  await clock.advance(2000);
  // Then only a table read after the loss may be trusted with the events since.
  expect(monitors.neighboursWatchedSince).toBe(lost);
  monitors.stop();
});

test('a burst that never ends is rescanned 5 s after the first loss all the same', async () => {
  const { requests, events, overrun } = watched();
  overrun();
  await events(0, 49, 100);
  expect(requests.filter((r) => r === NEIGHBOURS_LOST_REASON)).toEqual([]);
  // Events go on past the 5 s, every 10 ms: they no longer put it off.
  await events(49, 70, 10);
  expect(requests.filter((r) => r === NEIGHBOURS_LOST_REASON)).toEqual([NEIGHBOURS_LOST_REASON]);
});

test("an address event on the LAN asks for a run in IPv6 nat mode with ddns only (the gateway's published address per line is made of it)", () => {
  const event = '2: lan0    inet6 fd00:18::1/64 scope global ';
  const off = watched();
  off.linkLine(event);
  expect(off.requests).toEqual([]);
  const nat = { ...labConfig, lan: { ...labConfig.lan, ipv6: { mode: 'nat' as const, prefix: 'fd00:18::/64' } } };
  const withoutDdns = watched(nat);
  withoutDdns.linkLine(event);
  expect(withoutDdns.requests).toEqual([]);
  const ddns = { server: '203.0.113.53', port: 53, zone: 'example.test', name: 'gw.example.test', keyFile: '/k', ttl: 60, exclude: [], everyMs: 300_000, timeoutMs: 5000 };
  const published = watched({ ...nat, ddns });
  published.linkLine(event);
  expect(published.requests).toEqual(['link event on lan0']);
});

test('lost link events too: the rescan reads the whole kernel, not only the neighbour table', async () => {
  const { clock, requests, overrun, linkOverrun } = watched();
  overrun();
  linkOverrun();
  await clock.advance(250);
  expect(requests.filter((r) => r.includes('events lost'))).toEqual(['events lost']);
});

test("nft monitor's transactions are told with their committer; its word for dropped events is told apart (self-repair then reads the kernel)", () => {
  const runner = new FakeRunner();
  const transactions: string[][] = [];
  let lost = 0;
  watchNetfilter(
    runner,
    ['nft', 'monitor'],
    (lines, end) => transactions.push([...lines, `by ${end.process}`]),
    () => lost++,
  );
  const { onLine } = runner.spawned[0]?.options ?? {};
  for (const line of ['delete rule ip mangle PREROUTING handle 6', '# ERROR: We lost some netlink events!', '# new generation 42 by process 4711 (nft)']) onLine?.(line);
  expect(transactions).toEqual([['delete rule ip mangle PREROUTING handle 6', 'by nft']]);
  expect(lost).toBe(1);
});

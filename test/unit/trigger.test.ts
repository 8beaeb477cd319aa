// The trigger queue in front of the reconcile loop: bursts coalesce into one
// run, runs start at least the minimum interval apart, a failed run is
// retried as a full resync with a backoff that doubles and resets — all on a
// clock the test drives.

import { describe, expect, test } from '@jest/globals';
import { TriggerQueue, type Batch } from '../../src/engine/trigger.js';
import { ManualClock } from '../helpers/manual-clock.js';

interface Report {
  readonly ok: boolean;
  readonly batch: Batch;
  readonly at: number;
}

function queue(clock: ManualClock, outcome: (n: number) => boolean = () => true, minIntervalMs = 50) {
  const runs: Report[] = [];
  const q = new TriggerQueue<Report>({
    clock,
    minIntervalMs,
    run: async (batch) => {
      const report = { ok: outcome(runs.length), batch, at: clock.now() };
      runs.push(report);
      return report;
    },
    succeeded: (r) => r.ok,
  });
  return { q, runs };
}

describe('trigger queue', () => {
  test('triggers in one tick become one run carrying every reason, scan and edit; each caller gets that run', async () => {
    const clock = new ManualClock();
    const { q, runs } = queue(clock);
    const edit = (): void => undefined;
    const answers = Promise.all([q.request('neighbour'), q.request('neighbour'), q.request('link event on wan0', { scan: true }), q.request('assign', { edit })]);
    await clock.flush();
    const reports = await answers;
    expect(runs).toHaveLength(1);
    expect(runs[0]?.batch).toMatchObject({ reasons: ['neighbour', 'link event on wan0', 'assign'], scan: true, edits: [edit] });
    expect(new Set(reports)).toEqual(new Set([runs[0]]));
  });

  test('runs start at least the minimum interval apart; what arrives meanwhile waits and coalesces', async () => {
    const clock = new ManualClock();
    const { q, runs } = queue(clock, () => true, 50);
    await clock.flush();
    void q.request('first');
    await clock.flush();
    expect(runs).toHaveLength(1);
    for (let i = 0; i < 100; i++) void q.request(`storm ${i % 3}`);
    await clock.advance(10);
    expect(runs).toHaveLength(1);
    await clock.advance(40);
    expect(runs).toHaveLength(2);
    expect(runs[1]?.at).toBe((runs[0]?.at ?? 0) + 50);
    expect(runs[1]?.batch.reasons).toEqual(['storm 0', 'storm 1', 'storm 2']);
  });

  test('held requests wait for release and then run once', async () => {
    const clock = new ManualClock();
    const { q, runs } = queue(clock);
    q.hold();
    void q.request('a');
    void q.request('b', { scan: true });
    await clock.advance(1000);
    expect(runs).toHaveLength(0);
    q.release();
    await clock.flush();
    expect(runs.map((r) => r.batch.reasons)).toEqual([['a', 'b']]);
  });

  test('holds nest: a prepared failover holding the queue during start-up does not release the start-up hold', async () => {
    const clock = new ManualClock();
    const { q, runs } = queue(clock);
    q.hold();
    q.hold();
    void q.request('a');
    q.release();
    await clock.advance(1000);
    expect(runs).toHaveLength(0);
    q.release();
    await clock.flush();
    expect(runs).toHaveLength(1);
  });

  test('settled() waits for the run under way; held meanwhile, the next run waits for release (a prepared transition in between)', async () => {
    const clock = new ManualClock();
    let open: () => void = () => undefined;
    const started: (readonly string[])[] = [];
    const q = new TriggerQueue<{ ok: boolean }>({
      clock,
      run: async (batch) => {
        started.push(batch.reasons);
        await new Promise<void>((resolve) => {
          open = resolve;
        });
        return { ok: true };
      },
      succeeded: (r) => r.ok,
    });
    await expect(q.settled()).resolves.toBeUndefined();
    void q.request('degraded');
    await clock.flush();
    expect(started).toEqual([['degraded']]);
    q.hold();
    void q.request('more');
    let settled = false;
    const waiting = q.settled().then(() => {
      settled = true;
    });
    await clock.advance(100);
    expect(settled).toBe(false);
    open();
    await waiting;
    await clock.advance(100);
    // Held: 'more' has not started.
    expect(started).toEqual([['degraded']]);
    q.release();
    await clock.flush();
    expect(started).toEqual([['degraded'], ['more']]);
    open();
  });

  test('a failed run is retried as a full resync after 1 s, 2 s, 4 s …; a success resets the backoff', async () => {
    const clock = new ManualClock();
    // Runs 0–2 fail, 3 succeeds, 4 fails.
    const { q, runs } = queue(clock, (n) => n === 3);
    void q.request('start');
    await clock.flush();
    await clock.advance(999);
    expect(runs).toHaveLength(1);
    await clock.advance(1);
    expect(runs).toHaveLength(2);
    expect(runs[1]?.batch).toMatchObject({ reasons: ['retry after failure'], scan: true });
    await clock.advance(2000);
    expect(runs).toHaveLength(3);
    await clock.advance(4000);
    expect(runs).toHaveLength(4);
    expect(runs[3]?.ok).toBe(true);
    void q.request('later');
    await clock.advance(100);
    expect(runs).toHaveLength(5);
    await clock.advance(1000);
    expect(runs).toHaveLength(6);
  });

  test('stop ends retries and further runs', async () => {
    const clock = new ManualClock();
    const { q, runs } = queue(clock, () => false);
    void q.request('start');
    await clock.flush();
    q.stop();
    void q.request('after stop');
    await clock.advance(60_000);
    expect(runs).toHaveLength(1);
    expect(clock.pendingTimers()).toBe(0);
  });
});

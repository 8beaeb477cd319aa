import { describe, expect, test } from '@jest/globals';
import { DAMPING_DEFAULTS, HEALTH_DEFAULTS } from '../../src/schema/config.js';
import { HEALTH_TICK_MS, UplinkHealth, worstCaseDetectionMs, type Transition } from '../../src/core/health.js';
import type { ProbeConfig } from '../../src/model/config.js';
import type { HealthVerdict, UplinkView } from '../../src/model/state.js';
import { DEGRADED_FACTOR, withHealth } from '../../src/core/uplinks.js';

const SETTINGS: ProbeConfig = { ...HEALTH_DEFAULTS, targets: [] };
const icmp = (...ids: string[]): { id: string; method: string }[] => ids.map((id) => ({ id, method: 'icmp' }));

/** A deterministic PRNG (mulberry32), so loss simulations are repeatable. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Whether the probe sent at time `at` (to `target`) comes back; and after how long. */
type Path = (at: number, target: string) => { back: boolean; rttMs: number };

/**
 * Drives a machine with the outcomes a probe method reports for one probe
 * every interval, when the icmp method (src/probes/icmp.ts) would report
 * them: answered when the reply comes back by the probe's deadline
 * (sent + timeout, and never before ping reports it unanswered, one interval
 * after sending); lost at that deadline otherwise, and a reply after it still
 * counts (as late). Evaluates every 10 ms.
 */
function simulate(machine: UplinkHealth, targets: string | readonly string[], from: number, to: number, path: Path, settings = SETTINGS): Transition[] {
  const transitions: Transition[] = [];
  const events: { at: number; run: () => void }[] = [];
  const deadline = Math.max(settings.intervalMs, settings.timeoutMs);
  for (const target of typeof targets === 'string' ? [targets] : targets) {
    const t = machine.targets.get(target)!;
    for (let at = from; at < to; at += settings.intervalMs) {
      const { back, rttMs } = path(at, target);
      if (!back || rttMs > deadline) events.push({ at: at + deadline, run: () => t.lost(undefined, at) });
      if (back) events.push({ at: at + rttMs, run: () => t.answered(rttMs, at) });
    }
  }
  events.sort((a, b) => a.at - b.at);
  let next = 0;
  for (let now = from; now <= to; now += 10) {
    while (next < events.length && (events[next] as { at: number }).at <= now) (events[next++] as { run: () => void }).run();
    const change = machine.evaluate(now);
    if (change) transitions.push(change);
  }
  return transitions;
}

const healthy: Path = () => ({ back: true, rttMs: 1 });

describe('uplink health', () => {
  test('the first answer makes an unknown uplink up; a silent failure is found within down × interval + timeout', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    expect(simulate(m, 't', 0, 2000, healthy)).toMatchObject([{ from: 'unknown', to: 'up', at: 10 }]);
    // The line dies silently at 5,000 ms, at the worst moment: just after a probe came back.
    const failAt = 5001;
    const changes = simulate(m, 't', 2000, 9000, (at) => ({ back: at + 1 < failAt, rttMs: 1 }));
    expect(changes).toHaveLength(1);
    expect(changes[0]).toMatchObject({ from: 'up', to: 'down' });
    const detected = (changes[0] as Transition).at - failAt;
    expect(detected).toBeLessThanOrEqual(worstCaseDetectionMs(SETTINGS));
    expect(worstCaseDetectionMs(SETTINGS)).toBe(1300);
    expect((changes[0] as Transition).reason).toMatch(/0 of 1 targets answer \(need 1\); t: 8 probes lost in a row/);
  });

  test('a line that comes back is up `up` answers after its return: the losses of probes sent before it, declared a timeout later, do not restart the run', () => {
    const m = new UplinkHealth('isp1', { ...SETTINGS, hold: 0 } as ProbeConfig, { ...DAMPING_DEFAULTS, suppress: 100 }, icmp('t'), 0);
    simulate(m, 't', 0, 2000, healthy);
    const backAt = 5000;
    const changes = simulate(m, 't', 2000, 8000, (at) => ({ back: at < 3000 || at >= backAt, rttMs: 1 }));
    expect(changes.map((c) => c.to)).toEqual(['down', 'up']);
    // Probes sent at 4600–4900 are declared lost at 5100–5400, after the first answers: the 10th answer (sent at 5900) decides.
    const upAt = (changes[1] as Transition).at;
    expect(upAt).toBeGreaterThanOrEqual(backAt + (SETTINGS.up - 1) * SETTINGS.intervalMs);
    expect(upAt).toBeLessThanOrEqual(backAt + SETTINGS.up * SETTINGS.intervalMs + 20);
  });

  test('10 % loss each way (19 % of round trips) for 100 simulated minutes never fails the uplink', () => {
    const next = random(42);
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    const changes = simulate(m, 't', 0, 100 * 60_000, () => ({ back: next() >= 0.1 && next() >= 0.1, rttMs: 2 }));
    expect(changes.map((c) => c.to)).toEqual(['up']);
    expect(m.snapshot(100 * 60_000).targets[0]?.lossPercent).toBeGreaterThan(5);
  });

  test('two targets corroborate: silent together, both die after half of `down` each, within 0.9 s', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('a', 'b'), 0);
    simulate(m, ['a', 'b'], 0, 2000, healthy);
    expect(m.state).toBe('up');
    const failAt = 5001;
    const changes = simulate(m, ['a', 'b'], 2000, 9000, (at) => ({ back: at + 1 < failAt, rttMs: 1 }));
    expect(changes.map((c) => c.to)).toEqual(['down']);
    const detected = (changes[0] as Transition).at - failAt;
    expect(worstCaseDetectionMs(SETTINGS, 2)).toBe(900);
    expect(detected).toBeLessThanOrEqual(900);
    expect(detected).toBeGreaterThan(worstCaseDetectionMs(SETTINGS, 2) - 2 * SETTINGS.intervalMs);
    expect((changes[0] as Transition).reason).toMatch(/0 of 2 targets answer \(need 1\); a: 4 probes lost in a row while 1 other target was as silent; b: 4 probes lost/);
    // Condemned, they must earn `up` answers in a row again: not back after 9 answers, back after 10.
    const back = simulate(m, ['a', 'b'], 9000, 12_000, healthy);
    expect(back.map((c) => c.to)).toEqual(['up']);
    expect((back[0] as Transition).at).toBeGreaterThanOrEqual(9000 + 9 * SETTINGS.intervalMs);
  });

  test('one silent target while another answers is only that target (it dies after `down`), and the line stays up', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('a', 'b', 'c'), 0);
    simulate(m, ['a', 'b', 'c'], 0, 1000, healthy);
    // b and c fall silent together, a keeps answering: reliability 1 is still met.
    const changes = simulate(m, ['a', 'b', 'c'], 1000, 5000, (_, target) => ({ back: target === 'a', rttMs: 1 }));
    expect(changes).toEqual([]);
    expect(m.snapshot(5000).targets.map((t) => t.alive)).toEqual([true, false, false]);
  });

  test('two targets at 10 % loss each way for 100 simulated minutes: corroboration never fires', () => {
    const next = random(7);
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('a', 'b'), 0);
    const changes = simulate(m, ['a', 'b'], 0, 100 * 60_000, () => ({ back: next() >= 0.1 && next() >= 0.1, rttMs: 2 }));
    expect(changes.map((c) => c.to)).toEqual(['up']);
  });

  test('a burst after a stall: enough answers keep the line; none take it down at once, naming the evidence', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('a', 'b'), 0, { passive: { stallMs: 300 } });
    simulate(m, ['a', 'b'], 0, 1000, healthy);
    expect(m.burstAnswered(new Set(['b']), 'packets sent and none received for 300 ms')).toBe('answered');
    expect(m.evaluate(1000)).toBeNull();
    expect(m.burstAnswered(new Set(), 'packets sent and none received for 325 ms')).toBe('silent');
    expect(m.evaluate(1010)).toMatchObject({ from: 'up', to: 'down', reason: expect.stringMatching(/^0 of 2 targets answer \(need 1\); a: packets sent and none received for 325 ms; a burst of 5 probes went unanswered; b: /) });
    expect(m.snapshot(1010).passive).toMatchObject({ stallMs: 300, answered: 1, silent: 1, last: 'packets sent and none received for 325 ms; a burst of 5 probes went unanswered by 2 of 2 targets' });
  });

  test('a burst with reliability 2 of 3: one answer is not enough; the silent targets die, the answering one lives', () => {
    const two = { ...SETTINGS, reliability: 2 };
    const m = new UplinkHealth('isp1', two, DAMPING_DEFAULTS, icmp('a', 'b', 'c'), 0);
    simulate(m, ['a', 'b', 'c'], 0, 1000, healthy, two);
    expect(m.burstAnswered(new Set(['c']), 'stall')).toBe('silent');
    expect(m.evaluate(1000)).toMatchObject({ to: 'down' });
    expect(m.snapshot(1000).targets.map((t) => t.alive)).toEqual([false, false, true]);
  });

  test("a burst waits three times the target's slowest recent answer, at least 30 ms, at most the timeout, after its last probe", () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('fast', 'slow', 'silent'), 0, { passive: { stallMs: 300 } });
    simulate(m, ['fast', 'slow'], 0, 1000, (_, target) => ({ back: true, rttMs: target === 'fast' ? 1 : 40 }));
    expect(Object.fromEntries(m.burstPlan())).toEqual({ fast: 20 + 30, slow: 20 + 120, silent: 20 + 500 });
    expect(m.snapshot(1000).passive?.detectionMs).toBe(300 + HEALTH_TICK_MS + 520);
    expect(new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('a'), 0).snapshot(0).passive).toBeNull();
  });

  test('a line losing 70 % is declared dead by the loss rule even without 8 losses in a row', () => {
    let n = 0;
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    simulate(m, 't', 0, 1000, healthy);
    // Pattern: answered, lost, lost, answered, lost, lost… never more than 2 in a row, 67 % lost.
    const changes = simulate(m, 't', 1000, 20_000, () => ({ back: n++ % 3 === 0, rttMs: 1 }));
    expect(changes[0]).toMatchObject({ to: 'down' });
    expect(changes[0]?.reason).toMatch(/% of the last 50 probes lost/);
  });

  test('replies slower than the latency limit count as lost', () => {
    const slow = { ...SETTINGS, latencyMs: 300 };
    const m = new UplinkHealth('isp1', slow, DAMPING_DEFAULTS, icmp('t'), 0);
    simulate(m, 't', 0, 1000, healthy, slow);
    const changes = simulate(m, 't', 1000, 5000, () => ({ back: true, rttMs: 400 }), slow);
    expect(changes.map((c) => c.to)).toEqual(['down']);
  });

  test('k of n: with reliability 2 of 3, one dead target is tolerated, two are not', () => {
    const two = { ...SETTINGS, reliability: 2 };
    const m = new UplinkHealth('isp1', two, DAMPING_DEFAULTS, icmp('a', 'b', 'c'), 0);
    for (const t of ['a', 'b', 'c']) simulate(m, t, 0, 1000, healthy, two);
    expect(m.state).toBe('up');
    expect(simulate(m, 'a', 1000, 4000, () => ({ back: false, rttMs: 0 }), two)).toEqual([]);
    expect(simulate(m, 'b', 1000, 4000, () => ({ back: false, rttMs: 0 }), two).map((c) => c.to)).toEqual(['down']);
  });

  test('failback needs `up` answers in a row, then the hold-down', () => {
    const held = { ...SETTINGS, holdMs: 5000 };
    const m = new UplinkHealth('isp1', held, DAMPING_DEFAULTS, icmp('t'), 0);
    simulate(m, 't', 0, 500, healthy, held);
    const down = simulate(m, 't', 500, 3000, () => ({ back: false, rttMs: 0 }), held);
    expect(down.map((c) => c.to)).toEqual(['down']);
    // Back at 3,000 ms: ten answers take 1 s, but the hold-down runs until 5 s after the fall.
    const back = simulate(m, 't', 3000, 12_000, healthy, held);
    expect(back.map((c) => c.to)).toEqual(['up']);
    expect((back[0] as Transition).at).toBeGreaterThanOrEqual((down[0] as Transition).at + 5000);
    expect(m.transitions).toBe(2);
  });

  test('flap damping: the third quick fall holds the line down until the penalty fades', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    // Up for 3 s, down for 3 s, three times over; then stable.
    const flapping: Path = (at) => ({ back: at > 18_000 || Math.floor(at / 3000) % 2 === 0, rttMs: 1 });
    const changes = simulate(m, 't', 0, 120_000, flapping);
    const states = changes.map((c) => c.to);
    expect(states.slice(0, 6)).toEqual(['up', 'down', 'up', 'down', 'up', 'down']);
    // After the third fall it stays down although the line is stable from 18 s on…
    const release = changes[6] as Transition;
    expect(release.to).toBe('up');
    // …until the penalty (about 2.6, halving every 30 s) is below 1: about 30 × log2(2.6) ≈ 41 s after the fall.
    expect(release.at - (changes[5] as Transition).at).toBeGreaterThan(35_000);
    expect(changes).toHaveLength(7);
    expect(m.transitions).toBe(6);
  });

  test('flap damping: a line that keeps flapping while held down stays held until it has been stable', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    simulate(m, 't', 0, 2000, healthy);
    const target = m.targets.get('t')!;
    // Carrier lost for 1 s every 5 s, for 200 s (longer than the penalty alone would hold); probes answer while it is there.
    // Those sent while it is gone report nothing: the monitor has the method forget them (voided, neither answered nor lost).
    const changes: Transition[] = [];
    for (let at = 2000; at < 202_000; at += 25) {
      const link = (at - 2000) % 5000 >= 1000;
      m.setLink(link, 'no carrier');
      if (at % 100 === 0 && link) target.answered(1, at);
      const change = m.evaluate(at);
      if (change) changes.push(change);
    }
    // Two falls let back (each after `up` fresh answers), the third held down for good.
    expect(changes.map((c) => c.to)).toEqual(['down', 'up', 'down', 'up', 'down']);
    expect(m.snapshot(202_000)).toMatchObject({ state: 'down', suppressed: true });
    // Once stable, it is released after the penalty fades (≤ 30 s × log2(5) ≈ 70 s).
    m.setLink(true, 'link up');
    const release = simulate(m, 't', 202_000, 300_000, healthy).find((c) => c.to === 'up');
    expect((release?.at ?? 0) - 202_000).toBeGreaterThan(30_000);
    expect((release?.at ?? 0) - 202_000).toBeLessThan(75_000);
  });

  test('a line back from carrier loss needs fresh answers: no up-then-down blip from the verdict before the loss', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    simulate(m, 't', 0, 2000, healthy);
    m.setLink(false, 'interface ppp0 has no carrier');
    expect(m.evaluate(2010)?.to).toBe('down');
    m.setLink(true, 'link up');
    expect(m.evaluate(2020)).toBeNull();
    const back = simulate(m, 't', 2020, 5000, healthy);
    expect(back.map((c) => c.to)).toEqual(['up']);
    expect((back[0]?.at ?? 0) - 2020).toBeGreaterThanOrEqual(SETTINGS.up * SETTINGS.intervalMs - SETTINGS.intervalMs);
  });

  test('link loss and ppp ip-down are immediate; ip-up lets the probes decide', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    simulate(m, 't', 0, 500, healthy);
    m.setLink(false, 'interface ppp0 has no carrier');
    expect(m.evaluate(510)).toMatchObject({ to: 'down', reason: 'interface ppp0 has no carrier' });
    m.setLink(true, 'link up');
    expect(simulate(m, 't', 520, 2000, healthy).map((c) => c.to)).toEqual(['up']);
    m.force('ppp ip-down on ppp0');
    expect(m.evaluate(2010)).toMatchObject({ to: 'down', reason: 'ppp ip-down on ppp0' });
    m.force(null);
    expect(m.evaluate(2020)?.to).toBe('up');
  });
});

describe('degraded lines', () => {
  const LIMITS = { lossPercent: 5, latencyMs: 150 };
  const lossy =
    (next: () => number, oneWay: number): Path =>
    () => ({ back: next() >= oneWay && next() >= oneWay, rttMs: 2 });

  test('10 % loss each way: degraded once a full window shows it, up all along, and well again only after the hold and below half the limit', () => {
    const next = random(7);
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0, { degraded: LIMITS });
    expect(simulate(m, 't', 0, 2000, healthy).map((c) => c.to)).toEqual(['up']);
    const worse = simulate(m, 't', 2000, 60_000, lossy(next, 0.1));
    expect(worse.map((c) => `${c.from}>${c.to}`)).toEqual(['up>degraded']);
    expect(worse[0]?.reason).toMatch(/^[0-9.]+% of probes lost \(degraded above 5%\)$/);
    // A full window of 50 probes (5 s after the line came up) is needed before the first judgement.
    expect((worse[0] as Transition).at).toBeGreaterThanOrEqual(5000);
    expect(m.state).toBe('up');
    expect(m.snapshot(60_000).degraded).toMatch(/% of probes lost/);
    const better = simulate(m, 't', 60_000, 90_000, healthy);
    expect(better.map((c) => `${c.from}>${c.to}`)).toEqual(['degraded>up']);
    expect(better[0]?.reason).toMatch(/well below the degraded limits again/);
    expect(m.degraded).toBeNull();
  });

  test('loss hovering at the limit does not flap: the lower limit to leave and the 10 s hold keep changes rare', () => {
    const next = random(11);
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0, { degraded: LIMITS });
    simulate(m, 't', 0, 2000, healthy);
    // About 5 % of round trips lost: the 50-probe share wanders around the limit all the time.
    const changes = simulate(m, 't', 2000, 10 * 60_000, lossy(next, 0.025));
    expect(changes.every((c) => c.to === 'degraded' || c.to === 'up')).toBe(true);
    expect(changes.length).toBeLessThanOrEqual(10);
  });

  test('latency: slower than the limit on average is degraded; between four fifths and the limit it stays so; below, it is well again', () => {
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0, { degraded: LIMITS });
    simulate(m, 't', 0, 2000, healthy);
    expect(simulate(m, 't', 2000, 10_000, () => ({ back: true, rttMs: 200 })).map((c) => c.to)).toEqual(['degraded']);
    expect(m.degraded).toMatch(/average RTT 200\.0 ms \(degraded above 150 ms\)/);
    expect(simulate(m, 't', 10_000, 40_000, () => ({ back: true, rttMs: 130 }))).toEqual([]);
    expect(simulate(m, 't', 40_000, 60_000, () => ({ back: true, rttMs: 100 })).map((c) => c.to)).toEqual(['up']);
  });

  test('a degraded line that dies is reported as leaving degraded, and is not degraded while down', () => {
    const next = random(3);
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0, { degraded: LIMITS });
    simulate(m, 't', 0, 2000, healthy);
    simulate(m, 't', 2000, 20_000, lossy(next, 0.1));
    expect(m.degraded).not.toBeNull();
    const died = simulate(m, 't', 20_000, 25_000, () => ({ back: false, rttMs: 0 }));
    expect(died.map((c) => `${c.from}>${c.to}`)).toEqual(['degraded>down']);
    expect(m.snapshot(25_000).degraded).toBeNull();
  });

  test('limits off (the default): never degraded', () => {
    const next = random(5);
    const m = new UplinkHealth('isp1', SETTINGS, DAMPING_DEFAULTS, icmp('t'), 0);
    expect(simulate(m, 't', 0, 60_000, lossy(next, 0.1)).map((c) => c.to)).toEqual(['up']);
  });
});

describe('weights while a line is degraded', () => {
  const view = (name: string, index: number, weight: number): UplinkView => ({
    name,
    index,
    interface: `ppp${index}`,
    weight,
    tier: 1,
    state: 'up',
    reason: 'link up',
    present: true,
    pointToPoint: true,
    address: `192.0.2.${index + 2}`,
  });
  const views = [view('isp1', 0, 2), view('isp2', 1, 1), view('isp3', 2, 1)];
  const up = { state: 'up' as const, reason: '1 of 1 targets answer' };

  test('healthy lines count four times a degraded one; nothing changes while none is degraded', () => {
    const calm = withHealth(views, new Map(views.map((v) => [v.name, up])));
    expect(calm.map((v) => [v.weight, v.degraded])).toEqual([
      [2, undefined],
      [1, undefined],
      [1, undefined],
    ]);
    const poor = withHealth(views, new Map<string, HealthVerdict>([...views.map((v) => [v.name, up] as const), ['isp2', { ...up, degraded: '9.0% of probes lost (degraded above 5%)' }]]));
    expect(poor.map((v) => [v.name, v.weight, v.degraded ?? null])).toEqual([
      ['isp1', 2 * DEGRADED_FACTOR, null],
      ['isp2', 1, '9.0% of probes lost (degraded above 5%)'],
      ['isp3', DEGRADED_FACTOR, null],
    ]);
  });

  test('hop weights stay within 256, and when every live line is degraded, the weights are the configured ones', () => {
    const heavy = [view('isp1', 0, 200), view('isp2', 1, 1)];
    const poor = withHealth(
      heavy,
      new Map<string, HealthVerdict>([
        ['isp1', up],
        ['isp2', { ...up, degraded: 'slow' }],
      ]),
    );
    expect(poor.map((v) => v.weight)).toEqual([200, 1]);
    const all = withHealth(views, new Map(views.map((v) => [v.name, { ...up, degraded: 'slow' }])));
    expect(all.map((v) => v.weight)).toEqual([2, 1, 1]);
  });
});

// The probe method seam (src/probes/): the icmp method against a fake Runner
// and a clock the test drives (ping's lines, its argv, played ping output → answered/lost),
// and the health monitor driven by a fake method, which shows the monitor
// knows nothing of how a target is asked.

import { describe, expect, test } from '@jest/globals';
import { parseConfig } from '../../src/config/load.js';
import { HEALTH_IDLE_TICK_MS, HEALTH_TICK_MS, type Transition } from '../../src/core/health.js';
import { TRAFFIC_WINDOW_MS } from '../../src/core/stall.js';
import { connMark, markLayout } from '../../src/core/marks.js';
import { HealthMonitor } from '../../src/engine/health.js';
import type { UplinkView } from '../../src/model/state.js';
import { parsePingLine } from '../../src/parse/ping.js';
import { burstArgv, icmpMethod, pingArgv, unwrapper, type IcmpTarget } from '../../src/probes/icmp.js';
import type { BurstSpec, ProbeEvent, ProbeMethod, ProbeRun, RunningProbe } from '../../src/probes/method.js';
import { methodFor, PROBE_METHODS, probeTarget } from '../../src/probes/registry.js';
import { tcpMethod } from '../../src/probes/tcp.js';
import type { Process, Runner, SpawnOptions } from '../../src/system/exec.js';
import type { Logger } from '../../src/system/logger.js';
import type { LinkCounters } from '../../src/parse/proc-net-dev.js';
import type { ProbeSockets } from '../../src/system/probe-sockets.js';
import { ManualClock } from '../helpers/manual-clock.js';

/** A clock that moves only when the test says so; timers fire in time order. */
/** A Runner whose spawned processes print what the test plays, and that refuses one-shot commands. */
class PlayRunner implements Runner {
  readonly spawned: { argv: readonly string[]; options: SpawnOptions; stops: (string | undefined)[]; end: (code: number | null) => void; held: string[] }[] = [];

  async run(argv: readonly string[]): Promise<never> {
    throw new Error(`unexpected command: ${argv.join(' ')}`);
  }

  spawn(argv: readonly string[], options: SpawnOptions = {}): Process {
    let end: (code: number | null) => void = () => undefined;
    const ended = new Promise<number | null>((resolve) => (end = resolve));
    const entry = { argv, options, stops: [] as (string | undefined)[], end, held: [] as string[] };
    this.spawned.push(entry);
    const drain = (): void => {
      for (const line of entry.held.splice(0)) options.onLine?.(line);
    };
    return { pid: undefined, ended, write() {}, stop: (signal) => void entry.stops.push(signal), ...(options.readWhenAsked ? { drain } : {}) };
  }

  /** Lines that reach onLine at once (a pipe, or a command whose output is not read when asked). */
  play(index: number, ...lines: string[]): void {
    for (const line of lines) this.spawned[index]?.options.onLine?.(line);
  }

  /** Lines printed into output read when asked: they wait for the next drain. */
  hold(index: number, ...lines: string[]): void {
    this.spawned[index]?.held.push(...lines);
  }
}

const silent: Logger = new Proxy({} as Logger, { get: () => () => undefined });

/** The icmp method runs ping and opens no socket of its own. */
const NO_SOCKETS: ProbeSockets = new Proxy({} as ProbeSockets, {
  get: (_, name) => () => {
    throw new Error(`icmp opened a socket (${String(name)})`);
  },
});

const TARGET: IcmpTarget = { method: 'icmp', id: '203.0.113.100', address: '203.0.113.100' };
const RUN: ProbeRun<IcmpTarget> = { target: TARGET, path: { interface: 'ppp0', mark: 0x1000000, source: '192.0.2.2' }, timing: { intervalMs: 100, timeoutMs: 500 } };

function startIcmp(run = RUN): { runner: PlayRunner; clock: ManualClock; events: ProbeEvent[]; probe: RunningProbe } {
  const runner = new PlayRunner();
  const clock = new ManualClock();
  const events: ProbeEvent[] = [];
  const probe = icmpMethod.start(run, { runner, clock, sockets: NO_SOCKETS }, (event) => events.push(event));
  return { runner, clock, events, probe };
}

describe('icmp method', () => {
  test("ping's output: replies, outstanding probes and errors", () => {
    expect(parsePingLine('[1795366466.649224] 64 bytes from 192.0.2.1: icmp_seq=1 ttl=64 time=0.042 ms')).toEqual({ kind: 'reply', seq: 1, rttMs: 0.042 });
    expect(parsePingLine('64 bytes from 198.51.100.2: icmp_seq=12 ttl=63 time=12.5 ms')).toEqual({ kind: 'reply', seq: 12, rttMs: 12.5 });
    expect(parsePingLine('no answer yet for icmp_seq=11')).toEqual({ kind: 'pending', seq: 11 });
    expect(parsePingLine('[1795366466.649224] no answer yet for icmp_seq=11')).toEqual({ kind: 'pending', seq: 11, atMs: 1795366466649.224 });
    expect(parsePingLine('From 192.0.2.2 icmp_seq=3 Destination Host Unreachable')).toEqual({ kind: 'error', seq: 3 });
    expect(parsePingLine('64 bytes from 192.0.2.1: icmp_seq=1 ttl=64 time=0.04 ms (DUP!)')).toBeNull();
    expect(parsePingLine('64 bytes from 192.0.2.1: icmp_seq=8 ttl=64 time=.1.5 ms')).toBeNull();
    expect(parsePingLine('64 bytes from 192.0.2.1: icmp_seq=8 ttl=64 time=1 ms')).toEqual({ kind: 'reply', seq: 8, rttMs: 1 });
    expect(parsePingLine('PING 192.0.2.1 (192.0.2.1) from 192.0.2.2 ppp0: 56(84) bytes of data.')).toBeNull();
    // IPv6 targets (uplinks[].ipv6.probe), as iputils prints them.
    expect(parsePingLine('64 bytes from 2001:db8:ffff::100: icmp_seq=1 ttl=63 time=0.130 ms')).toEqual({ kind: 'reply', seq: 1, rttMs: 0.13 });
    expect(parsePingLine('From 2001:db8:a::2 icmp_seq=3 Destination unreachable: Address unreachable')).toEqual({ kind: 'error', seq: 3 });
    expect(parsePingLine('From fe80::1%wan1 icmp_seq=4 Destination unreachable: No route')).toEqual({ kind: 'error', seq: 4 });
    expect(parsePingLine('PING 2001:db8:ffff::100(2001:db8:ffff::100) from 2001:db8:a::2 wan1: 56 data bytes')).toBeNull();
  });

  test('runs the same long-lived ping as before: bound to the interface, with the connection mark', () => {
    const { runner } = startIcmp();
    expect(runner.spawned.map((s) => s.argv)).toEqual([['ping', '-n', '-O', '-D', '-i', '0.1', '-W', '1', '-I', 'ppp0', '-m', '16777216', '203.0.113.100']]);
    // -W is whole seconds, at least one.
    expect(pingArgv({ ...RUN, timing: { intervalMs: 250, timeoutMs: 1500 } })).toEqual(['ping', '-n', '-O', '-D', '-i', '0.25', '-W', '2', '-I', 'ppp0', '-m', '16777216', '203.0.113.100']);
    // Its lines are read when the monitor collects them, not as they come.
    expect(runner.spawned[0]?.options.readWhenAsked).toBe(true);
  });

  test('lines read when collected: a stamped line’s deadline counts from its stamp, and a reply waiting unread settles its probe before the deadline is judged', () => {
    const { runner, clock, events, probe } = startIcmp();
    clock.step(10_000);
    // Printed at 10.0 s, read 80 ms later: lost at 10.4 s (sent at 9.9 s + 500 ms), not at 10.48 s.
    runner.hold(0, `[${(clock.now() / 1000).toFixed(6)}] no answer yet for icmp_seq=2`);
    clock.step(80);
    expect(events).toEqual([]);
    probe.collect?.();
    expect(events).toEqual([]);
    clock.step(319);
    expect(events).toEqual([]);
    clock.step(1);
    expect(events).toEqual([{ kind: 'lost', seq: 2 }]);
    // Probe 3 pending; its reply printed before its deadline but not yet read when the deadline comes: answered.
    runner.hold(0, `[${(clock.now() / 1000).toFixed(6)}] no answer yet for icmp_seq=3`);
    probe.collect?.();
    clock.step(300);
    runner.hold(0, `[${(clock.now() / 1000).toFixed(6)}] 64 bytes from 203.0.113.100: icmp_seq=3 ttl=63 time=380 ms`);
    clock.step(100);
    expect(events.slice(1)).toEqual([{ kind: 'answered', rttMs: 380, seq: 3 }]);
    // A stamp from a clock set far back or ahead is held to the timeout: never a deadline later than it, nor before now.
    runner.hold(0, '[1.000000] no answer yet for icmp_seq=4', `[${(clock.now() / 1000 + 3600).toFixed(6)}] no answer yet for icmp_seq=5`);
    probe.collect?.();
    clock.step(0);
    expect(events.slice(2)).toEqual([{ kind: 'lost', seq: 4 }]);
    clock.step(400);
    expect(events.slice(3)).toEqual([{ kind: 'lost', seq: 5 }]);
  });

  test('replies are answered with their RTT; an unanswered probe is lost at sent + timeout; an error at once', () => {
    const { runner, clock, events } = startIcmp();
    runner.play(0, 'PING 203.0.113.100 (203.0.113.100) from 192.0.2.2 ppp0: 56(84) bytes of data.', '64 bytes from 203.0.113.100: icmp_seq=1 ttl=63 time=0.042 ms');
    expect(events).toEqual([{ kind: 'answered', rttMs: 0.042, seq: 1 }]);
    // Probe 2 sent at 100 ms, reported unanswered at 200 ms: lost at 600 ms, not before.
    clock.step(200);
    runner.play(0, 'no answer yet for icmp_seq=2', 'no answer yet for icmp_seq=2');
    clock.step(399);
    expect(events).toHaveLength(1);
    clock.step(1);
    expect(events).toEqual([
      { kind: 'answered', rttMs: 0.042, seq: 1 },
      { kind: 'lost', seq: 2 },
    ]);
    // Probe 3 reported unanswered, then its reply: answered once, never lost.
    runner.play(0, 'no answer yet for icmp_seq=3', '64 bytes from 203.0.113.100: icmp_seq=3 ttl=63 time=150 ms');
    clock.step(1000);
    expect(events.slice(2)).toEqual([{ kind: 'answered', rttMs: 150, seq: 3 }]);
    runner.play(0, 'From 192.0.2.1 icmp_seq=4 Destination Host Unreachable', '64 bytes from 203.0.113.100: icmp_seq=1 ttl=63 time=0.04 ms (DUP!)');
    expect(events.slice(3)).toEqual([{ kind: 'lost', seq: 4 }]);
  });

  test("ping's icmp_seq wraps at 65536; the probes are numbered on without wrapping (a late outcome of an older probe stays older)", () => {
    const next = unwrapper();
    expect([65534, 65535, 0, 65535, 1, 2].map(next)).toEqual([65534, 65535, 65536, 65535, 65537, 65538]);
    const again = unwrapper();
    expect([5, 3, 7].map(again)).toEqual([5, 3, 7]);
  });

  test('forget voids the probes in flight; later replies still count', () => {
    const { runner, clock, events, probe } = startIcmp();
    runner.play(0, 'no answer yet for icmp_seq=5', 'no answer yet for icmp_seq=6');
    probe.forget();
    clock.step(5000);
    expect(events).toEqual([]);
    runner.play(0, '64 bytes from 203.0.113.100: icmp_seq=7 ttl=63 time=1.5 ms');
    expect(events).toEqual([{ kind: 'answered', rttMs: 1.5, seq: 7 }]);
  });

  test('stop kills ping and nothing is reported after it', () => {
    const { runner, clock, events, probe } = startIcmp();
    runner.play(0, 'no answer yet for icmp_seq=1');
    probe.stop();
    expect(runner.spawned[0]?.stops).toEqual(['SIGKILL']);
    runner.play(0, '64 bytes from 203.0.113.100: icmp_seq=2 ttl=63 time=1 ms');
    clock.step(5000);
    expect(events).toEqual([]);
  });

  test('ended reports ping exiting by itself', async () => {
    const { runner, probe } = startIcmp();
    runner.spawned[0]?.end(2);
    await expect(probe.ended).resolves.toBe(2);
  });

  test('its key changes with anything that needs a new ping, the exact timeout included', () => {
    const key = icmpMethod.key(RUN);
    expect(icmpMethod.key({ ...RUN })).toBe(key);
    expect(icmpMethod.key({ ...RUN, timing: { intervalMs: 100, timeoutMs: 600 } })).not.toBe(key);
    expect(icmpMethod.key({ ...RUN, path: { ...RUN.path, interface: 'ppp1' } })).not.toBe(key);
    expect(icmpMethod.key({ ...RUN, path: { ...RUN.path, mark: 0x2000000 } })).not.toBe(key);
  });
});

describe('registry', () => {
  test('a plain address is an icmp target named by itself, probed by the icmp method', () => {
    const target = probeTarget('198.51.100.1');
    expect(target).toEqual({ method: 'icmp', id: '198.51.100.1', address: '198.51.100.1' });
    expect(methodFor(PROBE_METHODS, target)).toBe(icmpMethod);
  });
});

/** An outcome as a test tells it; the fake numbers the probes in the order they are told. */
type Told = { readonly kind: 'answered'; readonly rttMs: number } | { readonly kind: 'lost'; readonly why?: string };

/** A method that runs nothing: the test says what each started probe reports. */
class FakeMethod implements ProbeMethod<IcmpTarget> {
  readonly name = 'icmp';
  readonly packetsPerProbe = 1;
  readonly started: { run: ProbeRun<IcmpTarget>; emit: (event: Told) => void; end: (code: number | null) => void; forgets: number; stopped: boolean }[] = [];

  key(run: ProbeRun<IcmpTarget>): string {
    return JSON.stringify(run);
  }

  start(run: ProbeRun<IcmpTarget>, _context: unknown, onEvent: (event: ProbeEvent) => void): RunningProbe {
    let end: (code: number | null) => void = () => undefined;
    const ended = new Promise<number | null>((resolve) => (end = resolve));
    let seq = 0;
    const entry = { run, emit: (event: Told) => onEvent({ ...event, seq: ++seq }), end, forgets: 0, stopped: false };
    this.started.push(entry);
    return { ended, forget: () => void entry.forgets++, stop: () => void (entry.stopped = true) };
  }

  /** Bursts asked for; the test answers each (true: answered). */
  readonly bursts: { run: ProbeRun<IcmpTarget>; spec: BurstSpec; answer: (answered: boolean) => void }[] = [];

  burst(run: ProbeRun<IcmpTarget>, _context: unknown, spec: BurstSpec): Promise<boolean> {
    return new Promise((answer) => this.bursts.push({ run, spec, answer }));
  }
}

const CONFIG = `
lan:
  interfaces: [lan0]
  subnets: [198.18.0.0/16]
uplinks:
  - name: isp1
    interface: ppp0
    probe: { targets: [203.0.113.100, 203.0.113.101], reliability: 2 }
  - name: isp2
    interface: ppp1
`;

const view = (name: string, index: number, iface: string, over: Partial<UplinkView> = {}): UplinkView => ({
  name,
  index,
  interface: iface,
  weight: 1,
  tier: 1,
  state: 'up',
  reason: 'link up',
  present: true,
  address: `192.0.2.${index + 2}`,
  gateway: `198.51.100.${index + 1}`,
  pointToPoint: false,
  ...over,
});

/** Interface counters the test moves by hand (the passive signal reads them). */
const counters = new Map<string, LinkCounters>();
/** How often the monitor has read the counters: once per tick. */
let counterReads = 0;

function monitorWithFake(yaml = CONFIG): { monitor: HealthMonitor; method: FakeMethod; runner: PlayRunner; clock: ManualClock; transitions: Transition[] } {
  const config = parseConfig(yaml, 'test.yaml');
  const method = new FakeMethod();
  const runner = new PlayRunner();
  const clock = new ManualClock();
  const transitions: Transition[] = [];
  counters.clear();
  const readCounters = (): Map<string, LinkCounters> => {
    counterReads += 1;
    return counters;
  };
  const monitor = new HealthMonitor({ runner, log: silent, onTransition: (t) => transitions.push(t), clock, methods: { ...PROBE_METHODS, icmp: method }, readCounters }, config);
  return { monitor, method, runner, clock, transitions };
}

/** Lets promise callbacks (a probe's `ended`) run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('health monitor with a fake method', () => {
  test('starts one probe per target through its uplink, the gateway when no targets are set, and runs no command itself', () => {
    const { monitor, method, runner } = monitorWithFake();
    monitor.observe([view('isp1', 0, 'ppp0'), view('isp2', 1, 'ppp1')], 0);
    const layout = markLayout(parseConfig(CONFIG, 'test.yaml').marks.mask);
    expect(method.started.map((s) => s.run)).toEqual([
      { target: probeTarget('203.0.113.100'), path: { interface: 'ppp0', mark: connMark(layout, 0), source: '192.0.2.2' }, timing: { intervalMs: 100, timeoutMs: 500 } },
      { target: probeTarget('203.0.113.101'), path: { interface: 'ppp0', mark: connMark(layout, 0), source: '192.0.2.2' }, timing: { intervalMs: 100, timeoutMs: 500 } },
      { target: probeTarget('198.51.100.2'), path: { interface: 'ppp1', mark: connMark(layout, 1), source: '192.0.2.3' }, timing: { intervalMs: 100, timeoutMs: 500 } },
    ]);
    expect(runner.spawned).toEqual([]);
    // The same view again changes nothing.
    monitor.observe([view('isp1', 0, 'ppp0'), view('isp2', 1, 'ppp1')], 0);
    expect(method.started).toHaveLength(3);
    monitor.stop();
  });

  test('answered and lost drive the state machine: up on answers, down after `down` losses, k of n', () => {
    const { monitor, method, clock, transitions } = monitorWithFake();
    monitor.observe([view('isp1', 0, 'ppp0')], 0);
    const [a, b] = method.started;
    a?.emit({ kind: 'answered', rttMs: 1 });
    clock.step(25);
    // Reliability 2: one answering target is not enough for a verdict yet.
    expect(transitions).toEqual([]);
    b?.emit({ kind: 'answered', rttMs: 2 });
    clock.step(25);
    expect(transitions).toMatchObject([{ uplink: 'isp1', from: 'unknown', to: 'up', reason: '2 of 2 targets answer' }]);
    for (let i = 0; i < 8; i++) b?.emit({ kind: 'lost' });
    clock.step(25);
    expect(transitions[1]).toMatchObject({ from: 'up', to: 'down' });
    expect(transitions[1]?.reason).toMatch(/1 of 2 targets answer \(need 2\); 203\.0\.113\.101: 8 probes lost in a row/);
    const snapshot = monitor.snapshot().get('isp1');
    expect(snapshot?.targets.map((t) => [t.target, t.alive, t.lastRttMs])).toEqual([
      ['203.0.113.100', true, 1],
      ['203.0.113.101', false, 2],
    ]);
    monitor.stop();
  });

  test('a restarted probe numbers its probes from 1 again: they still count as sent after the old ones (a loss row is not lost)', () => {
    const { monitor, method, clock, transitions } = monitorWithFake();
    monitor.observe([view('isp2', 1, 'ppp1')], 0);
    for (let i = 0; i < 20; i++) method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    clock.step(25);
    expect(transitions.map((t) => t.to)).toEqual(['up']);
    // The uplink moves to another interface: a new probe process, numbered 1, 2, … again.
    monitor.observe([view('isp2', 1, 'ppp7')], clock.now());
    for (let i = 0; i < 8; i++) method.started[1]?.emit({ kind: 'lost' });
    clock.step(25);
    expect(transitions.map((t) => t.to)).toEqual(['up', 'down']);
    monitor.stop();
  });

  test('link loss fails the uplink at once and voids the probes in flight', () => {
    const { monitor, method, clock, transitions } = monitorWithFake();
    monitor.observe([view('isp2', 1, 'ppp1')], 0);
    method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    clock.step(25);
    expect(transitions.map((t) => t.to)).toEqual(['up']);
    const verdicts = monitor.observe([view('isp2', 1, 'ppp1', { state: 'down', reason: 'interface ppp1 has no carrier' })], 25);
    expect(verdicts.get('isp2')).toEqual({ state: 'down', reason: 'interface ppp1 has no carrier' });
    expect(method.started[0]?.forgets).toBe(1);
    monitor.stop();
  });

  test('a probe that ends by itself is started again a second later; a stopped one is not heard any more', async () => {
    const { monitor, method, clock, transitions } = monitorWithFake();
    monitor.observe([view('isp2', 1, 'ppp1')], 0);
    method.started[0]?.end(1);
    await settle();
    clock.step(999);
    expect(method.started).toHaveLength(1);
    clock.step(1);
    expect(method.started).toHaveLength(2);
    // Moving the uplink to another interface restarts its probe; the old one is stopped and ignored.
    monitor.observe([view('isp2', 1, 'ppp7')], clock.now());
    expect(method.started.map((s) => [s.run.path.interface, s.stopped])).toEqual([
      ['ppp1', false],
      ['ppp1', true],
      ['ppp7', false],
    ]);
    method.started[1]?.emit({ kind: 'answered', rttMs: 1 });
    clock.step(25);
    expect(transitions).toEqual([]);
    method.started[2]?.emit({ kind: 'answered', rttMs: 1 });
    clock.step(25);
    expect(transitions.map((t) => t.to)).toEqual(['up']);
    monitor.stop();
    expect(method.started[2]?.stopped).toBe(true);
  });

  test("with the real registry the monitor runs today's ping, and its output, read on the monitor's tick, reaches the verdicts", () => {
    const config = parseConfig(CONFIG, 'test.yaml');
    const runner = new PlayRunner();
    const clock = new ManualClock();
    const transitions: Transition[] = [];
    const monitor = new HealthMonitor({ runner, log: silent, onTransition: (t) => transitions.push(t), clock }, config);
    monitor.observe([view('isp2', 1, 'ppp1')], 0);
    const mark = String(connMark(markLayout(config.marks.mask), 1));
    expect(runner.spawned.map((s) => s.argv)).toEqual([['ping', '-n', '-O', '-D', '-i', '0.1', '-W', '1', '-I', 'ppp1', '-m', mark, '198.51.100.2']]);
    runner.hold(0, '[0.000000] 64 bytes from 198.51.100.2: icmp_seq=1 ttl=64 time=0.3 ms');
    expect(transitions).toEqual([]);
    clock.step(HEALTH_TICK_MS);
    expect(transitions.map((t) => t.to)).toEqual(['up']);
    monitor.stop();
    expect(runner.spawned[0]?.stops).toEqual(['SIGKILL']);
  });
});

describe('the passive signal', () => {
  /**
   * Moves ppp1's counters every 25 ms for `ms`: its one target's probe goes
   * out every 100 ms, and `clients` packets more every 25 ms (a line carrying
   * clients' traffic); answers come back while `speaking`.
   */
  function traffic(clock: ManualClock, ms: number, speaking: boolean, clients = 0): void {
    for (let t = 0; t < ms; t += 25) {
      const now = counters.get('ppp1') ?? { rxPackets: 0, txPackets: 0 };
      const probe = clock.now() % 100 === 0 ? 1 : 0;
      const sent = probe + clients;
      counters.set('ppp1', { rxPackets: now.rxPackets + (speaking && sent > 0 ? 1 : 0), txPackets: now.txPackets + sent });
      clock.step(25);
    }
  }

  test('a line that sends and hears nothing for the stall is asked by a burst to every target; unanswered, it is down at once', async () => {
    const { monitor, method, clock, transitions } = monitorWithFake();
    monitor.observe([view('isp2', 1, 'ppp1')], clock.now());
    method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    traffic(clock, 1000, true);
    expect(transitions.map((t) => t.to)).toEqual(['up']);
    expect(method.bursts).toEqual([]);
    // Silence from now. Every line was up and heard back, so the ticks were idle: the first sample that sees a packet
    // go unanswered comes at most HEALTH_IDLE_TICK_MS later, and the burst 300 ms after it (one fast sample late at most).
    traffic(clock, 300, false);
    expect(method.bursts).toEqual([]);
    traffic(clock, HEALTH_IDLE_TICK_MS + HEALTH_TICK_MS, false);
    expect(method.bursts.map((b) => [b.run.target.id, b.spec])).toEqual([['198.51.100.2', { count: 5, spacingMs: 5, deadlineMs: 50 }]]);
    // Nothing more is asked while the burst is out.
    traffic(clock, 200, false);
    expect(method.bursts).toHaveLength(1);
    method.bursts[0]?.answer(false);
    await settle();
    expect(transitions[1]).toMatchObject({ uplink: 'isp2', from: 'up', to: 'down', reason: expect.stringMatching(/198\.51\.100\.2: packets sent and none received for 300 ms; a burst of 5 probes went unanswered/) });
    expect(monitor.snapshot().get('isp2')?.passive).toMatchObject({ answered: 0, silent: 1 });
    // Down, the line is not watched: its probes decide when it is back.
    traffic(clock, 1000, false);
    expect(method.bursts).toHaveLength(1);
    monitor.stop();
  });

  test('a burst that is answered leaves the line up, and the watch starts afresh', async () => {
    const { monitor, method, clock, transitions } = monitorWithFake();
    monitor.observe([view('isp2', 1, 'ppp1')], clock.now());
    method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    traffic(clock, 500, true);
    traffic(clock, 300 + HEALTH_IDLE_TICK_MS + HEALTH_TICK_MS, false);
    method.bursts[0]?.answer(true);
    await settle();
    traffic(clock, 1000, true);
    expect(transitions.map((t) => t.to)).toEqual(['up']);
    expect(method.bursts).toHaveLength(1);
    expect(monitor.snapshot().get('isp2')?.passive).toMatchObject({ stallMs: 300, answered: 1, silent: 0 });
    monitor.stop();
  });

  test('a line carrying clients’ traffic is sampled fast: its stall is asked one fast sample after the stall', () => {
    const { monitor, method, clock } = monitorWithFake();
    monitor.observe([view('isp2', 1, 'ppp1')], clock.now());
    method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    // 4 packets every 25 ms (160 a second) against the probes' 10: clients' traffic.
    traffic(clock, 1000, true, 4);
    traffic(clock, 300, false, 4);
    expect(method.bursts).toEqual([]);
    traffic(clock, HEALTH_TICK_MS, false, 4);
    expect(method.bursts).toHaveLength(1);
    monitor.stop();
  });

  test('while every line is up and hears back the counters are read every HEALTH_IDLE_TICK_MS; once a line sends unanswered, or a probe is lost, every HEALTH_TICK_MS', () => {
    const { monitor, method, clock } = monitorWithFake();
    monitor.observe([view('isp2', 1, 'ppp1')], clock.now());
    method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    traffic(clock, 500, true);
    const readsIn = (run: () => void): number => {
      const before = counterReads;
      run();
      return counterReads - before;
    };
    expect(readsIn(() => traffic(clock, 1000, true))).toBe(1000 / HEALTH_IDLE_TICK_MS);
    // Unanswered: fast from the first sample that sees it, until the line hears back.
    expect(readsIn(() => traffic(clock, 2 * HEALTH_IDLE_TICK_MS, false))).toBeGreaterThanOrEqual(HEALTH_IDLE_TICK_MS / HEALTH_TICK_MS);
    traffic(clock, 200, true);
    expect(readsIn(() => traffic(clock, 1000, true))).toBe(1000 / HEALTH_IDLE_TICK_MS);
    // A lost probe brings the next tick forward, and keeps them fast until it is answered again.
    method.started[0]?.emit({ kind: 'lost' });
    expect(readsIn(() => traffic(clock, 100, true))).toBe(100 / HEALTH_TICK_MS);
    method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    traffic(clock, 100, true);
    expect(readsIn(() => traffic(clock, 1000, true))).toBe(1000 / HEALTH_IDLE_TICK_MS);
    // Clients' traffic: fast from the end of the window that measured it, idle again once it stops.
    expect(readsIn(() => traffic(clock, 1000, true, 4))).toBeGreaterThanOrEqual((1000 - 2 * TRAFFIC_WINDOW_MS) / HEALTH_TICK_MS);
    expect(readsIn(() => traffic(clock, 1000, true, 4))).toBe(1000 / HEALTH_TICK_MS);
    traffic(clock, 500, true);
    expect(readsIn(() => traffic(clock, 1000, true))).toBe(1000 / HEALTH_IDLE_TICK_MS);
    monitor.stop();
  });

  test('a line that sends nothing is never asked; with passive.stall 0 nothing is watched at all', () => {
    const idle = monitorWithFake();
    idle.monitor.observe([view('isp2', 1, 'ppp1')], idle.clock.now());
    idle.method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    counters.set('ppp1', { rxPackets: 7, txPackets: 9 });
    idle.clock.step(10_000);
    expect(idle.method.bursts).toEqual([]);
    idle.monitor.stop();
    const off = monitorWithFake(`${CONFIG}health: { passive: { stall: 0 } }\n`);
    off.monitor.observe([view('isp2', 1, 'ppp1')], off.clock.now());
    off.method.started[0]?.emit({ kind: 'answered', rttMs: 1 });
    traffic(off.clock, 2000, false);
    expect(off.method.bursts).toEqual([]);
    expect(off.monitor.snapshot().get('isp2')?.passive).toBeNull();
    off.monitor.stop();
  });

  test("icmp's burst is one ping of five probes through the uplink: true at the first reply, false at the deadline", async () => {
    const spec = { count: 5, spacingMs: 5, deadlineMs: 70 };
    expect(burstArgv(RUN, spec)).toEqual(['ping', '-n', '-c', '5', '-i', '0.005', '-W', '1', '-I', 'ppp0', '-m', String(0x1000000), '203.0.113.100']);
    const runner = new PlayRunner();
    const clock = new ManualClock();
    const answered = icmpMethod.burst(RUN, { runner, clock, sockets: NO_SOCKETS }, spec);
    runner.play(0, '64 bytes from 203.0.113.100: icmp_seq=3 ttl=64 time=0.3 ms');
    expect(await answered).toBe(true);
    expect(runner.spawned[0]?.stops).toEqual(['SIGKILL']);
    const silentBurst = icmpMethod.burst(RUN, { runner, clock, sockets: NO_SOCKETS }, spec);
    clock.step(70);
    expect(await silentBurst).toBe(false);
  });

  test("a socket method's burst asks `count` times, `spacing` apart, and is answered by any of them before the deadline", async () => {
    const clock = new ManualClock();
    const asked: number[] = [];
    let answerAt = -1;
    const sockets = {
      tcpConnect: async () => {
        asked.push(clock.now());
        if (asked.length === answerAt) return 3;
        throw new Error('port 443 refused the connection');
      },
    } as unknown as ProbeSockets;
    const run = { target: { method: 'tcp' as const, id: 'tcp 203.0.113.101:443', address: '203.0.113.101', port: 443 }, path: RUN.path, timing: RUN.timing };
    const spec = { count: 5, spacingMs: 5, deadlineMs: 70 };
    const none = tcpMethod.burst(run, { runner: new PlayRunner(), clock, sockets }, spec);
    clock.step(70);
    expect(await none).toBe(false);
    expect(asked.map((at) => at - (asked[0] as number))).toEqual([0, 5, 10, 15, 20]);
    asked.length = 0;
    answerAt = 3;
    const third = tcpMethod.burst(run, { runner: new PlayRunner(), clock, sockets }, spec);
    clock.step(10);
    await settle();
    expect(await third).toBe(true);
    // Answered: the rest of the burst is not sent.
    clock.step(60);
    expect(asked).toHaveLength(3);
  });
});

describe('a standing-by line (a lower tier carries)', () => {
  test('is probed at the standby interval, shown with its lower cost; back to the interval when it carries', () => {
    const config = `${CONFIG}  - name: lte\n    interface: wwan0\n    tier: 2\n`;
    const { monitor, method, clock } = monitorWithFake(config);
    const uplinks = [view('isp2', 1, 'ppp1'), { ...view('lte', 2, 'wwan0'), tier: 2 }];
    monitor.observe(uplinks, clock.now());
    for (const started of method.started) started.emit({ kind: 'answered', rttMs: 1 });
    clock.step(25);
    // Both up: the next observation (the run the verdicts ask for) slows the backup line's probe.
    monitor.observe(uplinks, clock.now());
    const timing = (iface: string) => method.started.filter((s) => s.run.path.interface === iface && !s.stopped).map((s) => s.run.timing.intervalMs);
    expect([timing('ppp1'), timing('wwan0')]).toEqual([[100], [1000]]);
    expect(monitor.snapshot().get('lte')).toMatchObject({ intervalMs: 1000, probeKbps: { out: 0.7, in: 0.7 }, detectionMs: 8 * 1000 + 500 });
    // The main line falls: the backup carries, probed at the interval again.
    monitor.observe([view('isp2', 1, 'ppp1', { state: 'down', reason: 'interface ppp1 has no carrier' }), uplinks[1] as UplinkView], clock.now());
    expect(timing('wwan0')).toEqual([100]);
    expect(monitor.snapshot().get('lte')).toMatchObject({ intervalMs: 100, probeKbps: { out: 6.7, in: 6.7 } });
    monitor.stop();
  });
});

// The tcp, http and dns probe methods with scripted sockets and a manual clock:
// one probe per interval from the uplink's address, each settled once —
// answered with its time, lost with the reason the method saw, or lost at its
// deadline — and nothing after forget() or stop(). The namespace suite
// (test/integration/probe-methods.test.ts) runs them against real servers.

import { describe, expect, test } from '@jest/globals';
import { parseConfig } from '../../src/config/load.js';
import { ConfigError } from '../../src/model/errors.js';
import { probeKbps } from '../../src/core/probe-cost.js';
import { dnsAnswerHeader, dnsQuery } from '../../src/parse/dns-message.js';
import { dnsMethod } from '../../src/probes/dns.js';
import { httpMethod } from '../../src/probes/http.js';
import type { ProbeEvent, ProbeMethod, ProbeTargetBase, RunningProbe } from '../../src/probes/method.js';
import { probeTarget } from '../../src/probes/registry.js';
import { tcpMethod } from '../../src/probes/tcp.js';
import type { HttpAnswer, ProbeSockets } from '../../src/system/probe-sockets.js';
import type { Runner } from '../../src/system/exec.js';
import { ManualClock } from '../helpers/manual-clock.js';

const PATH = { interface: 'ppp0', mark: 0x1000000, source: '192.0.2.2' };
const TIMING = { intervalMs: 100, timeoutMs: 500 };
const NO_RUNNER: Runner = new Proxy({} as Runner, {
  get: () => () => {
    throw new Error('socket methods run no command');
  },
});

/** Sockets whose every call waits for the test to answer it. */
class ScriptedSockets implements ProbeSockets {
  readonly calls: { kind: string; args: unknown[]; resolve: (value: never) => void; reject: (error: Error) => void }[] = [];
  private wait<T>(kind: string, args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => this.calls.push({ kind, args, resolve: resolve as (value: never) => void, reject }));
  }
  tcpConnect(...args: unknown[]): Promise<number> {
    return this.wait('tcp', args);
  }
  httpGet(...args: unknown[]): Promise<HttpAnswer> {
    return this.wait('http', args);
  }
  dnsExchange(...args: unknown[]): Promise<{ answer: Uint8Array; ms: number }> {
    return this.wait('dns', args);
  }
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function start<T extends ProbeTargetBase>(method: ProbeMethod<T>, target: T): { sockets: ScriptedSockets; clock: ManualClock; events: ProbeEvent[]; probe: RunningProbe } {
  const sockets = new ScriptedSockets();
  const clock = new ManualClock();
  const events: ProbeEvent[] = [];
  const probe = method.start({ target, path: PATH, timing: TIMING }, { runner: NO_RUNNER, clock, sockets }, (event) => events.push(event));
  return { sockets, clock, events, probe };
}

const config = (targets: string): ReturnType<typeof parseConfig> => parseConfig(`lan: { interfaces: [lan0] }\nuplinks:\n  - name: isp1\n    interface: ppp0\n    probe:\n      targets: ${targets}\n`, 'test.yaml');
const problems = (targets: string): string[] => {
  try {
    config(targets);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems.map((p) => `${p.field}: ${p.problem} | ${p.fix}`);
  }
};

describe('probe targets in the config', () => {
  test('addresses, and tcp, http(s) and dns mappings, each with its id', () => {
    const targets = config(
      '[203.0.113.100, { method: tcp, address: 203.0.113.101, port: 443 }, { method: http, url: "http://203.0.113.102/health", expect: 200, contains: ok }, { method: https, url: "https://203.0.113.102/", insecure: true }, { method: dns, server: 203.0.113.53, query: Example.Test. }]',
    ).uplinks[0]?.probe.targets;
    expect(targets?.map(probeTarget)).toEqual([
      { method: 'icmp', id: '203.0.113.100', address: '203.0.113.100' },
      { method: 'tcp', id: 'tcp 203.0.113.101:443', address: '203.0.113.101', port: 443 },
      { method: 'http', id: 'http://203.0.113.102/health', url: 'http://203.0.113.102/health', expect: 200, contains: 'ok', insecure: false },
      { method: 'http', id: 'https://203.0.113.102/', url: 'https://203.0.113.102/', expect: null, insecure: true },
      { method: 'dns', id: 'dns 203.0.113.53 example.test', server: '203.0.113.53', query: 'example.test', type: 'A' },
    ]);
  });

  test('a wrong target names the field and the fix', () => {
    expect(problems('[{ method: tcp, address: 203.0.113.101, port: 70000 }]')).toEqual([expect.stringMatching(/^uplinks\[0\]\.probe\.targets\[0\]\.port: must be a whole number from 1 to 65535/)]);
    expect(problems('[{ method: ftp, address: 203.0.113.101 }]')[0]).toMatch(/^uplinks\[0\]\.probe\.targets\[0\]: .* is not a probe target .*\| write an address \(ICMP echo\), or \{ method: tcp/);
    expect(problems('[{ method: http, url: "https://203.0.113.102/" }]')).toEqual([expect.stringMatching(/targets\[0\]\.url: https:\/\/203\.0\.113\.102\/ does not start with http:\/\/ \| use an http:\/\/ URL, or method: https/)]);
    expect(problems('[{ method: dns, server: 203.0.113.53 }]')).toEqual([expect.stringMatching(/targets\[0\]\.query: is missing/)]);
    expect(problems('[{ method: tcp, address: 203.0.113.101, port: 443 }, { method: tcp, address: 203.0.113.101, port: 443 }]')).toEqual([expect.stringMatching(/targets\[1\]: tcp 203\.0\.113\.101:443 is listed twice/)]);
    expect(problems('[{ method: dns, server: 203.0.113.53, query: example.test, type: PTR }]')[0]).toMatch(/type: "PTR" is not a record type/);
  });
});

describe('dns messages', () => {
  test('a query for example.test A, and the header of an answer', () => {
    const query = dnsQuery(0x1234, 'example.test', 'A');
    expect([...query]).toEqual([0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 7, ...Buffer.from('example'), 4, ...Buffer.from('test'), 0, 0, 1, 0, 1]);
    const answer = Uint8Array.from([0x12, 0x34, 0x85, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]);
    expect(dnsAnswerHeader(answer)).toEqual({ id: 0x1234, rcode: 'NOERROR', answers: 1 });
    expect(dnsAnswerHeader(Uint8Array.from([0x12, 0x34, 0x81, 0x05, 0, 1, 0, 0, 0, 0, 0, 0]))?.rcode).toBe('REFUSED');
    // A query (QR clear) or a runt is no answer.
    expect(dnsAnswerHeader(query)).toBeNull();
    expect(dnsAnswerHeader(Uint8Array.from([1, 2, 3]))).toBeNull();
  });
});

describe('socket methods', () => {
  test('tcp: one connection per interval from the uplink address; a handshake is answered with its time, a refusal is lost with why, silence is lost at the deadline', async () => {
    const { sockets, clock, events, probe } = start(tcpMethod, probeTarget({ method: 'tcp', address: '203.0.113.101', port: 443 }));
    expect(sockets.calls.map((c) => c.args)).toEqual([['203.0.113.101', 443, '192.0.2.2', 500]]);
    await clock.advance(100);
    await clock.advance(100);
    expect(sockets.calls).toHaveLength(3);
    sockets.calls[0]?.resolve(12.5 as never);
    sockets.calls[1]?.reject(new Error('port 443 refused the connection'));
    await settle();
    expect(events).toEqual([
      { kind: 'answered', rttMs: 12.5, seq: 1 },
      { kind: 'lost', why: 'port 443 refused the connection', seq: 2 },
    ]);
    // The third (sent at 200 ms) is never answered: lost at 700 ms, and a late answer changes nothing.
    await clock.advance(499);
    expect(events).toHaveLength(2);
    await clock.advance(1);
    expect(events[2]).toEqual({ kind: 'lost', why: 'no answer within 500 ms', seq: 3 });
    sockets.calls[2]?.resolve(3 as never);
    await settle();
    expect(events).toHaveLength(3);
    probe.stop();
    const sent = sockets.calls.length;
    await clock.advance(1000);
    expect(sockets.calls).toHaveLength(sent);
  });

  test('http: the expected status (or any 2xx) and the body text are answered; HTTP 500 and a missing text are lost with the status', async () => {
    const { sockets, clock, events } = start(httpMethod, probeTarget({ method: 'http', url: 'http://203.0.113.102/health', expect: null, contains: 'healthy', insecure: false }));
    for (let i = 0; i < 3; i++) await clock.advance(100);
    expect(sockets.calls[0]?.args).toEqual(['http://203.0.113.102/health', '192.0.2.2', 500, { insecure: false, maxBytes: 65_536 }]);
    sockets.calls[0]?.resolve({ status: 204, body: 'all healthy', ms: 8 } as never);
    sockets.calls[1]?.resolve({ status: 500, body: 'healthy?', ms: 3 } as never);
    sockets.calls[2]?.resolve({ status: 200, body: 'maintenance', ms: 4 } as never);
    await settle();
    expect(events).toEqual([
      { kind: 'answered', rttMs: 8, seq: 1 },
      { kind: 'lost', why: 'HTTP 500', seq: 2 },
      { kind: 'lost', why: 'HTTP 200 without "healthy" in the body', seq: 3 },
    ]);
    const exact = start(httpMethod, probeTarget({ method: 'http', url: 'http://203.0.113.102/', expect: 301, insecure: false }));
    await exact.clock.advance(100);
    exact.sockets.calls[0]?.resolve({ status: 200, body: '', ms: 1 } as never);
    exact.sockets.calls[1]?.resolve({ status: 301, body: '', ms: 2 } as never);
    await settle();
    expect(exact.events).toEqual([
      { kind: 'lost', why: 'HTTP 200, expected 301', seq: 1 },
      { kind: 'answered', rttMs: 2, seq: 2 },
    ]);
  });

  test('dns: NOERROR for this query id is answered; REFUSED, SERVFAIL and an answer to another id are lost', async () => {
    const { sockets, clock, events } = start(dnsMethod, probeTarget({ method: 'dns', server: '203.0.113.53', query: 'example.test', type: 'A' }));
    for (let i = 0; i < 3; i++) await clock.advance(100);
    const reply = (call: number, rcode: number, idDelta = 0): void => {
      const query = sockets.calls[call]?.args[1] as Uint8Array;
      const id = ((((query[0] as number) << 8) | (query[1] as number)) + idDelta) & 0xffff;
      sockets.calls[call]?.resolve({ answer: Uint8Array.from([id >> 8, id & 0xff, 0x81, 0x80 | rcode, 0, 1, 0, 1, 0, 0, 0, 0]), ms: 5 } as never);
    };
    expect(sockets.calls[0]?.args[0]).toBe('203.0.113.53');
    expect(sockets.calls[0]?.args[2]).toBe('192.0.2.2');
    reply(0, 0);
    reply(1, 5);
    reply(2, 2);
    reply(3, 0, 1);
    await settle();
    expect(events).toEqual([
      { kind: 'answered', rttMs: 5, seq: 1 },
      { kind: 'lost', why: 'REFUSED', seq: 2 },
      { kind: 'lost', why: 'SERVFAIL', seq: 3 },
      { kind: 'lost', why: 'an answer that is not to this query', seq: 4 },
    ]);
  });

  test('forget voids the probes in flight: neither answered nor lost', async () => {
    const { sockets, clock, events, probe } = start(tcpMethod, probeTarget({ method: 'tcp', address: '203.0.113.101', port: 22 }));
    probe.forget();
    sockets.calls[0]?.resolve(1 as never);
    await clock.advance(600);
    await settle();
    // The void probe's answer and deadline say nothing; the next probe (sent at 100 ms, due at 600 ms) counts.
    expect(events).toEqual([{ kind: 'lost', why: 'no answer within 500 ms', seq: 2 }]);
    sockets.calls[2]?.resolve(7 as never);
    await settle();
    expect(events[1]).toEqual({ kind: 'answered', rttMs: 7, seq: 3 });
  });
});

describe('what probing costs a line', () => {
  test('two ICMP targets at the default 100 ms stay under 20 kbit/s each way; other methods cost what their packets weigh', () => {
    expect(probeKbps(['icmp'], 100)).toEqual({ out: 6.7, in: 6.7 });
    expect(probeKbps(['icmp', 'icmp'], 100)).toEqual({ out: 13.4, in: 13.4 });
    // (216 + 386 + 64) bytes out and (164 + 464 + 100) in, ten times a second.
    expect(probeKbps(['tcp', 'http', 'dns'], 100)).toEqual({ out: 53.3, in: 58.2 });
    // A slower interval costs proportionally less.
    expect(probeKbps(['http'], 1000).out).toBe(3.1);
  });
});

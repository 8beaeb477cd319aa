// Fuzzing every parser of external text (fast-check): the kernel's and the
// tools' output, pppd's hook arguments, control requests and the config. Two
// kinds of input: arbitrary text (ASCII, full Unicode, control characters,
// shell metacharacters, very long lines), and real captured output with
// random edits. Each parser must either return values that satisfy its
// contract or throw its own declared error — never crash with anything else,
// never return something malformed.
// Runs: FUZZ_RUNS in CI; the long run (`npm run test:long`) uses 50× more.

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/load.js';
import { parseDigAnswer } from '../../src/core/ddns.js';
import { readPublicAddress } from '../../src/core/public-address.js';
import { isIpv4 } from '../../src/core/ipv4.js';
import { isInterfaceName } from '../../src/core/names.js';
import { checkHook } from '../../src/core/requests.js';
import { parseRequest } from '../../src/schema/control.js';
import { ConfigError, RequestError } from '../../src/model/errors.js';
import { gatewayFromLeases, parseLeases } from '../../src/parse/dhclient.js';
import { parseIpAddr, parseIpRoutes, parseIpRules } from '../../src/parse/ip-json.js';
import { parseIpsetSave } from '../../src/parse/ipset.js';
import { ParseError, parseIptablesSave } from '../../src/parse/iptables-save.js';
import { interfaceOfLinkEvent, isMonitorOverrun } from '../../src/parse/link-events.js';
import { parseNeighbourEvent, parseNeighbourTable } from '../../src/parse/neighbours.js';
import { parsePingLine } from '../../src/parse/ping.js';
import { fixture } from '../helpers/fixtures.js';
import { scale } from '../helpers/long.js';

const FUZZ_RUNS = scale(300, 15_000);
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Characters that break naive parsers and shells. */
const NASTY = [';', '|', '&', '$', '`', '(', ')', '<', '>', '"', "'", '\\', '\n', '\r', '\t', '\0', ' ', '/', '-', '0', 'x', ':', '.', '{', '}', '[', ']', ',', 'é', '中', '\u202e', '\ufeff', '\u{1f600}'];

/** Text of any kind: short Unicode, nasty characters, or very long runs. */
const text = fc.oneof(
  fc.string({ maxLength: 200, unit: 'grapheme' }),
  fc.string({ maxLength: 200, unit: fc.constantFrom(...NASTY) }),
  fc.string({ maxLength: 120, unit: 'binary' }),
  fc.tuple(fc.constantFrom(...NASTY, 'a', '1'), fc.integer({ min: 1000, max: 20_000 })).map(([c, n]) => c.repeat(n)),
);

type Edit = { at: number; cut: number; insert: string };
const edit = fc.record({ at: fc.nat(), cut: fc.integer({ min: 0, max: 12 }), insert: fc.string({ maxLength: 8, unit: fc.constantFrom(...NASTY, 'a', 'Z', '9') }) });

/** Real output with a few random cuts and insertions. */
function mutated(source: string): fc.Arbitrary<string> {
  return fc.array(edit, { minLength: 1, maxLength: 6 }).map((edits: Edit[]) =>
    edits.reduce((s, e) => {
      const at = s.length === 0 ? 0 : e.at % s.length;
      return s.slice(0, at) + e.insert + s.slice(at + e.cut);
    }, source),
  );
}

/** Input built from real output: either mutated or arbitrary. */
function inputs(source: string): fc.Arbitrary<string> {
  return fc.oneof(
    mutated(source),
    text,
    fc.array(fc.constantFrom(...source.split('\n')), { maxLength: 40 }).map((lines) => lines.join('\n')),
  );
}

/** Runs the parser; its declared error is an allowed outcome, anything else fails the property. */
function either<T>(declared: new (...args: never[]) => Error, parse: () => T, check: (value: T) => void): void {
  let value: T;
  try {
    value = parse();
  } catch (error) {
    if (error instanceof declared) return;
    throw error;
  }
  check(value);
}

const property = <T>(arbitrary: fc.Arbitrary<T>, predicate: (value: T) => void): void => fc.assert(fc.property(arbitrary, predicate), { numRuns: FUZZ_RUNS });

describe('fuzz: kernel and tool output', () => {
  test('neighbour table (ip -4 neigh show) and neighbour events never throw; every entry is well formed', () => {
    property(inputs(fixture('ip-neigh.txt')), (input) => {
      const { neighbours, rejected } = parseNeighbourTable(input);
      expect(neighbours.length + rejected).toBeLessThanOrEqual(input.split('\n').length);
      for (const line of [...neighbours.map((n) => `${n.ip} dev ${n.dev} lladdr ${n.mac} REACHABLE`), ...input.split('\n')]) {
        const n = parseNeighbourEvent(line);
        if (n) expect(isIpv4(n.ip) && MAC.test(n.mac) && isInterfaceName(n.dev) && n.mac !== '00:00:00:00:00:00').toBe(true);
      }
      for (const n of neighbours) expect(isIpv4(n.ip) && MAC.test(n.mac) && isInterfaceName(n.dev)).toBe(true);
    });
  });

  test('iptables-save: a ParseError or tables whose rules belong to declared chains', () => {
    const source = `${fixture('iptables-save.txt')}\n${fixture('iptables-save-counters.txt')}`;
    property(inputs(source), (input) =>
      either(
        ParseError,
        () => parseIptablesSave(input),
        (tables) => {
          for (const table of tables) {
            expect(table.name).toMatch(/^[a-z]+$/);
            for (const rule of table.rules) {
              expect(table.chains.some((c) => c.name === rule.chain)).toBe(true);
              for (const arg of rule.args) expect(typeof arg).toBe('string');
            }
          }
        },
      ),
    );
  });

  test('ipset save: a ParseError or sets and entries made of text', () => {
    property(inputs(fixture('ipset-save.txt')), (input) =>
      either(
        ParseError,
        () => parseIpsetSave(input),
        (dump) => {
          for (const entry of dump.entries) expect(typeof entry.set === 'string' && typeof entry.member === 'string' && entry.member.length > 0).toBe(true);
          for (const set of dump.sets) expect(typeof set.name === 'string' && typeof set.type === 'string').toBe(true);
        },
      ),
    );
  });

  test('ip -j rule / route / addr: a ParseError or typed values', () => {
    property(inputs(fixture('ip-rule.json')), (input) =>
      either(
        ParseError,
        () => parseIpRules(input),
        (rules) => {
          for (const r of rules) {
            expect(Number.isInteger(r.priority) && typeof r.table === 'string' && typeof r.src === 'string').toBe(true);
            if (r.fwmark !== undefined) expect(r.fwmark >= 0 && r.fwmark <= 0xffffffff).toBe(true);
          }
        },
      ),
    );
    property(inputs(fixture('ip-route.json')), (input) =>
      either(
        ParseError,
        () => parseIpRoutes(input),
        (routes) => {
          for (const r of routes) for (const hop of r.nexthops) expect(typeof hop.dev === 'string' && Number.isFinite(hop.weight)).toBe(true);
        },
      ),
    );
    property(inputs(fixture('ip-addr.json')), (input) =>
      either(
        ParseError,
        () => parseIpAddr(input),
        (links) => {
          for (const l of links) {
            expect(typeof l.name === 'string' && Number.isInteger(l.index)).toBe(true);
            for (const a of l.addresses) expect(typeof a.local === 'string' && Number.isInteger(a.prefixlen)).toBe(true);
          }
        },
      ),
    );
  });

  test('ping lines, link monitor lines and dhclient leases never throw and return only valid values', () => {
    const pings =
      '64 bytes from 192.0.2.1: icmp_seq=7 ttl=64 time=0.042 ms\nno answer yet for icmp_seq=11\nFrom 192.0.2.2 icmp_seq=3 Destination Host Unreachable\n[1700000000.123] 64 bytes from 192.0.2.1: icmp_seq=8 ttl=64 time=1.5 ms';
    property(inputs(pings), (input) => {
      for (const line of input.split('\n')) {
        const event = parsePingLine(line);
        if (event) expect(Number.isSafeInteger(event.seq) && (event.kind !== 'reply' || Number.isFinite(event.rttMs))).toBe(true);
      }
    });
    const links = '3: ppp0: <POINTOPOINT,NOARP> mtu 1492 qdisc noop state DOWN\nDeleted 3: ppp0    inet 192.0.2.2 peer 192.0.2.1/32 scope global ppp0\n4: wan0    inet 192.0.2.10/30 brd 192.0.2.11 scope global wan0';
    property(inputs(links), (input) => {
      for (const line of input.split('\n')) {
        const name = interfaceOfLinkEvent(line);
        if (name !== null) expect(isInterfaceName(name)).toBe(true);
        expect(typeof isMonitorOverrun(line)).toBe('boolean');
      }
    });
    const leases = 'lease {\n  interface "wan0";\n  fixed-address 192.0.2.10;\n  option routers 192.0.2.9;\n  expire 3 2099/11/22 17:10:00;\n}\n';
    property(inputs(leases), (input) => {
      const gateway = gatewayFromLeases(parseLeases(input), 'wan0', 0);
      if (gateway !== undefined) expect(isIpv4(gateway)).toBe(true);
    });
  });

  test("a DNS server's answer and a public-address URL's answer: only valid addresses come out", () => {
    const dig = ';; ->>HEADER<<- opcode: QUERY, status: NOERROR, id: 1\n;; ANSWER SECTION:\ngw.example.test. 60 IN A 192.0.2.6\ngw.example.test. 60 IN A 192.0.2.2\n';
    property(inputs(dig), (input) => {
      const answer = parseDigAnswer(input, 'gw.example.test');
      if ('records' in answer) for (const address of answer.records.addresses) expect(isIpv4(address)).toBe(true);
      else expect(answer.error.length).toBeLessThan(200);
    });
    /** The text an answer gives as the address: the whole body, or the JSON field (any spacing JSON allows). */
    const given = (body: string, field: string | undefined): string | null => {
      if (field === undefined) return body.trim();
      try {
        const value = (JSON.parse(body) as Record<string, unknown>)[field];
        return typeof value === 'string' ? value.trim() : null;
      } catch {
        return null;
      }
    };
    property(fc.tuple(inputs('{"ip": "192.0.2.10"}'), fc.constantFrom(undefined, 'ip')), ([body, field]) => {
      const answer = readPublicAddress(body, field);
      if ('address' in answer) expect(isIpv4(answer.address) && answer.address === given(body, field)).toBe(true);
      else expect(answer.error.length).toBeLessThan(400);
    });
  });
});

describe('fuzz: operator and pppd input', () => {
  test('ppp hook arguments: refused with a RequestError or passed on unchanged', () => {
    const args = fc.record({
      event: fc.oneof(fc.constantFrom('ip-up', 'ip-down'), text),
      interface: fc.oneof(fc.constantFrom('ppp0', 'ppp1'), text),
      tty: fc.oneof(fc.constant('/dev/ttyS0'), text),
      speed: fc.oneof(fc.constant('115200'), text),
      local: fc.oneof(fc.constant('192.0.2.2'), text),
      remote: fc.oneof(fc.constant('192.0.2.1'), text),
      ipparam: fc.oneof(fc.constant('isp1'), text),
    });
    property(args, (body) =>
      either(
        RequestError,
        () => checkHook(body),
        (hook) => {
          for (const key of ['event', 'interface', 'tty', 'speed', 'local', 'remote'] as const) expect(hook[key]).toBe(body[key]);
          expect(hook.ipparam ?? '').toBe(body.ipparam);
        },
      ),
    );
  });

  test('control requests (JSON lines from the socket): a RequestError or a request of a known command', () => {
    const json = fc.oneof(
      text,
      fc.json({ maxDepth: 3 }),
      fc.record({ cmd: fc.constantFrom('assign', 'release', 'hook', 'status', 'nope'), ip: fc.oneof(text, fc.constant('198.18.0.10')), uplink: fc.oneof(text, fc.constant('isp1')) }).map((o) => JSON.stringify(o)),
    );
    property(json, (line) =>
      either(
        RequestError,
        () => parseRequest(line),
        (request) => expect(['ping', 'pools', 'status', 'scan', 'reload', 'assign', 'release', 'hook']).toContain(request.cmd),
      ),
    );
  });

  test('config files: a ConfigError naming fields, or a config that holds together', () => {
    const lab = fixture('../../pools/lab.yaml');
    property(inputs(lab), (input) =>
      either(
        ConfigError,
        () => parseConfig(input, 'fuzz.yaml', { state: '/tmp/s', socket: '/tmp/c' }),
        (config) => {
          expect(config.uplinks.length).toBeGreaterThan(0);
          for (const u of config.uplinks) expect(isInterfaceName(u.interface)).toBe(true);
          for (const i of config.lan.interfaces) expect(isInterfaceName(i)).toBe(true);
        },
      ),
    );
    // Every problem of a refused config names a field and a fix.
    property(inputs(lab), (input) => {
      try {
        parseConfig(input, 'fuzz.yaml');
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        for (const p of error.problems) expect(p.field.length > 0 && p.fix.length > 0).toBe(true);
      }
    });
  });
});

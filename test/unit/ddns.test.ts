import { describe, expect, test } from '@jest/globals';
import { parseConfig } from '../../src/config/load.js';
import { backoffMs, inSync, parseDigAnswer, sendingUplink, updateScript, wantedRecords, type PublishableUplink } from '../../src/core/ddns.js';
import { readPublicAddress } from '../../src/core/public-address.js';
import { DdnsPublisher } from '../../src/engine/ddns.js';
import { PublicAddresses } from '../../src/engine/public-address.js';
import type { DdnsConfig } from '../../src/model/config.js';
import type { UplinkView } from '../../src/model/state.js';
import type { Logger } from '../../src/system/logger.js';
import { FakeRunner } from '../helpers/fake-runner.js';
import { ManualClock } from '../helpers/manual-clock.js';

const DDNS: DdnsConfig = { server: '203.0.113.53', port: 53, zone: 'example.test', name: 'gw.example.test', keyFile: '/k', ttl: 60, exclude: ['isp4'], everyMs: 300_000, timeoutMs: 5000 };

const uplink = (name: string, index: number, up: boolean, publicAddress: string | null): PublishableUplink => ({ name, index, up, publicAddress });

describe('the record set', () => {
  test('live, not excluded uplinks with a known address; sorted numerically, each once', () => {
    const uplinks = [
      uplink('isp1', 0, true, '192.0.2.10'),
      uplink('isp2', 1, false, '192.0.2.6'),
      uplink('isp3', 2, true, '192.0.2.2'),
      uplink('isp4', 3, true, '198.51.100.1'),
      uplink('isp5', 4, true, null),
      uplink('isp6', 5, true, '192.0.2.10'),
    ];
    expect(wantedRecords(DDNS, uplinks)).toEqual(['192.0.2.2', '192.0.2.10']);
  });

  test('updates leave by the first live uplink, excluded or not, and by the next after each failure; none when all are dead', () => {
    const uplinks = [uplink('isp1', 0, false, null), uplink('isp2', 1, true, null), uplink('isp4', 3, true, null)];
    expect([0, 1, 2, 3].map((failures) => sendingUplink(uplinks, failures)?.name)).toEqual(['isp2', 'isp4', 'isp2', 'isp4']);
    expect(sendingUplink([uplink('isp1', 0, false, null)])).toBeNull();
  });

  test('one transaction: the RRset is deleted and every record added before send', () => {
    expect(updateScript(DDNS, ['192.0.2.2', '192.0.2.6'])).toBe(
      'server 203.0.113.53 53\nzone example.test\nupdate delete gw.example.test. A\nupdate add gw.example.test. 60 A 192.0.2.2\nupdate add gw.example.test. 60 A 192.0.2.6\nsend\n',
    );
    expect(updateScript(DDNS, [])).toBe('server 203.0.113.53 53\nzone example.test\nupdate delete gw.example.test. A\nsend\n');
  });

  test('backoff doubles from 1 s and stops at 5 min', () => {
    expect([1, 2, 3, 4, 10, 100].map(backoffMs)).toEqual([1000, 2000, 4000, 8000, 300_000, 300_000]);
  });
});

const header = (status: string): string => `;; Got answer:\n;; ->>HEADER<<- opcode: QUERY, status: ${status}, id: 4242\n;; flags: qr aa rd; QUERY: 1, ANSWER: 2, AUTHORITY: 0, ADDITIONAL: 1\n`;

describe("reading the server's answer (dig +noall +comments +answer)", () => {
  test('A records of the name with their TTL; other names, types and junk are ignored', () => {
    const output = `${header('NOERROR')}\n;; ANSWER SECTION:\ngw.example.test.\t60\tIN\tA\t192.0.2.6\nGW.example.test.\t60\tIN\tA\t192.0.2.2\nother.example.test. 60 IN A 192.0.2.99\ngw.example.test. 60 IN TXT "x"\ngw.example.test. 60 IN A 999.1.1.1\n`;
    expect(parseDigAnswer(output, 'gw.example.test')).toEqual({ records: { addresses: ['192.0.2.2', '192.0.2.6'], ttls: [60] } });
  });

  test('NXDOMAIN and an empty answer are "no records"; REFUSED, SERVFAIL or no reply are errors, never "empty"', () => {
    expect(parseDigAnswer(header('NXDOMAIN'), 'gw.example.test')).toEqual({ records: { addresses: [], ttls: [] } });
    expect(parseDigAnswer(header('NOERROR'), 'gw.example.test')).toEqual({ records: { addresses: [], ttls: [] } });
    expect(parseDigAnswer(header('REFUSED'), 'gw.example.test')).toEqual({ error: 'the server answered REFUSED' });
    expect(parseDigAnswer(header('SERVFAIL'), 'gw.example.test')).toEqual({ error: 'the server answered SERVFAIL' });
    expect(parseDigAnswer(';; communications error to 203.0.113.54#53: timed out\n;; no servers could be reached\n', 'gw.example.test')).toEqual({ error: 'no answer from the server: ;; no servers could be reached' });
    expect(parseDigAnswer('', 'gw.example.test')).toEqual({ error: 'no answer from the server' });
  });

  test('in sync only with the same addresses and our TTL', () => {
    expect(inSync(DDNS, ['192.0.2.2'], { addresses: ['192.0.2.2'], ttls: [60] })).toBe(true);
    expect(inSync(DDNS, ['192.0.2.2'], { addresses: ['192.0.2.2'], ttls: [3600] })).toBe(false);
    expect(inSync(DDNS, ['192.0.2.2'], { addresses: ['192.0.2.2', '192.0.2.6'], ttls: [60] })).toBe(false);
    expect(inSync(DDNS, [], { addresses: [], ttls: [] })).toBe(true);
  });
});

describe('AAAA records beside the A records (lan.ipv6.mode nat)', () => {
  const dual = (name: string, index: number, address: string | null, up6: boolean, address6: string | null): PublishableUplink => ({ ...uplink(name, index, true, address), ipv6: { up: up6, address: address6 } });

  test('a line whose IPv6 is live adds its inbound address; IPv4 first, each family by value; exclusions hold for both', () => {
    const uplinks = [
      dual('isp1', 0, '192.0.2.10', true, '2001:db8:1:100::1'),
      dual('isp2', 1, '192.0.2.6', false, '2001:db8:b::2'),
      dual('isp3', 2, '192.0.2.2', true, '2001:db8:0:f::1'),
      dual('isp4', 3, '198.51.100.1', true, '2001:db8:4::1'),
      dual('isp5', 4, '192.0.2.14', true, null),
    ];
    expect(wantedRecords(DDNS, uplinks)).toEqual(['192.0.2.2', '192.0.2.6', '192.0.2.10', '192.0.2.14', '2001:db8:0:f::1', '2001:db8:1:100::1']);
    // A line down for IPv4 but not for IPv6 (its own verdict) keeps its AAAA record.
    expect(wantedRecords(DDNS, [{ ...dual('isp1', 0, '192.0.2.10', true, '2001:db8:1:100::1'), up: false }])).toEqual(['2001:db8:1:100::1']);
  });

  test('one transaction replaces both RRsets; with IPv6 off AAAA is not touched', () => {
    expect(updateScript(DDNS, ['192.0.2.2', '2001:db8:1:100::1'], ['A', 'AAAA'])).toBe(
      'server 203.0.113.53 53\nzone example.test\nupdate delete gw.example.test. A\nupdate delete gw.example.test. AAAA\nupdate add gw.example.test. 60 A 192.0.2.2\nupdate add gw.example.test. 60 AAAA 2001:db8:1:100::1\nsend\n',
    );
    expect(updateScript(DDNS, ['192.0.2.2', '2001:db8:1:100::1'])).not.toContain('AAAA');
  });

  test('both answers are read: AAAA records in canonical form; a missing or refused answer is an error; a TTL differs in either RRset', () => {
    const a = `${header('NOERROR')}\n;; ANSWER SECTION:\ngw.example.test. 60 IN A 192.0.2.2\n`;
    const aaaa = `${header('NOERROR')}\n;; ANSWER SECTION:\ngw.example.test. 300 IN AAAA 2001:0db8:1:100:0:0:0:1\ngw.example.test. 300 IN AAAA 192.0.2.9\n`;
    expect(parseDigAnswer(`${a}\n${aaaa}`, 'gw.example.test', 2)).toEqual({ records: { addresses: ['192.0.2.2', '2001:db8:1:100::1'], ttls: [60, 300] } });
    expect(inSync(DDNS, ['192.0.2.2', '2001:db8:1:100::1'], { addresses: ['192.0.2.2', '2001:db8:1:100::1'], ttls: [60, 300] })).toBe(false);
    expect(parseDigAnswer(a, 'gw.example.test', 2)).toEqual({ error: expect.stringMatching(/^no answer from the server/) });
    expect(parseDigAnswer(`${a}\n${header('REFUSED')}`, 'gw.example.test', 2)).toEqual({ error: 'the server answered REFUSED' });
  });

  const configWith = (mode: 'nat' | 'off') =>
    parseConfig(
      `
lan: { interfaces: [lan0], ipv6: { mode: ${mode}${mode === 'nat' ? ', prefix: fd00:18::/64' : ''} } }
uplinks:
  - { name: isp1, interface: wan1${mode === 'nat' ? ', ipv6: { prefix: 2001:db8:1:100::/64 }' : ''} }
netfilter: { backend: nftables }
ddns: { server: 203.0.113.53, zone: example.test, name: gw.example.test, key: /etc/dispatcher/ddns.key }
`,
      'test.yaml',
    );
  /** A server holding `records` for the name: dig answers each type with its own. */
  const server = (records: string[]) =>
    new FakeRunner()
      .answer('dig', (argv) => {
        const type = argv.at(-1);
        const lines = records.filter((r) => r.includes(':') === (type === 'AAAA')).map((r) => `gw.example.test. 60 IN ${type} ${r}`);
        return `${header('NOERROR')}\n;; ANSWER SECTION:\n${lines.join('\n')}\n`;
      })
      .answer('nsupdate', '');

  test('with IPv6 off from the start only A is asked for and sent: AAAA records are not ours', async () => {
    const runner = server(['192.0.2.2', '2001:db8:9::1']);
    const clock = new ManualClock();
    const publisher = new DdnsPublisher({ runner, log: silent, clock }, configWith('off'));
    publisher.observe([{ name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2' }]);
    await clock.flush();
    expect(runner.calls.filter((c) => c.argv[0] === 'dig').map((c) => c.argv.at(-1))).toEqual(['A']);
    expect(runner.calls.filter((c) => c.argv[0] === 'nsupdate')).toEqual([]);
    publisher.stop();
  });

  test('IPv6 turned off withdraws the AAAA records once; after that they are left alone', async () => {
    const runner = server(['192.0.2.2', '2001:db8:1:100::1']);
    const clock = new ManualClock();
    const publisher = new DdnsPublisher({ runner, log: silent, clock }, configWith('nat'));
    publisher.observe([{ name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2', ipv6: { up: true, address: '2001:db8:1:100::1' } }]);
    await clock.flush();
    expect(publisher.status()).toMatchObject({ inSync: true, updates: 0 });
    publisher.reconfigure(configWith('off'));
    publisher.observe([{ name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2' }]);
    await clock.flush();
    const updates = runner.calls.filter((c) => c.argv[0] === 'nsupdate');
    expect(updates).toHaveLength(1);
    expect(updates[0]?.input).toContain('update delete gw.example.test. AAAA\nupdate add gw.example.test. 60 A 192.0.2.2\nsend\n');
    await clock.advance(300_000);
    expect(
      runner.calls
        .filter((c) => c.argv[0] === 'dig')
        .slice(-1)
        .map((c) => c.argv.at(-1)),
    ).toEqual(['A']);
    publisher.stop();
  });

  test('a sync that still published AAAA after IPv6 went off (stale views) does not end the ownership: the next one withdraws them', async () => {
    const runner = server(['192.0.2.2', '2001:db8:1:100::1']);
    const clock = new ManualClock();
    const publisher = new DdnsPublisher({ runner, log: silent, clock }, configWith('nat'));
    const dual = { name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2', ipv6: { up: true, address: '2001:db8:1:100::1' } };
    publisher.observe([dual]);
    await clock.flush();
    publisher.reconfigure(configWith('off'));
    publisher.observe([{ ...dual, ipv6: { up: true, address: '2001:db8:1:100::2' } }]);
    await clock.flush();
    expect(runner.calls.filter((c) => c.argv[0] === 'nsupdate').at(-1)?.input).toContain('AAAA 2001:db8:1:100::2');
    publisher.observe([{ name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2' }]);
    await clock.flush();
    expect(runner.calls.filter((c) => c.argv[0] === 'nsupdate').at(-1)?.input).toBe(
      'server 203.0.113.53 53\nzone example.test\nupdate delete gw.example.test. A\nupdate delete gw.example.test. AAAA\nupdate add gw.example.test. 60 A 192.0.2.2\nsend\n',
    );
    publisher.stop();
  });

  test('the ownership outlives a restart: started with IPv6 off after it was on (the store says so), the daemon withdraws the AAAA records once', async () => {
    const told: boolean[] = [];
    const runner = server(['192.0.2.2', '2001:db8:1:100::1']);
    const clock = new ManualClock();
    const publisher = new DdnsPublisher({ runner, log: silent, clock, ownsAaaa: true, onOwnsAaaa: (owns) => told.push(owns) }, configWith('off'));
    publisher.observe([{ name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2' }]);
    await clock.flush();
    expect(runner.calls.filter((c) => c.argv[0] === 'nsupdate').map((c) => c.input)).toEqual([
      'server 203.0.113.53 53\nzone example.test\nupdate delete gw.example.test. A\nupdate delete gw.example.test. AAAA\nupdate add gw.example.test. 60 A 192.0.2.2\nsend\n',
    ]);
    expect(told).toEqual([false]);
    // Started with IPv6 on, the store learns the records are ours before anything is published; without ddns nothing is claimed.
    const on: boolean[] = [];
    new DdnsPublisher({ runner, log: silent, clock, ownsAaaa: false, onOwnsAaaa: (owns) => on.push(owns) }, configWith('nat')).stop();
    expect(on).toEqual([true]);
    const { ddns: _, ...withoutDdns } = configWith('nat');
    new DdnsPublisher({ runner, log: silent, clock, ownsAaaa: false, onOwnsAaaa: (owns) => on.push(owns) }, withoutDdns).stop();
    expect(on).toEqual([true]);
    publisher.stop();
  });

  test('the publisher asks for both types and sends one update holding both', async () => {
    const config = configWith('nat');
    const runner = server(['192.0.2.2']);
    const clock = new ManualClock();
    const publisher = new DdnsPublisher({ runner, log: silent, clock }, config);
    publisher.observe([{ name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2', ipv6: { up: true, address: '2001:db8:1:100::1' } }]);
    await clock.flush();
    expect(runner.calls.filter((c) => c.argv[0] === 'dig').map((c) => c.argv.at(-1))).toEqual(['A', 'AAAA']);
    const updates = runner.calls.filter((c) => c.argv[0] === 'nsupdate');
    expect(updates).toHaveLength(1);
    expect(updates[0]?.input).toContain('update delete gw.example.test. AAAA\nupdate add gw.example.test. 60 A 192.0.2.2\nupdate add gw.example.test. 60 AAAA 2001:db8:1:100::1\n');
    expect(publisher.status()).toMatchObject({ inSync: true, published: ['192.0.2.2', '2001:db8:1:100::1'] });
    publisher.stop();
  });
});

describe('public addresses from a URL are validated', () => {
  test('a plain body or a JSON field holding one public IPv4 address', () => {
    expect(readPublicAddress(' 192.0.2.10\r\n')).toEqual({ address: '192.0.2.10' });
    expect(readPublicAddress('{"ip": "198.51.100.7", "country": "xx"}', 'ip')).toEqual({ address: '198.51.100.7' });
  });

  test.each([
    ['<html>not an address; $(reboot)</html>', undefined, /not an IPv4 address: "<html>not an address; \$\(reboot\)<\/html>"/],
    ['192.0.2.10 198.51.100.7', undefined, /not an IPv4 address/],
    ['192.0.2.256', undefined, /not an IPv4 address/],
    ['10.1.2.3', undefined, /10\.1\.2\.3 is not a public address/],
    ['100.64.0.1', undefined, /not a public address/],
    ['192.168.1.1', undefined, /not a public address/],
    ['127.0.0.1', undefined, /not a public address/],
    ['224.0.0.1', undefined, /not a public address/],
    ['{"ip": 3221226002}', 'ip', /no text field "ip"/],
    ['192.0.2.10', 'ip', /not JSON/],
    [`${'x'.repeat(5000)}`, undefined, /not an IPv4 address: "x{40}…"/],
  ])('%s is refused', (body, field, message) => {
    const answer = readPublicAddress(body, field);
    expect('error' in answer && answer.error).toMatch(message);
  });
});

const silent: Logger = { debug() {}, info() {}, warn() {}, error() {} };

const ENGINE_CONFIG = parseConfig(
  `
lan: { interfaces: [lan0] }
uplinks:
  - { name: isp1, interface: ppp0, public_address: { url: "http://ip.example.test/" } }
ddns: { server: 203.0.113.53, zone: example.test, name: gw.example.test, key: /etc/dispatcher/ddns.key }
`,
  'test.yaml',
);

const ISP1: UplinkView = { name: 'isp1', index: 0, interface: 'ppp0', weight: 1, tier: 1, state: 'up', reason: 'link up', present: true, address: '192.0.2.2', pointToPoint: true };

describe('retries run on the clock they are given', () => {
  test('a failed DNS check is retried after the backoff, and an unchanged record set then sends no update', async () => {
    const runner = new FakeRunner().failOnce('dig', 9, ';; no servers could be reached').answer('dig', `${header('NOERROR')}\n;; ANSWER SECTION:\ngw.example.test. 60 IN A 192.0.2.2\n`);
    const clock = new ManualClock();
    const publisher = new DdnsPublisher({ runner, log: silent, clock }, ENGINE_CONFIG);
    publisher.observe([{ name: 'isp1', index: 0, up: true, publicAddress: '192.0.2.2' }]);
    await clock.flush();
    const digs = (): number => runner.calls.filter((c) => c.argv[0] === 'dig').length;
    expect(digs()).toBe(1);
    expect(publisher.status()).toMatchObject({ inSync: false, failures: 1, retryAt: new Date(clock.now() + backoffMs(1)).toISOString() });
    await clock.advance(backoffMs(1) - 1);
    expect(digs()).toBe(1);
    await clock.advance(1);
    expect(digs()).toBe(2);
    expect(publisher.status()).toMatchObject({ inSync: true, failures: 0, retryAt: null, checkedAt: new Date(clock.now()).toISOString() });
    expect(runner.calls.filter((c) => c.argv[0] === 'nsupdate')).toEqual([]);
    // The next check waits a whole period; stopping clears it.
    expect(clock.pendingTimers()).toBe(1);
    publisher.stop();
    expect(clock.pendingTimers()).toBe(0);
  });

  test('a failed public-address fetch is retried after the backoff; the address found is then told', async () => {
    const runner = new FakeRunner().failOnce(process.execPath, 1, 'connection refused').answer(process.execPath, '198.51.100.7\n');
    const clock = new ManualClock();
    let changes = 0;
    const addresses = new PublicAddresses({ runner, log: silent, onChange: () => void changes++, clock }, ENGINE_CONFIG);
    addresses.observe([ISP1]);
    await clock.flush();
    expect(runner.calls).toHaveLength(1);
    expect(addresses.snapshot(ISP1)).toMatchObject({ address: null, failures: 1, checkedAt: new Date(clock.now()).toISOString() });
    // The first outcome, even a failure, is told: publishing waits for it.
    expect(changes).toBe(1);
    // Due 1 s after the failure; the timer that re-runs the lookup fires 10 ms later.
    await clock.advance(backoffMs(1) + 9);
    expect(runner.calls).toHaveLength(1);
    await clock.advance(1);
    expect(runner.calls).toHaveLength(2);
    expect(addresses.address(ISP1)).toBe('198.51.100.7');
    expect(changes).toBe(2);
    expect(clock.pendingTimers()).toBe(1);
    addresses.stop();
    expect(clock.pendingTimers()).toBe(0);
  });
});

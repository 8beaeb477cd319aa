import { describe, expect, test } from '@jest/globals';
import { backoffMs, inSync, parseDigAnswer, sendingUplink, updateScript, wantedRecords, type PublishableUplink } from '../../src/core/ddns.js';
import { readPublicAddress } from '../../src/core/public-address.js';
import type { DdnsConfig } from '../../src/model/config.js';

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
    expect(parseDigAnswer(output, 'gw.example.test')).toEqual({ records: { addresses: ['192.0.2.2', '192.0.2.6'], ttl: 60 } });
  });

  test('NXDOMAIN and an empty answer are "no records"; REFUSED, SERVFAIL or no reply are errors, never "empty"', () => {
    expect(parseDigAnswer(header('NXDOMAIN'), 'gw.example.test')).toEqual({ records: { addresses: [], ttl: null } });
    expect(parseDigAnswer(header('NOERROR'), 'gw.example.test')).toEqual({ records: { addresses: [], ttl: null } });
    expect(parseDigAnswer(header('REFUSED'), 'gw.example.test')).toEqual({ error: 'the server answered REFUSED' });
    expect(parseDigAnswer(header('SERVFAIL'), 'gw.example.test')).toEqual({ error: 'the server answered SERVFAIL' });
    expect(parseDigAnswer(';; communications error to 203.0.113.54#53: timed out\n;; no servers could be reached\n', 'gw.example.test')).toEqual({ error: 'no answer from the server: ;; no servers could be reached' });
    expect(parseDigAnswer('', 'gw.example.test')).toEqual({ error: 'no answer from the server' });
  });

  test('in sync only with the same addresses and our TTL', () => {
    expect(inSync(DDNS, ['192.0.2.2'], { addresses: ['192.0.2.2'], ttl: 60 })).toBe(true);
    expect(inSync(DDNS, ['192.0.2.2'], { addresses: ['192.0.2.2'], ttl: 3600 })).toBe(false);
    expect(inSync(DDNS, ['192.0.2.2'], { addresses: ['192.0.2.2', '192.0.2.6'], ttl: 60 })).toBe(false);
    expect(inSync(DDNS, [], { addresses: [], ttl: null })).toBe(true);
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

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { cidrContains, cidrsOverlap, formatIpv4, isUnicastHost, parseCidr, parseIpv4 } from '../../src/core/ipv4.js';
import { connMark, deposit, extract, hex, markLayout, parseMark, poolMark } from '../../src/core/marks.js';

describe('mark layout', () => {
  test('the default mask splits into a pool nibble and a connection nibble', () => {
    const layout = markLayout(0xff000000);
    expect([hex(layout.poolMask), hex(layout.connMask), layout.capacity]).toEqual(['0xf000000', '0xf0000000', 15]);
    expect(hex(poolMark(layout, 0))).toBe('0x1000000');
    expect(hex(connMark(layout, 2))).toBe('0x30000000');
  });

  test('a mask with holes still works: values are spread over its bits', () => {
    const layout = markLayout(0xf0000003);
    // Six bits: the lower three (0, 1, 28) hold the pool, the upper three (29–31) the connection.
    expect(hex(layout.poolMask)).toBe('0x10000003');
    expect(hex(layout.connMask)).toBe('0xe0000000');
    expect(layout.capacity).toBe(7);
    expect(hex(poolMark(layout, 3))).toBe('0x10000000');
  });

  test('property: fields never overlap, never leave the mask, and round-trip', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 0xffffffff }), (mask) => {
        const layout = markLayout(mask);
        expect((layout.poolMask & layout.connMask) >>> 0).toBe(0);
        expect((layout.poolMask | layout.connMask) >>> 0).toBe(mask >>> 0);
        for (let i = 0; i < Math.min(layout.capacity, 20); i++) {
          expect(extract(poolMark(layout, i), layout.poolMask)).toBe(i + 1);
          expect(extract(connMark(layout, i), layout.connMask)).toBe(i + 1);
        }
      }),
    );
  });

  test('a value too large for its field is refused', () => {
    expect(() => deposit(16, 0xf0000000)).toThrow(RangeError);
  });

  test('mark text', () => {
    expect(parseMark('0xff000000')).toBe(0xff000000);
    expect(parseMark('4096')).toBe(4096);
    expect(parseMark('0x1ffffffff')).toBeNull();
    expect(parseMark('-1')).toBeNull();
  });
});

describe('IPv4', () => {
  test('strict dotted quads', () => {
    expect(parseIpv4('198.18.0.10')).toBe(0xc612000a);
    for (const bad of ['198.18.0', '198.18.0.256', '010.1.1.1', ' 1.2.3.4', '1.2.3.4 ', '1.2.3.4/32', '', '1..2.3']) expect(parseIpv4(bad)).toBeNull();
  });

  test('property: the hand-rolled parser accepts exactly the strict dotted-quad grammar', () => {
    const OCTET = '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])';
    const grammar = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
    const quadish = fc.array(fc.oneof(fc.nat(300).map(String), fc.constantFrom('', '00', '01', '-1', ' 1', '1e2', 'x')), { minLength: 1, maxLength: 6 }).map((parts) => parts.join('.'));
    fc.assert(
      fc.property(fc.oneof(quadish, fc.string({ maxLength: 20 })), (text) => {
        expect(parseIpv4(text) !== null).toBe(grammar.test(text));
      }),
      { numRuns: 2000 },
    );
  });

  test('property: format and parse round-trip', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), (n) => expect(parseIpv4(formatIpv4(n))).toBe(n)));
  });

  test('networks', () => {
    const lan = parseCidr('198.18.0.0/15')!;
    expect(cidrContains(lan, parseIpv4('198.19.255.1')!)).toBe(true);
    expect(cidrContains(lan, parseIpv4('198.20.0.1')!)).toBe(false);
    expect(parseCidr('198.18.0.1/15')).toBeNull();
    expect(cidrsOverlap(parseCidr('10.0.0.0/8')!, parseCidr('10.1.0.0/16')!)).toBe(true);
    expect(cidrsOverlap(parseCidr('10.0.0.0/16')!, parseCidr('10.1.0.0/16')!)).toBe(false);
    expect(parseCidr('0.0.0.0/0')).toEqual({ network: 0, prefix: 0 });
  });

  test('which addresses can be clients', () => {
    for (const host of ['198.18.0.10', '10.0.0.1']) expect(isUnicastHost(parseIpv4(host)!)).toBe(true);
    for (const other of ['0.0.0.0', '127.0.0.1', '169.254.1.1', '224.0.0.251', '255.255.255.255', '240.0.0.1']) expect(isUnicastHost(parseIpv4(other)!)).toBe(false);
  });
});

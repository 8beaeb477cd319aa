// Addresses of either family (src/core/address.ts): parse/format round trips
// for every value, the text forms the tools print, strictness, CIDR.

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { compareAddresses, familyOf, formatAddress, formatIpv6, formatNetwork, networkContains, parseAddress, parseIpv6, parseNetwork, sameAddress, type Address } from '../../src/core/address.js';
import { formatIpv4, parseIpv4 } from '../../src/core/ipv4.js';

const ipv4Value = fc.integer({ min: 0, max: 0xffffffff });
/** 128-bit values biased to zero groups, so "::" compression and the mixed forms are exercised. */
const group = fc.oneof(fc.constant(0), fc.constant(0xffff), fc.integer({ min: 0, max: 0xffff }));
const ipv6Value = fc.array(group, { minLength: 8, maxLength: 8 }).map((groups) => groups.reduce((v, g) => (v << 16n) | BigInt(g), 0n));
const address: fc.Arbitrary<Address> = fc.oneof(
  ipv4Value.map((value) => ({ family: 'ipv4' as const, value })),
  ipv6Value.map((value) => ({ family: 'ipv6' as const, value })),
);

describe('round trips (property)', () => {
  test('IPv4: format then parse gives the value back, and the text is what parseIpv4 reads', () => {
    fc.assert(
      fc.property(ipv4Value, (value) => {
        const text = formatAddress({ family: 'ipv4', value });
        expect(text).toBe(formatIpv4(value));
        expect(parseAddress(text)).toEqual({ family: 'ipv4', value });
        expect(familyOf(text)).toBe('ipv4');
      }),
    );
  });

  test('IPv6: format then parse gives the value back; formatting is canonical (a fixed point)', () => {
    fc.assert(
      fc.property(ipv6Value, (value) => {
        const text = formatIpv6(value);
        expect(parseIpv6(text)).toBe(value);
        expect(parseAddress(text)).toEqual({ family: 'ipv6', value });
        expect(familyOf(text)).toBe('ipv6');
        expect(text).toBe(text.toLowerCase());
        expect(text).not.toMatch(/(^|:)0[0-9a-f]/);
        expect(text.split('::').length).toBeLessThanOrEqual(2);
      }),
    );
  });

  test('IPv6: every spelling of a value (full, upper case, leading zeros) parses to it', () => {
    fc.assert(
      fc.property(ipv6Value, fc.boolean(), (value, upper) => {
        const full = Array.from({ length: 8 }, (_, i) =>
          Number((value >> BigInt(112 - 16 * i)) & 0xffffn)
            .toString(16)
            .padStart(4, '0'),
        ).join(':');
        expect(parseIpv6(upper ? full.toUpperCase() : full)).toBe(value);
      }),
    );
  });

  test('networks of both families: format then parse is the identity, and a network contains its own address', () => {
    fc.assert(
      fc.property(address, fc.integer({ min: 0, max: 128 }), (a, length) => {
        const bits = a.family === 'ipv4' ? 32 : 128;
        const prefix = length % (bits + 1);
        // Clear the host bits by formatting the address with them and re-reading the network of that text.
        const hostBits = BigInt(bits - prefix);
        const network = a.family === 'ipv4' ? ({ family: 'ipv4', network: Number((BigInt(a.value) >> hostBits) << hostBits), prefix } as const) : ({ family: 'ipv6', network: (a.value >> hostBits) << hostBits, prefix } as const);
        expect(parseNetwork(formatNetwork(network))).toEqual(network);
        expect(networkContains(network, a)).toBe(true);
      }),
    );
  });

  test('compare orders IPv4 before IPv6 and agrees with sameAddress', () => {
    fc.assert(
      fc.property(address, address, (a, b) => {
        expect(compareAddresses(a, b)).toBe(-compareAddresses(b, a) || 0);
        expect(compareAddresses(a, b) === 0).toBe(sameAddress(a, b));
        if (a.family !== b.family) expect(compareAddresses(a, b)).toBe(a.family === 'ipv4' ? -1 : 1);
      }),
    );
  });
});

describe('untrusted text (property)', () => {
  test('any text is either refused or read as an address whose canonical form reads back the same', () => {
    const chars = fc.constantFrom(...'0123456789abcdefABCDEFg:.:/% '.split(''));
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 50 }), fc.string({ maxLength: 45, unit: chars })), (text) => {
        const parsed = parseAddress(text);
        expect(familyOf(text)).toBe(parsed?.family ?? null);
        if (parsed !== null) expect(parseAddress(formatAddress(parsed))).toEqual(parsed);
        const network = parseNetwork(text);
        if (network !== null) expect(parseNetwork(formatNetwork(network))).toEqual(network);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('IPv6 text', () => {
  test('formats as inet_ntop does (what ip, ipset and conntrack print)', () => {
    const cases: [string, string][] = [
      ['0:0:0:0:0:0:0:0', '::'],
      ['0:0:0:0:0:0:0:1', '::1'],
      ['2001:0DB8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['fe80:0:0:0:0:0:0:1', 'fe80::1'],
      ['1:0:0:1:0:0:0:1', '1:0:0:1::1'],
      ['1:0:0:2:0:0:3:4', '1::2:0:0:3:4'],
      ['1:0:2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
      ['0:0:1::', '0:0:1::'],
      ['::ffff:c000:0201', '::ffff:192.0.2.1'],
      ['::c000:201', '::192.0.2.1'],
      ['::ffff:0:0', '::ffff:0.0.0.0'],
      ['::ffff:0:c000:201', '::ffff:0:c000:201'],
      ['::1:0:0', '::1:0:0'],
      ['2001:db8:1:100::', '2001:db8:1:100::'],
    ];
    for (const [input, canonical] of cases) expect(formatIpv6(parseIpv6(input) as bigint)).toBe(canonical);
  });

  test('refuses what is not exactly one address', () => {
    const bad = [
      '',
      ':',
      ':::',
      '1:::2',
      '1::2::3',
      ':1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:',
      '1:2:3:4:5:6:7',
      '1:2:3:4:5:6:7:8:9',
      '1:2:3:4:5:6:7::8',
      '12345::',
      'g::1',
      '::1 ',
      ' ::1',
      'fe80::1%eth0',
      '[::1]',
      '::1/128',
      '::ffff:1.2.3',
      '::ffff:01.2.3.4',
      '::1.2.3.4:5',
      '1.2.3.4::',
      '1:2:3:4:5:6:7:1.2.3.4',
    ];
    for (const text of bad) {
      expect([text, parseIpv6(text)]).toEqual([text, null]);
      expect([text, parseAddress(text)]).toEqual([text, null]);
    }
  });

  test('familyOf tells the families apart and refuses anything else', () => {
    expect(familyOf('192.0.2.1')).toBe('ipv4');
    expect(familyOf('2001:db8::1')).toBe('ipv6');
    expect(familyOf('::ffff:192.0.2.1')).toBe('ipv6');
    expect(familyOf('010.1.1.1')).toBeNull();
    expect(familyOf('example.test')).toBeNull();
    expect(familyOf('')).toBeNull();
  });
});

describe('networks', () => {
  test('parse of both families; a bare address is a host network; host bits must be zero', () => {
    expect(parseNetwork('192.0.2.0/24')).toEqual({ family: 'ipv4', network: parseIpv4('192.0.2.0'), prefix: 24 });
    expect(parseNetwork('192.0.2.7')).toEqual({ family: 'ipv4', network: parseIpv4('192.0.2.7'), prefix: 32 });
    expect(parseNetwork('2001:db8:1:100::/64')).toEqual({ family: 'ipv6', network: parseIpv6('2001:db8:1:100::'), prefix: 64 });
    expect(parseNetwork('fd00:18::1')).toEqual({ family: 'ipv6', network: parseIpv6('fd00:18::1'), prefix: 128 });
    expect(parseNetwork('::/0')).toEqual({ family: 'ipv6', network: 0n, prefix: 0 });
    for (const bad of ['192.0.2.1/24', '192.0.2.0/33', '2001:db8::1/64', '2001:db8::/129', '2001:db8::/064', '2001:db8::/', '/64', 'fd00::/-1']) {
      expect([bad, parseNetwork(bad)]).toEqual([bad, null]);
    }
  });

  test('contains: inside, outside, never across families', () => {
    const v6 = parseNetwork('2001:db8:1:100::/64')!;
    const v4 = parseNetwork('192.0.2.0/24')!;
    expect(networkContains(v6, parseAddress('2001:db8:1:100:abcd::1')!)).toBe(true);
    expect(networkContains(v6, parseAddress('2001:db8:1:101::1')!)).toBe(false);
    expect(networkContains(v4, parseAddress('192.0.2.200')!)).toBe(true);
    expect(networkContains(v4, parseAddress('192.0.3.1')!)).toBe(false);
    // ::ffff:192.0.2.1 is an IPv6 address: an IPv4 network does not contain it, nor the reverse.
    expect(networkContains(v4, parseAddress('::ffff:192.0.2.1')!)).toBe(false);
    expect(networkContains(parseNetwork('::/0')!, parseAddress('192.0.2.1')!)).toBe(false);
    expect(networkContains(parseNetwork('0.0.0.0/0')!, parseAddress('::1')!)).toBe(false);
  });
});

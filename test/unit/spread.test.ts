// The destination and connection modes' pure part (core/balance/spread.ts):
// 64 buckets shared out by weight in contiguous ranges, each range as the
// fewest aligned mark matches, only the main tier sharing; and how each
// backend writes it.

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { desiredIptables } from '../../src/backends/iptables/desired.js';
import { renderSkeleton } from '../../src/backends/nftables/render.js';
import { parseConfig } from '../../src/config/load.js';
import { hmarkAddressBucket, jhash, nftAddressBucket, reciprocalScale } from '../../src/core/balance/kernel-hash.js';
import { apportion, bucketBlocks, planSpread, SPREAD_BUCKETS, SPREAD_SEED } from '../../src/core/balance/spread.js';
import { planNetfilter } from '../../src/core/netfilter.js';
import { uplinkView } from '../helpers/uplink-view.js';
import { skeleton } from '../helpers/scenario.js';

const config = (mode: string, tiers = '') =>
  parseConfig(
    `
lan: { interfaces: [lan0] }
balance: { mode: ${mode} }
uplinks:
  - { name: isp1, interface: ppp0, weight: 2 }
  - { name: isp2, interface: ppp1 }
  - { name: lte, interface: wan0${tiers} }
`,
    'test.yaml',
  );

const VIEWS = [uplinkView('isp1', 0, 'ppp0', { weight: 2 }), uplinkView('isp2', 1, 'ppp1'), uplinkView('lte', 2, 'wan0')];

describe('sharing the buckets', () => {
  test('by weight, contiguous, in config order: 2:1:1 is 32:16:16, 2:1 is 43:21', () => {
    expect(
      apportion([
        { name: 'a', weight: 2 },
        { name: 'b', weight: 1 },
        { name: 'c', weight: 1 },
      ]),
    ).toEqual([
      { from: 0, to: 31, uplink: 'a' },
      { from: 32, to: 47, uplink: 'b' },
      { from: 48, to: 63, uplink: 'c' },
    ]);
    expect(
      apportion([
        { name: 'a', weight: 2 },
        { name: 'b', weight: 1 },
      ]).map((r) => r.to - r.from + 1),
    ).toEqual([43, 21]);
  });

  test('any weights (1–256) and up to 15 lines: every bucket once, every line at least one; where every exact share is a bucket or more, each line within one bucket of it', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 256 }), { minLength: 1, maxLength: 15 }), (weights) => {
        const ranges = apportion(weights.map((weight, i) => ({ name: `l${i}`, weight })));
        expect(ranges[0]?.from).toBe(0);
        expect(ranges.at(-1)?.to).toBe(SPREAD_BUCKETS - 1);
        const total = weights.reduce((a, b) => a + b, 0);
        const exact = weights.map((w) => (SPREAD_BUCKETS * w) / total);
        ranges.forEach((range, i) => {
          if (i > 0) expect(range.from).toBe((ranges[i - 1]?.to as number) + 1);
          const size = range.to - range.from + 1;
          expect(size).toBeGreaterThanOrEqual(1);
          if (exact.every((e) => e >= 1)) expect(Math.abs(size - (exact[i] as number))).toBeLessThan(1);
        });
      }),
    );
  });

  test('a range is the fewest aligned blocks; together they match exactly its buckets', () => {
    expect(bucketBlocks(0, 42)).toEqual([
      { value: 0, mask: 0x20 },
      { value: 32, mask: 0x38 },
      { value: 40, mask: 0x3e },
      { value: 42, mask: 0x3f },
    ]);
    expect(bucketBlocks(0, 63)).toEqual([{ value: 0, mask: 0 }]);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 63 }), (a, b) => {
        const [from, to] = a <= b ? [a, b] : [b, a];
        const blocks = bucketBlocks(from, to);
        for (let bucket = 0; bucket < SPREAD_BUCKETS; bucket++) {
          const matches = blocks.filter((block) => (bucket & block.mask) === block.value).length;
          expect(matches).toBe(bucket >= from && bucket <= to ? 1 : 0);
        }
      }),
    );
  });
});

describe('the spread intent', () => {
  test('host mode has none; the others share the buckets among the main tier, each range with its pool mark', () => {
    expect(planSpread(config('host'), VIEWS)).toBeNull();
    const spread = planSpread(config('destination', ', tier: 2'), [...VIEWS.slice(0, 2), uplinkView('lte', 2, 'wan0', { tier: 2 })]);
    expect(spread).toMatchObject({ buckets: 64 });
    // The backup line (tier 2) shares nothing: it is reached through the main lines' pools when they are all down.
    expect(spread?.ranges).toEqual([
      { from: 0, to: 42, uplink: 'isp1', poolMark: 0x1000000 },
      { from: 43, to: 63, uplink: 'isp2', poolMark: 0x2000000 },
    ]);
    // A degraded line's lowered weight (the healthy ones' are raised) shares less.
    const degraded = planSpread(config('connection'), [uplinkView('isp1', 0, 'ppp0', { weight: 8 }), uplinkView('isp2', 1, 'ppp1', { weight: 4 }), uplinkView('lte', 2, 'wan0', { weight: 1, degraded: 'loss 9%' })]);
    expect(degraded?.ranges.map((r) => r.to - r.from + 1)).toEqual([39, 20, 5]);
  });

  test("iptables: a connection without an uplink goes to DISPATCHER-CHOOSE, on to the mode's hash chain (none for a packet with foreign mark bits), HMARK to 0x80000000 + bucket, and one MARK rule per block", () => {
    const intent = planNetfilter(config('destination'), VIEWS, new Map());
    const mangle = desiredIptables(skeleton, intent).tables.find((t) => t.name === 'mangle');
    const rules = (mangle?.rules ?? []).filter((r) => /^DISPATCHER-(SPREAD|CHOOSE|HASH-)/.test(r.chain) || r.args.includes('DISPATCHER-CHOOSE')).map((r) => `-A ${r.chain} ${r.args.join(' ')}`);
    expect(rules).toEqual([
      '-A DISPATCHER-PRE -i lan0 -m connmark --mark 0x0/0xf0000000 -j DISPATCHER-CHOOSE',
      '-A DISPATCHER-CHOOSE -g DISPATCHER-HASH-DST',
      '-A DISPATCHER-HASH-DST -m mark ! --mark 0x0/0xf0ffffff -j RETURN',
      '-A DISPATCHER-HASH-DST -j HMARK --hmark-src-prefix 32 --hmark-dst-prefix 32 --hmark-rnd 0x64737031 --hmark-mod 64 --hmark-offset 2147483648',
      '-A DISPATCHER-HASH-DST -g DISPATCHER-SPREAD',
      '-A DISPATCHER-SPREAD -m mark --mark 0x80000000/0xffffffe0 -j MARK --set-xmark 0x1000000/0xffffffff',
      '-A DISPATCHER-SPREAD -m mark --mark 0x80000020/0xfffffff0 -j MARK --set-xmark 0x2000000/0xffffffff',
      '-A DISPATCHER-SPREAD -m mark --mark 0x80000030/0xfffffff0 -j MARK --set-xmark 0x3000000/0xffffffff',
    ]);
    const connection = desiredIptables(skeleton, planNetfilter(config('connection'), VIEWS, new Map())).tables.find((t) => t.name === 'mangle');
    expect(connection?.rules.find((r) => r.args.includes('HMARK'))?.args.join(' ')).toBe(
      '-j HMARK --hmark-src-prefix 32 --hmark-dst-prefix 32 --hmark-sport-mask 0xffff --hmark-dport-mask 0xffff --hmark-proto-mask 0xffff --hmark-rnd 0x64737031 --hmark-mod 64 --hmark-offset 2147483648',
    );
    // Host mode without policies: the spread chain exists, nothing jumps to it, it is empty; no choose or hash chain.
    const host = desiredIptables(skeleton, planNetfilter(config('host'), VIEWS, new Map())).tables.find((t) => t.name === 'mangle');
    expect(host?.chains.filter((c) => /^DISPATCHER-(SPREAD|CHOOSE|HASH-)/.test(c))).toEqual(['DISPATCHER-SPREAD']);
    expect(host?.rules.filter((r) => r.chain === 'DISPATCHER-SPREAD' || r.args.some((a) => /^DISPATCHER-(SPREAD|CHOOSE)/.test(a)))).toEqual([]);
  });

  test('iptables, any marks.mask (e.g. 0xff000003, pool marks in the low bits): each HMARK value matches exactly one block, and no pool mark matches any', () => {
    const lowBits = { ...config('destination'), marks: { mask: 0xff000003 } };
    const intent = planNetfilter(lowBits, VIEWS, new Map());
    const mangle = desiredIptables(skeleton, intent).tables.find((t) => t.name === 'mangle');
    const blocks = (mangle?.rules ?? [])
      .filter((r) => r.chain === 'DISPATCHER-SPREAD' && r.args.includes('MARK'))
      .map((r) => `${r.args[r.args.indexOf('--mark') + 1]}/0xffffffff`.split('/').map(Number).slice(0, 2) as [number, number]);
    expect(blocks.length).toBeGreaterThan(0);
    const matching = (mark: number) => blocks.filter(([value, mask]) => (mark & mask) >>> 0 === value).length;
    for (let bucket = 0; bucket < SPREAD_BUCKETS; bucket++) expect(matching((0x80000000 | bucket) >>> 0)).toBe(1);
    for (const u of intent.uplinks) expect(matching(u.poolMark)).toBe(0);
    expect(intent.uplinks[0]?.poolMark).toBe(0x1);
  });

  test("nftables: a connection without an uplink jumps to choose after the client map, on to the mode's jhash verdict map, jumping to the pool chains", () => {
    const text = renderSkeleton(planNetfilter(config('connection'), VIEWS, new Map()));
    expect(text).toContain('    ip saddr vmap @clients\n    ct mark and 0xf0000000 == 0x0 jump choose\n    counter name');
    // Pinned clients (none yet: an empty set) keep their pools; everything else is hashed.
    expect(text).toContain('  chain choose {\n    ip saddr @p1_hosts return\n    goto hash_connection\n  }');
    expect(text).toContain(
      '  chain hash_connection {\n    jhash ip saddr . ip daddr . meta l4proto . th sport . th dport mod 64 seed 0x64737031 vmap { 0-31 : jump pool_01000000_0f000000, 32-47 : jump pool_02000000_0f000000, 48-63 : jump pool_03000000_0f000000 }',
    );
    expect(text.indexOf('ip saddr vmap @clients')).toBeLessThan(text.indexOf('jump choose'));
    expect(renderSkeleton(planNetfilter(config('host'), VIEWS, new Map()))).not.toContain('jhash');
  });
});

describe("the kernel's hashes, for explain --to", () => {
  test('HMARK and nft jhash buckets of 198.18.0.10 to 203.0.113.1–16 (seed 0x64737031, 64 buckets), as the lab saw them on Linux 6.18', () => {
    const ip = (text: string): number => text.split('.').reduce((n, part) => n * 256 + Number(part), 0);
    const destinations = Array.from({ length: 16 }, (_, i) => ip(`203.0.113.${i + 1}`));
    const client = ip('198.18.0.10');
    // With 2:1:1 (isp1 0–31, isp2 32–47, isp3 48–63): iptables 10/2/4 and nftables 9/6/1, the namespace test's counts.
    expect(destinations.map((d) => hmarkAddressBucket(client, d, SPREAD_SEED, 64))).toEqual([26, 62, 29, 3, 48, 61, 24, 23, 0, 34, 18, 40, 57, 24, 8, 21]);
    expect(destinations.map((d) => nftAddressBucket(client, d, SPREAD_SEED, 64))).toEqual([46, 47, 14, 27, 58, 34, 4, 1, 5, 4, 42, 19, 23, 7, 32, 42]);
    // HMARK sorts the addresses: both directions of a flow hash alike.
    expect(hmarkAddressBucket(destinations[0] as number, client, SPREAD_SEED, 64)).toBe(26);
  });

  test('jhash over bytes: lengths 0 to 13 (every tail length, and one full 12-byte round) stay 32-bit and depend on every byte', () => {
    const base = Uint8Array.from({ length: 13 }, (_, i) => i + 1);
    for (let length = 0; length <= 13; length++) {
      const bytes = base.slice(0, length);
      const hash = jhash(bytes, 7);
      expect(hash).toBe(hash >>> 0);
      for (let i = 0; i < length; i++) {
        const changed = bytes.slice();
        changed[i] = (changed[i] as number) ^ 0x80;
        expect(jhash(changed, 7)).not.toBe(hash);
      }
    }
    // 39 bytes: three rounds of the mix, then the tail (pinned before the mix was written as rounds).
    const long = Uint8Array.from({ length: 39 }, (_, i) => (i * 37 + 39) & 255);
    expect(jhash(long, 0)).toBe(3687795208);
    expect(reciprocalScale(0xffffffff, 64)).toBe(63);
    expect(reciprocalScale(0, 64)).toBe(0);
  });
});

// The nftables backend's pure parts: the table it wants, what it loads to get
// there (the whole table when its rules changed, else only the client map's
// elements), how it reads the ruleset back, and other software's mark rules.

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { LayeredMap } from '../../src/core/layered-map.js';
import { planNft, nftablesBackend } from '../../src/backends/nftables/index.js';
import { markBitsOfRule, parseNftRuleset } from '../../src/backends/nftables/parse.js';
import { poolChain, renderSkeleton, rulesPerChain, skeletonDigest } from '../../src/backends/nftables/render.js';
import type { NftObserved } from '../../src/backends/nftables/types.js';
import type { NetfilterIntent } from '../../src/model/plan.js';

const intent = (clients: Record<string, number> = {}): NetfilterIntent => ({
  connMask: 0xf0000000,
  poolMask: 0x0f000000,
  lans: ['lan0'],
  uplinks: [
    { name: 'isp1', interface: 'ppp0', connMark: 0x10000000, poolMark: 0x01000000, group: 64100, snat: null },
    { name: 'isp2', interface: 'wan0', connMark: 0x20000000, poolMark: 0x02000000, group: 64101, snat: null },
  ],
  clients: new Map(Object.entries(clients)),
  maxClients: 65536,
  choose: null,
  spread: null,
  ipv6: null,
  fence: null,
});

const POOL1 = poolChain(0x01000000, 0x0f000000);
const POOL2 = poolChain(0x02000000, 0x0f000000);

/** The table as the kernel would hold it after loading `wanted`'s skeleton with these elements. */
function loaded(clients: Record<string, string>, skeleton = renderSkeleton(intent()), hostSets = new Map<string, Set<string>>(), counters = new Map<string, readonly [number, number]>()): NftObserved {
  return { table: true, digest: skeletonDigest(skeleton), clients: new Map(Object.entries(clients)), counters, hostSets, rulesPerChain: rulesPerChain(skeleton), groups: [64100, 64101], foreignMarks: [] };
}

describe('the table', () => {
  test('classifies with one verdict-map lookup per packet, whatever the clients; marks with constant masks only', () => {
    const text = renderSkeleton(intent());
    // One lookup by interface sends a packet to its kind's rules: a LAN's, or the line's it arrived by or leaves by.
    expect(text).toContain(
      '  chain pre {\n    type filter hook prerouting priority mangle; policy accept;\n    meta nfproto ipv6 return\n    iifname vmap { "lan0" : jump lan, "ppp0" : jump claim_10000000, "wan0" : jump claim_20000000 }\n  }',
    );
    expect(text).toContain(
      '  chain post {\n    type filter hook postrouting priority mangle; policy accept;\n    meta nfproto ipv6 return\n    oifname vmap { "lan0" : jump count, "ppp0" : jump claim_10000000, "wan0" : jump claim_20000000 }\n  }',
    );
    expect(text).toContain('  chain claim_20000000 {\n    ct mark and 0xf0000000 == 0x0 ct mark set ct mark and 0xfffffff or 0x20000000\n  }');
    // A LAN packet: its connection's line, its client's pool (one lookup), its pool's bytes (one lookup, whatever the lines).
    expect(text).toContain(
      '  chain lan {\n    ct mark and 0xf0000000 vmap { 0x10000000 : jump conn_10000000, 0x20000000 : jump conn_20000000 }\n    ip saddr vmap @clients\n    counter name meta mark and 0xf000000 map { 0x1000000 : "sent_0", 0x2000000 : "sent_1" }\n  }',
    );
    expect(text).toContain('  chain count {\n    ip daddr vmap @clients\n    counter name meta mark and 0xf000000 map { 0x1000000 : "received_0", 0x2000000 : "received_1" }\n  }');
    expect(text).toContain(`chain ${POOL1} {\n    meta mark set meta mark and 0xf0ffffff or 0x1000000\n  }`);
    expect(text).toContain('type filter hook prerouting priority mangle; policy accept;');
    expect(text).toContain('type nat hook postrouting priority srcnat; policy accept;');
    // IPv4 only: IPv6 is left alone unless lan.ipv6.mode is nat.
    expect(text).toContain('oifname "wan0" meta nfproto ipv4 masquerade');
    expect(text).not.toContain('ip6');
    expect(text).toContain('meta skgid 64101 meta mark set meta mark and 0xfffffff or 0x20000000');
    // The rule count does not depend on the clients.
    expect(rulesPerChain(renderSkeleton(intent({ '198.18.0.10': 0x01000000 })))).toEqual(rulesPerChain(text));
    expect(rulesPerChain(text)).toMatchObject({ pre: 2, lan: 3, out: 4, post: 2, count: 2, nat: 2, digest: 1 });
    // Without IPv6 nat mode the inet table's hooks let IPv6 packets go first thing: no conn or pool mark of ours on them.
    for (const hook of ['prerouting', 'output', 'postrouting']) expect(text).toMatch(new RegExp(`hook ${hook} priority mangle; policy accept;\\n    meta nfproto ipv6 return\\n`));
  });

  test('its digest changes with its rules, not with its clients', () => {
    const other = { ...intent(), lans: ['lan1'] };
    expect(skeletonDigest(renderSkeleton(intent()))).toMatch(/^[0-9a-f]{8}$/);
    expect(skeletonDigest(renderSkeleton(other))).not.toBe(skeletonDigest(renderSkeleton(intent())));
    expect(skeletonDigest(renderSkeleton(intent({ '198.18.0.10': 0x01000000 })))).toBe(skeletonDigest(renderSkeleton(intent())));
  });
});

describe('what a run loads', () => {
  const absent: NftObserved = { table: false, digest: null, clients: new Map(), counters: new Map(), hostSets: new Map(), rulesPerChain: {}, groups: [], foreignMarks: [] };

  test('no table yet: the whole table with its clients, in one transaction', () => {
    const payload = planNft(intent({ '198.18.0.10': 0x01000000 }), absent);
    expect(payload.whole).toBe(true);
    expect(payload.text.startsWith('table inet dispatcher {\n')).toBe(true);
    expect(payload.text).toContain(`add element inet dispatcher clients { 198.18.0.10 : jump ${POOL1} }`);
  });

  test('the table as wanted: only the clients that changed; a moved client is deleted and added in the same transaction', () => {
    const observed = loaded({ '198.18.0.10': POOL1, '198.18.0.11': POOL1, '198.18.0.12': POOL2 });
    expect(planNft(intent({ '198.18.0.10': 0x01000000, '198.18.0.11': 0x01000000, '198.18.0.12': 0x02000000 }), observed)).toEqual({ text: '', whole: false });
    const payload = planNft(intent({ '198.18.0.10': 0x01000000, '198.18.0.11': 0x02000000, '198.18.0.13': 0x02000000 }), observed);
    expect(payload).toEqual({
      whole: false,
      text: `delete element inet dispatcher clients { 198.18.0.11, 198.18.0.12 }\nadd element inet dispatcher clients { 198.18.0.11 : jump ${POOL2}, 198.18.0.13 : jump ${POOL2} }\n`,
    });
  });

  test("a client's bytes survive its move to another pool and a rebuilt table: its element is written again with its counter", () => {
    const counters = new Map<string, readonly [number, number]>([
      ['198.18.0.10', [12, 9000]],
      ['198.18.0.11', [3, 180]],
    ]);
    const observed = loaded({ '198.18.0.10': POOL1, '198.18.0.11': POOL1 }, renderSkeleton(intent()), new Map(), counters);
    const moved = planNft(intent({ '198.18.0.10': 0x02000000, '198.18.0.11': 0x01000000, '198.18.0.12': 0x01000000 }), observed);
    expect(moved.text).toBe(`delete element inet dispatcher clients { 198.18.0.10 }\nadd element inet dispatcher clients { 198.18.0.10 counter packets 12 bytes 9000 : jump ${POOL2}, 198.18.0.12 : jump ${POOL1} }\n`);
    const after = nftablesBackend().expected(moved);
    expect([...(after?.counters ?? [])]).toEqual([...counters]);
    // One that left starts afresh if it comes back.
    const left = nftablesBackend().expected(planNft(intent({ '198.18.0.11': 0x01000000 }), observed));
    expect([...(left?.counters ?? [])]).toEqual([['198.18.0.11', [3, 180]]]);
    const rebuilt = planNft({ ...intent({ '198.18.0.10': 0x01000000, '198.18.0.11': 0x01000000 }), lans: ['lan1'] }, observed);
    expect(rebuilt.whole).toBe(true);
    expect(rebuilt.text).toContain(`add element inet dispatcher clients { 198.18.0.10 counter packets 12 bytes 9000 : jump ${POOL1}, 198.18.0.11 counter packets 3 bytes 180 : jump ${POOL1} }`);
    // The maps count: the declaration asks for a counter per element.
    expect(renderSkeleton(intent())).toContain('  map clients {\n    type ipv4_addr : verdict\n    size 65536\n    counter\n  }');
  });

  test('what an element change leaves is known without reading it back (a rebuilt table is read)', () => {
    const backend = nftablesBackend();
    const observed = loaded({ '198.18.0.10': POOL1, '198.18.0.11': POOL1 });
    const wanted = intent({ '198.18.0.10': 0x02000000, '198.18.0.12': 0x01000000 });
    const payload = planNft(wanted, observed);
    const after = backend.expected(payload);
    expect(new Map(after?.clients)).toEqual(
      new Map([
        ['198.18.0.10', POOL2],
        ['198.18.0.12', POOL1],
      ]),
    );
    expect(planNft(wanted, after as NftObserved)).toMatchObject({ text: '' });
    expect(backend.expected(planNft(wanted, absent))).toBeNull();
  });

  test('planning against what the last loads left (the client map by its changed clients) gives what planning against the same elements read afresh gives, version after version (fast-check)', () => {
    const backend = nftablesBackend();
    const ips = Array.from({ length: 10 }, (_, i) => `198.18.1.${i + 1}`);
    const marks = [0x01000000, 0x02000000];
    const steps = fc.array(fc.array(fc.tuple(fc.constantFrom(...ips), fc.option(fc.constantFrom(...marks), { nil: null })), { maxLength: 4 }), { minLength: 1, maxLength: 8 });
    fc.assert(
      fc.property(steps, (versions) => {
        let clients = LayeredMap.of(new Map([['198.18.0.10', 0x01000000]]));
        let left = backend.expected(planNft({ ...intent(), clients }, loaded({}))) as NftObserved;
        for (const writes of versions) {
          const draft = clients.draft();
          for (const [ip, mark] of writes) {
            if (mark === null) draft.delete(ip);
            else draft.set(ip, mark);
          }
          clients = draft.done();
          const wanted = { ...intent(), clients };
          // The same elements as a fresh reading: plain maps, nothing known of how they came about.
          const read: NftObserved = { ...left, clients: new Map(left.clients), counters: new Map(left.counters) };
          const fast = planNft(wanted, left);
          const slow = planNft(wanted, read);
          const elements = (payload: typeof fast) => new Map(backend.expected(payload)?.clients);
          expect(elements(fast)).toEqual(elements(slow));
          expect(elements(fast)).toEqual(new Map([...clients].map(([ip, mark]) => [ip, poolChain(mark, 0x0f000000)])));
          // The same statements, elements in any order.
          const statements = (text: string) =>
            text
              .split('\n')
              .map((line) => line.replace(/\{ (.*) \}/, (_, inner: string) => `{ ${inner.split(', ').sort().join(', ')} }`))
              .sort();
          expect(statements(fast.text)).toEqual(statements(slow.text));
          left = backend.expected(fast) as NftObserved;
        }
      }),
      { numRuns: 100 },
    );
  });

  test("a policy's host set: its clients are elements, loaded with the table and then changed element by element, never by a rebuild", () => {
    const withHosts = (hosts: string[]): NetfilterIntent => ({
      ...intent(),
      choose: { policies: [{ name: 'by-mac', match: { sources: { networks: [], hosts }, destinations: [], protocols: [], ports: [], dscp: [] }, action: { kind: 'keep' } }], otherwise: { kind: 'keep' } },
    });
    const whole = planNft(withHosts(['198.18.0.11/32']), absent);
    expect(whole.text).toContain('  set p1_hosts {\n    type ipv4_addr\n  }');
    expect(whole.text).toContain('add element inet dispatcher p1_hosts { 198.18.0.11 }');
    const skeleton = renderSkeleton(withHosts([]));
    const observed = loaded({}, skeleton, new Map([['p1_hosts', new Set(['198.18.0.11'])]]));
    expect(planNft(withHosts(['198.18.0.11/32']), observed)).toEqual({ text: '', whole: false });
    expect(planNft(withHosts(['198.18.0.12/32']), observed)).toEqual({
      whole: false,
      text: 'delete element inet dispatcher p1_hosts { 198.18.0.11 }\nadd element inet dispatcher p1_hosts { 198.18.0.12 }\n',
    });
  });

  test('rules changed (by a new config, or by other software emptying a chain): the table is rebuilt whole, atomically', () => {
    const changed = planNft({ ...intent(), lans: ['lan1'] }, loaded({}));
    expect(changed.whole).toBe(true);
    expect(changed.text.startsWith('table inet dispatcher\ndelete table inet dispatcher\ntable inet dispatcher {\n')).toBe(true);
    const emptied = { ...loaded({}), rulesPerChain: { ...loaded({}).rulesPerChain, pre: 0 } };
    expect(planNft(intent(), emptied).whole).toBe(true);
  });

  test('flush: the table goes; nothing to do without one', () => {
    expect(planNft(null, loaded({}))).toMatchObject({ text: 'delete table inet dispatcher\n', whole: true });
    expect(planNft(null, absent).text).toBe('');
  });
});

describe('reading the ruleset back', () => {
  const skeleton = renderSkeleton(intent());
  const digest = skeletonDigest(skeleton);
  const ruleset = JSON.stringify({
    nftables: [
      { metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } },
      { table: { family: 'inet', name: 'dispatcher', handle: 1 } },
      {
        map: {
          family: 'inet',
          name: 'clients',
          table: 'dispatcher',
          type: 'ipv4_addr',
          handle: 10,
          map: 'verdict',
          size: 65536,
          elem: [
            [{ elem: { val: '198.18.0.10', counter: { packets: 4, bytes: 336 } } }, { jump: { target: POOL1 } }],
            [{ elem: { val: '198.18.0.11', counter: { packets: 0, bytes: 0 } } }, { jump: { target: POOL2 } }],
          ],
          stmt: [{ counter: null }],
        },
      },
      { chain: { family: 'inet', table: 'dispatcher', name: 'pre', handle: 5, type: 'filter', hook: 'prerouting', prio: -150, policy: 'accept' } },
      { rule: { family: 'inet', table: 'dispatcher', chain: 'pre', handle: 20, expr: [{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'lan0' } }] } },
      { chain: { family: 'inet', table: 'dispatcher', name: 'out', handle: 6 } },
      {
        rule: {
          family: 'inet',
          table: 'dispatcher',
          chain: 'out',
          handle: 21,
          expr: [{ match: { op: '==', left: { meta: { key: 'skgid' } }, right: 64100 } }, { mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ '&': [{ meta: { key: 'mark' } }, 0x0fffffff] }, 0x10000000] } } }],
        },
      },
      { chain: { family: 'inet', table: 'dispatcher', name: 'digest', handle: 9 } },
      { rule: { family: 'inet', table: 'dispatcher', chain: 'digest', handle: 30, comment: `dispatcher ${digest}`, expr: [{ counter: { packets: 0, bytes: 0 } }] } },
      // Tailscale's own table marks with 0xff0000; another program's rule sets the whole mark.
      { rule: { family: 'inet', table: 'ts', chain: 'pre', handle: 3, expr: [{ mangle: { key: { meta: { key: 'mark' } }, value: { '|': [{ '&': [{ meta: { key: 'mark' } }, 0xff00ffff] }, 0x40000] } } }] } },
      { rule: { family: 'ip', table: 'mangle', chain: 'PREROUTING', handle: 4, expr: [{ mangle: { key: { ct: { key: 'mark' } }, value: 7 } }] } },
      // Our iptables backend's chains (a switch of backend) are ours, not a collision.
      { rule: { family: 'ip', table: 'mangle', chain: 'DISPATCHER-PRE', handle: 5, expr: [{ mangle: { key: { meta: { key: 'mark' } }, value: 1 } }] } },
    ],
  });

  test('our table: digest, rules per chain, clients, socket groups; other software: the mark bits its rules touch', () => {
    const observed = parseNftRuleset(ruleset, { family: 'inet', name: 'dispatcher' });
    expect(observed).toMatchObject({ table: true, digest, groups: [64100], rulesPerChain: { pre: 1, out: 1, digest: 1 } });
    expect([...observed.clients]).toEqual([
      ['198.18.0.10', POOL1],
      ['198.18.0.11', POOL2],
    ]);
    // Only the elements that counted something are kept (what a rewrite carries over).
    expect([...observed.counters]).toEqual([['198.18.0.10', [4, 336]]]);
    expect(observed.foreignMarks).toEqual([
      { where: 'inet ts pre', bits: 0x00ff0000 },
      { where: 'ip mangle PREROUTING', bits: 0xffffffff },
    ]);
    const backend = nftablesBackend();
    expect([...backend.classified(observed)]).toEqual([
      ['198.18.0.10', { mark: 0x01000000, mask: 0x0f000000 }],
      ['198.18.0.11', { mark: 0x02000000, mask: 0x0f000000 }],
    ]);
    expect(backend.groupMarked(observed, 64100)).toBe(true);
    const collisions = backend.collisions({ marks: { mask: 0xff000000 } } as never, observed);
    expect(collisions.map((c) => c.problem)).toEqual([expect.stringContaining('ip mangle PREROUTING uses mark bits 0xff000000')]);
  });

  test('mark bits of the forms nft prints: set, and/or, xor, masked match', () => {
    const mark = { meta: { key: 'mark' } };
    expect(markBitsOfRule([{ mangle: { key: mark, value: 0x1 } }])).toBe(0xffffffff);
    expect(markBitsOfRule([{ mangle: { key: mark, value: { '|': [mark, 0x100] } } }])).toBe(0x100);
    expect(markBitsOfRule([{ mangle: { key: mark, value: { '^': [{ '&': [mark, 0xfffffff0] }, 0x1] } } }])).toBe(0xf);
    expect(markBitsOfRule([{ match: { op: '==', left: { '&': [mark, 0xf00] }, right: 0x100 } }])).toBe(0xf00);
    expect(markBitsOfRule([{ match: { op: '==', left: { meta: { key: 'iifname' } }, right: 'eth0' } }])).toBe(0);
  });

  test('not JSON is a parse error naming the command', () => {
    expect(() => parseNftRuleset('{', { family: 'inet', name: 'dispatcher' })).toThrow(/nft -j list ruleset/);
  });
});

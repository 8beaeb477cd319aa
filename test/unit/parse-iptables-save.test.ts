import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { joinArgs, parseIptablesSave, ParseError, tokenize } from '../../src/parse/iptables-save.js';
import { fixture } from '../helpers/fixtures.js';

describe('iptables-save parser', () => {
  test('reads tables, chains and rules of a captured dump into JSON', () => {
    const tables = parseIptablesSave(fixture('iptables-save.txt'));
    expect(tables.map((t) => t.name)).toEqual(['mangle', 'nat']);
    const mangle = tables[0]!;
    expect(mangle.chains.find((c) => c.name === 'PREROUTING')).toEqual({ name: 'PREROUTING', policy: 'ACCEPT', counters: [0, 0] });
    expect(mangle.chains.find((c) => c.name === 'DISPATCHER-PRE')?.policy).toBeNull();
    const setRule = mangle.rules.find((r) => r.spec.jump === 'SET' && r.chain === 'DISPATCHER-PRE');
    expect(setRule).toMatchObject({
      chain: 'DISPATCHER-PRE',
      args: ['-i', 'lan0', '-j', 'SET', '--map-set', 'dispatcher-clients', 'src', '--map-mark'],
      spec: { inInterface: { value: 'lan0', negated: false }, jump: 'SET', targetOptions: ['--map-set', 'dispatcher-clients', 'src', '--map-mark'] },
    });
    const post = mangle.rules.filter((r) => r.chain === 'DISPATCHER-POST');
    expect(post[0]?.spec).toEqual({
      outInterface: { value: 'ppp0', negated: false },
      matches: [{ module: 'connmark', options: ['--mark', '0x0/0xf0000000'] }],
      jump: 'CONNMARK',
      targetOptions: ['--set-xmark', '0x10000000/0xf0000000'],
    });
    expect(tables[1]!.rules.filter((r) => r.spec.jump === 'MASQUERADE').map((r) => r.spec.outInterface?.value)).toEqual(['ppp0', 'ppp1', 'wan0']);
  });

  test('reads per-rule counters from iptables-save -c', () => {
    const tables = parseIptablesSave(fixture('iptables-save-counters.txt'));
    const hook = tables[0]!.rules.find((r) => r.chain === 'PREROUTING');
    expect(hook?.counters).toEqual([expect.any(Number), expect.any(Number)]);
    expect(hook?.args).toEqual(['-j', 'DISPATCHER-PRE']);
  });

  test('negation, goto, quoted comments and options outside matches', () => {
    const text = ['*filter', ':INPUT ACCEPT [0:0]', ':OTHER - [0:0]', '-A INPUT ! -s 10.0.0.0/8 -p tcp -m tcp ! --dport 22 -m comment --comment "keep \\"me\\" here" -j ACCEPT', '-A INPUT -f -g OTHER', 'COMMIT'].join('\n');
    const [table] = parseIptablesSave(text);
    const [first, second] = table!.rules;
    expect(first!.spec.source).toEqual({ value: '10.0.0.0/8', negated: true });
    expect(first!.spec.protocol).toEqual({ value: 'tcp', negated: false });
    expect(first!.spec.matches).toEqual([
      { module: 'tcp', options: ['!', '--dport', '22'] },
      { module: 'comment', options: ['--comment', 'keep "me" here'] },
    ]);
    expect(second!.spec.goto).toBe('OTHER');
    expect(second!.spec.matches).toEqual([{ module: '', options: ['-f'] }]);
  });

  test('a dump that is not iptables-save output is a ParseError with the line', () => {
    expect(() => parseIptablesSave('*mangle\n-A NOCHAIN -j ACCEPT\nCOMMIT\n')).toThrow(/line 2: rule for undeclared chain NOCHAIN/);
    expect(() => parseIptablesSave('*mangle\n:X - [0:0]\n')).toThrow(ParseError);
    expect(() => parseIptablesSave('-A X\n')).toThrow(/content outside a table/);
    expect(() => parseIptablesSave('*nat\n:X - [0:0]\n-A X -m comment --comment "open\nCOMMIT\n')).toThrow(/unterminated quote/);
  });

  test('tokenize and joinArgs round-trip any argument list', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes('\n')),
          { maxLength: 8 },
        ),
        (args) => {
          expect(tokenize(joinArgs(args))).toEqual(args);
        },
      ),
    );
  });

  test('never fails except with a ParseError', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom('*mangle', ':A - [0:0]', ':B ACCEPT [1:2]', '-A A -j B', '-A A ! -i x -m mark --mark 0x1', 'COMMIT', '# c', '[1:2] -A B -j A', '"', 'junk'), { maxLength: 12 }), (lines) => {
        try {
          parseIptablesSave(lines.join('\n'));
        } catch (error) {
          expect(error).toBeInstanceOf(ParseError);
        }
      }),
    );
  });
});

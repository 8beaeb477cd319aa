import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { ParseError } from '../../src/parse/iptables-save.js';
import { parseIpsetSave } from '../../src/parse/ipset.js';
import { fixture } from '../helpers/fixtures.js';

describe('ipset save parser', () => {
  test('reads the set header and every member with its counters and skbmark', () => {
    const dump = parseIpsetSave(fixture('ipset-save.txt'));
    expect(dump.sets).toEqual([
      {
        name: 'dispatcher-clients',
        type: 'hash:ip',
        options: { family: 'inet', hashsize: '1024', maxelem: '65536', counters: true, skbinfo: true, bucketsize: '12', initval: expect.stringMatching(/^0x/) },
      },
    ]);
    expect(dump.entries).toHaveLength(8);
    expect(dump.entries.find((e) => e.member === '198.18.0.13')).toEqual({ set: 'dispatcher-clients', member: '198.18.0.13', options: { packets: '59', bytes: '4956', skbmark: '0x3000000/0xf000000' } });
  });

  test('flags and comments with spaces', () => {
    const dump = parseIpsetSave('create s hash:ip family inet counters comment\nadd s 10.0.0.1 packets 5 bytes 300 comment "two words"\n');
    expect(dump.sets[0]?.options).toEqual({ family: 'inet', counters: true, comment: true });
    expect(dump.entries[0]?.options).toEqual({ packets: '5', bytes: '300', comment: 'two words' });
  });

  test('unknown verbs and truncated lines are ParseErrors', () => {
    expect(() => parseIpsetSave('flush s\n')).toThrow(/line 1: incomplete/);
    expect(() => parseIpsetSave('swap a b\n')).toThrow(/unknown verb "swap"/);
    expect(() => parseIpsetSave('create s hash:ip maxelem\n')).toThrow(/option maxelem has no value/);
  });

  test('never fails except with a ParseError', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => {
        try {
          parseIpsetSave(text);
        } catch (error) {
          expect(error).toBeInstanceOf(ParseError);
        }
      }),
    );
  });
});

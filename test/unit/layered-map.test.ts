// The layered map (core/layered-map.ts): every version reads as a Map with
// the same writes would, older versions never change, and a version says
// which keys changed since one it was made from.

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { changedKeys, Derivation, LayeredMap } from '../../src/core/layered-map.js';

const KEYS = Array.from({ length: 12 }, (_, i) => `k${i}`);

type Step = { kind: 'set'; key: string; value: number } | { kind: 'delete'; key: string } | { kind: 'clear' } | { kind: 'version' };

const step = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), key: fc.constantFrom(...KEYS), value: fc.integer({ min: 0, max: 3 }) }),
  fc.record({ kind: fc.constant('delete' as const), key: fc.constantFrom(...KEYS) }),
  fc.record({ kind: fc.constant('clear' as const) }),
  fc.record({ kind: fc.constant('version' as const) }),
);

/** The map read every way a reader does (entries, keys, values, forEach, get, has, size) as plain data. */
function read(map: ReadonlyMap<string, number>): unknown {
  const forEach: [string, number][] = [];
  map.forEach((value, key) => {
    forEach.push([key, value]);
  });
  const sorted = <T>(items: T[]) => items.map((item) => JSON.stringify(item)).sort();
  return {
    entries: sorted([...map]),
    keys: sorted([...map.keys()]),
    values: sorted([...map.values()]),
    forEach: sorted(forEach),
    got: KEYS.map((key) => [map.has(key), map.get(key)]),
    size: map.size,
  };
}

describe('layered map', () => {
  test('every version reads as a Map given the same writes; versions already made never change; the lineage names every key that differs', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom(...KEYS), fc.integer({ min: 0, max: 3 }))), fc.array(step, { maxLength: 40 }), (start, steps: Step[]) => {
        let version = LayeredMap.of(new Map(start));
        let model = new Map(start);
        let draft = version.draft();
        let written = new Set<string>();
        const versions: { map: LayeredMap<string, number>; model: unknown }[] = [{ map: version, model: read(model) }];
        for (const s of steps) {
          if (s.kind === 'set') {
            draft.set(s.key, s.value);
            model.set(s.key, s.value);
            written.add(s.key);
          } else if (s.kind === 'delete') {
            if (model.has(s.key)) written.add(s.key);
            expect(draft.delete(s.key)).toBe(model.delete(s.key));
          } else if (s.kind === 'clear') {
            for (const key of model.keys()) written.add(key);
            draft.clear();
            model.clear();
          } else {
            const next = draft.done();
            if (written.size === 0) expect(next).toBe(version);
            else {
              // Every key that differs is named (one written and put back may be too).
              const changed = next.changedSince(version, 1, Number.POSITIVE_INFINITY) ?? new Set<string>();
              for (const key of KEYS) if (next.get(key) !== version.get(key) || next.has(key) !== version.has(key)) expect(changed.has(key)).toBe(true);
              for (const key of changed) expect(written.has(key)).toBe(true);
            }
            version = next;
            model = new Map(model);
            versions.push({ map: version, model: read(model) });
            draft = version.draft();
            written = new Set();
          }
          expect(draft.size).toBe(model.size);
          expect(new Map(draft.entries())).toEqual(model);
        }
        for (const { map, model: was } of versions) expect(read(map)).toEqual(was);
      }),
      { numRuns: 300 },
    );
  });

  test('a long run of small versions folds its top layer into a new base, and still reads and names its changes', () => {
    let version = LayeredMap.of(Array.from({ length: 100 }, (_, i): [string, number] => [`c${i}`, i]));
    const first = version;
    for (let i = 0; i < 3000; i++) {
      const draft = version.draft();
      draft.set(`n${i}`, i);
      if (i % 3 === 0) draft.delete(`c${i % 100}`);
      version = draft.done();
    }
    const model = new Map(Array.from({ length: 100 }, (_, i): [string, number] => [`c${i}`, i]));
    for (let i = 0; i < 3000; i++) {
      model.set(`n${i}`, i);
      if (i % 3 === 0) model.delete(`c${i % 100}`);
    }
    expect(new Map(version)).toEqual(model);
    expect(version.size).toBe(model.size);
    // Many versions back: not named (the caller compares whole); one back: the one key.
    expect(version.changedSince(first, 8, 1000)).toBeNull();
    const next = version.draft().set('x', 1).done();
    expect(changedKeys(next, version)).toEqual(new Set(['x']));
    // Another map altogether, or a plain Map: no lineage.
    expect(changedKeys(next, new Map(next))).toBeNull();
    expect(changedKeys(new Map(next), version)).toBeNull();
  });

  test('of() copies a plain Map (its owner may write it again) and hands a layered map back as it is', () => {
    const plain = new Map([['a', 1]]);
    const layered = LayeredMap.of(plain);
    plain.set('a', 2);
    expect(layered.get('a')).toBe(1);
    expect(LayeredMap.of(layered)).toBe(layered);
  });
});

describe('derivation', () => {
  // What is derived here: the sum of the values, carried by the changed keys.
  const calls = { whole: 0, carry: 0 };
  const sums = () =>
    new Derivation<string, number, number>(
      (map) => {
        calls.whole += 1;
        let sum = 0;
        for (const value of map.values()) sum += value;
        return sum;
      },
      (sum, keys, before, after) => {
        calls.carry += 1;
        let next = sum;
        for (const key of keys) next += (after.get(key) ?? 0) - (before.get(key) ?? 0);
        return next;
      },
    );

  test('the same map gives the same value; a later version is carried by its changed keys, over several versions; another key or map derives whole', () => {
    const sum = sums();
    calls.whole = calls.carry = 0;
    const first = LayeredMap.of(
      new Map([
        ['a', 1],
        ['b', 2],
      ]),
    );
    expect(sum.of(first)).toBe(3);
    expect(sum.of(first)).toBe(3);
    expect(calls).toEqual({ whole: 1, carry: 0 });
    const second = first.draft().set('a', 5).done();
    const third = second.draft().set('c', 1).done();
    const fourth = third.draft();
    fourth.delete('b');
    const last = fourth.done();
    // Carried from `first` over three versions it was not asked about.
    expect(sum.of(last)).toBe(6);
    expect(calls).toEqual({ whole: 1, carry: 1 });
    expect(sum.of(last, 'other')).toBe(6);
    expect(sum.of(LayeredMap.of(new Map([['z', 9]])), 'other')).toBe(9);
    expect(calls).toEqual({ whole: 3, carry: 1 });
  });

  test('carried or whole, the value is the same, whatever the versions (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(fc.tuple(fc.constantFrom(...KEYS), fc.option(fc.integer({ min: 0, max: 9 }), { nil: undefined })), { maxLength: 6 }), { maxLength: 12 }),
        fc.array(fc.boolean(), { maxLength: 12 }),
        (versions, asked) => {
          const sum = sums();
          let map = LayeredMap.of(new Map<string, number>());
          for (const [i, writes] of versions.entries()) {
            const draft = map.draft();
            for (const [key, value] of writes) {
              if (value === undefined) draft.delete(key);
              else draft.set(key, value);
            }
            map = draft.done();
            if (asked[i] ?? true) expect(sum.of(map)).toBe([...map.values()].reduce((a, b) => a + b, 0));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});

import { describe, expect, test } from '@jest/globals';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { detached, interner } from '../../src/parse/detached.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes of heap that what `make` returns keeps alive once everything else it made is dropped (made in a frame of its own: no temporary of the caller's holds the rest). */
function heldBy<T>(make: () => T): { held: number; kept: T } {
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept = make();
  gc();
  return { held: process.memoryUsage().heapUsed - before, kept };
}

/** A piece cut (by `cut`) from 8 MB of output. */
function cutFromOutput(cut: (piece: string) => string): string {
  const output = Array.from({ length: 120_000 }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255} dev lan0 lladdr 02:be:00:00:00:01 REACHABLE`).join('\n');
  const at = output.indexOf('198.18.77.');
  return cut(output.slice(at, at + 13));
}

/** 50,000 equal strings, each its own (as a parser cuts them), through `keep`. */
function equalStrings(keep: (text: string) => string): string[] {
  return Array.from({ length: 50_000 }, () => keep(['lan0-lan0', '-lan0-'].join('')));
}

describe('detached strings', () => {
  test('a detached cut holds nothing of the output alive; a plain cut (V8 makes a view of 13 characters or more) holds all of it', () => {
    const detachedCut = heldBy(() => cutFromOutput(detached));
    expect(detachedCut.kept).toBe('198.18.77.0 d');
    expect(detachedCut.held).toBeLessThan(1_000_000);
    expect(heldBy(() => cutFromOutput((piece) => piece)).held).toBeGreaterThan(6_000_000);
  });

  test('an interner keeps one string per value: 50,000 equal strings kept through it cost their array, not 50,000 strings; past its limit it starts afresh', () => {
    // The array alone is 50,000 references (4 bytes each with V8’s compressed pointers, in a backing store grown as it filled); each string of its own adds about 28 bytes.
    const interned = heldBy(() => equalStrings(interner()));
    expect(interned.kept.every((text) => text === 'lan0-lan0-lan0-')).toBe(true);
    expect(interned.held).toBeLessThan(1_000_000);
    expect(heldBy(() => equalStrings((text) => text)).held).toBeGreaterThan(interned.held + 1_000_000);
    // Past its limit it starts afresh: 100,000 distinct values (input it was not made for) leave at most its limit behind.
    const bounded = heldBy(() => {
      const intern = interner(64);
      for (let i = 0; i < 100_000; i++) intern(`lan${i}-lan0-lan0-`);
      return intern;
    });
    expect(bounded.kept('lan7-lan0-lan0-')).toBe('lan7-lan0-lan0-');
    expect(bounded.held).toBeLessThan(500_000);
  });
});

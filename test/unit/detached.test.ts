import { describe, expect, test } from '@jest/globals';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { detached, interner } from '../../src/parse/detached.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A piece cut (by `cut`) from 8 MB of output, made in a frame of its own (no temporary of the caller's holds the output). */
function cutFromOutput(cut: (piece: string) => string): string {
  const output = Array.from({ length: 120_000 }, (_, i) => `198.18.${(i >> 8) & 255}.${i & 255} dev lan0 lladdr 02:be:00:00:00:01 REACHABLE`).join('\n');
  const at = output.indexOf('198.18.77.');
  return cut(output.slice(at, at + 13));
}

/** Bytes of heap that piece keeps alive once the output is dropped. */
function heldBy(cut: (piece: string) => string): { held: number; piece: string } {
  gc();
  const before = process.memoryUsage().heapUsed;
  const piece = cutFromOutput(cut);
  gc();
  return { held: process.memoryUsage().heapUsed - before, piece };
}

describe('detached strings', () => {
  test('a detached cut holds nothing of the output alive; a plain cut (V8 makes a view of 13 characters or more) holds all of it', () => {
    const kept = heldBy(detached);
    expect(kept.piece).toBe('198.18.77.0 d');
    expect(kept.held).toBeLessThan(1_000_000);
    expect(heldBy((piece) => piece).held).toBeGreaterThan(6_000_000);
  });

  test('an interner gives one string per value, and starts afresh past its limit', () => {
    const intern = interner(2);
    const first = intern('lan0-'.repeat(3));
    expect(intern(`lan0-lan0-${'lan0-'}`)).toBe(first);
    expect(intern('lan1')).toBe('lan1');
    // Full: the next value clears it, so the first value's string is made again (equal, not the same object).
    expect(intern('lan2')).toBe('lan2');
    const again = intern('lan0-'.repeat(3));
    expect(again).toBe('lan0-lan0-lan0-');
  });
});

// Names of what runs create outside themselves carry their owner's pid
// (core/run-names.ts), so that a later run can remove what a dead one left
// and never touch a live one's.

import { describe, expect, test } from '@jest/globals';
import { isLeftover, ownerOf, runName } from '../../src/core/run-names.js';

describe('run names', () => {
  test('carry the tag, the owner and the run', () => {
    expect(runName('lab', 4242, 1)).toBe('dsplab-4242-1-');
    expect(runName('', 7, 3)).toBe('dsp-7-3-');
    expect(() => runName('Lab-1', 1, 1)).toThrow(/lower-case letters/);
  });

  test('the owner is read back from a namespace or directory name; other names are not ours', () => {
    expect(ownerOf('dsplab-4242-1-gw')).toBe(4242);
    expect(ownerOf('dsp-7-3-c12')).toBe(7);
    expect(ownerOf('dspdoctor-99-1-check')).toBe(99);
    expect(ownerOf('dspcoex-123-2-AbC9xZ')).toBe(123);
    for (const other of ['dsplab-4242', 'dsplab-0-1-gw', 'dsp-x-1-gw', 'dispatcher-lab-Ab12', 'xdsplab-1-1-gw', 'DSPlab-1-1-gw', 'netns1', '']) expect([other, ownerOf(other)]).toEqual([other, null]);
  });

  test('left over when the owner is gone, or when the process now holding its pid started after the thing was made', () => {
    const made = Date.parse('2026-11-29T10:00:00Z');
    expect(isLeftover(made, null)).toBe(true);
    // The owner started before it made the thing: alive, keep.
    expect(isLeftover(made, made - 60_000)).toBe(false);
    // Start times are known to 1/100 s: a thing made in the owner's first instant is kept.
    expect(isLeftover(made, made + 10)).toBe(false);
    // The pid was reused by a process that started later: the owner is gone.
    expect(isLeftover(made, made + 5_000)).toBe(true);
  });
});

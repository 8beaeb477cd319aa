// Building blocks of the config schema: zod types whose every failure speaks
// the operator's language (the field's problem and its fix), and whose input
// side stays representable in JSON Schema (editors check the YAML with it).
//
// zod carries only a message string per issue, so a problem and its fix travel
// encoded in it (say) and are decoded again when issues become ConfigProblems
// (heard, in src/config/issues.ts). Unknown keys travel the same way, with the
// "did you mean" suggestion already worked out from the mapping's own keys.

import { z } from 'zod';
import { formatDurationMs, parseDurationMs } from '../core/duration.js';
import { INTERFACE_NAME } from '../core/names.js';

/** What one message says: a problem and its fix, optionally about a key below the issue's path. */
export interface Said {
  readonly key?: string;
  readonly problem: string;
  readonly fix: string;
}

export function say(problem: string, fix: string): string {
  return JSON.stringify([{ problem, fix }] satisfies Said[]);
}

/** The problems a message built by say() (or by mapping() for unknown keys) holds; null for any other message. */
export function heard(message: string): Said[] | null {
  try {
    const value: unknown = JSON.parse(message);
    const ok = Array.isArray(value) && value.every((s) => typeof s?.problem === 'string' && typeof s?.fix === 'string');
    return ok ? (value as Said[]) : null;
  } catch {
    return null;
  }
}

/** A value as the operator wrote it, short enough for a message. */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

interface Issue {
  readonly input?: unknown;
}

/** zod's error option: "is missing" when absent, else the field's own problem; always with a fix. */
export function fails(problem: (input: unknown) => string, fix: string, missingFix = fix): { error: (issue: Issue) => string } {
  return { error: (issue) => (issue.input === undefined ? say('is missing', missingFix) : say(problem(issue.input), fix)) };
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

function unknownKeys(keys: readonly string[], known: readonly string[]): string {
  return JSON.stringify(
    keys.map((key): Said => {
      const close = key.length <= 64 ? known.find((k) => editDistance(k, key) <= 2) : undefined;
      return { key, problem: 'unknown key', fix: close ? `did you mean "${close}"?` : `remove it; the keys allowed here are: ${known.join(', ')}` };
    }),
  );
}

/**
 * A YAML mapping with exactly these keys: anything else is an unknown key with
 * a suggestion; a non-mapping says what it is. `example` shows how to write it.
 */
export function mapping<Shape extends z.core.$ZodLooseShape>(shape: Shape, example: string, missingFix?: string) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code === 'unrecognized_keys') return unknownKeys(issue.keys, known);
      if (issue.input === undefined) return say('is missing', missingFix ?? example);
      return say(`must be a mapping, not ${describe(issue.input)}`, example);
    },
  });
}

/** A YAML list of `item`; `empty` (when given) refuses an empty list with that fix. */
export function list<Item extends z.ZodType>(item: Item, fix: string, options: { missing?: string; empty?: string } = {}) {
  const base = z.array(
    item,
    fails((input) => `must be a list, not ${describe(input)}`, fix, options.missing ?? fix),
  );
  return options.empty === undefined ? base : base.min(1, { error: () => say('is empty', options.empty as string) });
}

/**
 * Text, checked by `valid`; `problem` says what is wrong with a value that is
 * not. A pattern is also written into the JSON Schema, so editors check it too.
 */
export function text(valid: RegExp | ((value: string) => boolean), problem: (input: unknown) => string, fix: string, missingFix?: string) {
  const said = fails(problem, fix, missingFix);
  return valid instanceof RegExp ? z.string(said).regex(valid, said) : z.string(said).refine(valid, said);
}

/** A list entry that must be text (its own check comes after). */
export function listText(fix: string) {
  return z.string(fails((input) => `must be text, not ${describe(input)}`, fix));
}

export function wholeNumber(min: number, max: number, fix: string) {
  const said = fails((input) => `must be a whole number from ${min} to ${max}, not ${describe(input)}`, fix);
  return z.number(said).int(said).min(min, said).max(max, said);
}

const DURATION_TEXT = /^(0|[0-9]+(\.[0-9]+)?(ms|s|m|h|d))$/;

/**
 * A duration as written ("500ms", "30s", "5m", "24h", "7d", or 0), in
 * milliseconds from min to max. `problem` replaces the usual wording, and
 * `valid` the range check, for durations with a gap (a minute or more, or 0).
 */
export function duration(minMs: number, maxMs: number, fix: string, special?: { problem: (input: unknown) => string; valid: (ms: number) => boolean }) {
  const words = special?.problem ?? ((input: unknown) => `${describe(input)} is not a duration from ${formatDurationMs(minMs)} to ${formatDurationMs(maxMs)}`);
  const valid = special?.valid ?? ((ms: number) => ms >= minMs && ms <= maxMs);
  const said = fails(words, fix);
  return z.union([z.string(said).regex(DURATION_TEXT, said), z.literal(0, said)], said).transform((value, ctx) => {
    const ms = typeof value === 'string' ? parseDurationMs(value) : 0;
    if (ms === null || !valid(ms)) {
      ctx.issues.push({ code: 'custom', message: say(words(value), fix), input: value });
      return z.NEVER;
    }
    return ms;
  });
}

/** "50%" (or a bare number) above 0 and up to 100, as a number. */
export function percent() {
  const said = fails((input) => `${describe(input)} is not a percentage above 0 and up to 100`, 'write it like "50%"');
  return z.union([z.string(said).regex(/^[0-9]+(\.[0-9]+)?%$/, said), z.number(said).gt(0, said).max(100, said)], said).transform((value, ctx) => {
    const number = typeof value === 'number' ? value : Number(value.slice(0, -1));
    if (!(number > 0 && number <= 100)) {
      ctx.issues.push({ code: 'custom', message: say(`${describe(value)} is not a percentage above 0 and up to 100`, 'write it like "50%"'), input: value });
      return z.NEVER;
    }
    return number;
  });
}

/** An absolute path; `example` is shown in the fix. */
export function absolutePath(example: string, missingFix?: string) {
  const said = fails((input) => `must be an absolute path, not ${describe(input)}`, `write a path such as ${example}`, missingFix);
  return z.string(said).regex(/^\/[^\0\n]*$/, said);
}

/** An exact kernel interface name (no wildcards). */
export function interfaceName(missingFix: string) {
  const said = fails((input) => `${describe(input)} is not a valid interface name`, 'use the exact kernel name: 1–15 letters, digits, "_", "-" or "." (no "+" wildcards)', missingFix);
  return z.string(said).regex(INTERFACE_NAME, said);
}

/** Adds a problem for each entry of a list that repeats an earlier one. */
export function noRepeats<T>(problem: (item: T) => string, fix: string, key: (item: T) => unknown = (item) => item) {
  return (items: readonly T[], ctx: z.core.$RefinementCtx<T[]>): void => {
    const seen = new Set<unknown>();
    items.forEach((item, i) => {
      const k = key(item);
      if (k !== null && seen.has(k)) ctx.addIssue({ code: 'custom', path: [i], message: say(problem(item), fix), input: item });
      if (k !== null) seen.add(k);
    });
  };
}

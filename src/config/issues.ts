// zod's issues as the operator reads them: one ConfigProblem per problem,
// named by its field path as written in the YAML (uplinks[1].probe.interval).

import type { z } from 'zod';
import { excerpt } from '../core/names.js';
import type { ConfigProblem } from '../model/errors.js';
import { heard } from '../schema/fields.js';

/** uplinks[1].probe.interval; the document itself is "(top level)". */
export function fieldOf(path: readonly PropertyKey[]): string {
  const text = path.reduce<string>((field, key) => (typeof key === 'number' ? `${field}[${key}]` : field ? `${field}.${String(key)}` : String(key)), '');
  return text || '(top level)';
}

/** A key the operator wrote that is not a plain word (empty, control characters, very long) is shown quoted and cut. */
function shownKey(key: string): string {
  return /^[A-Za-z0-9_-]{1,64}$/.test(key) ? key : excerpt(key);
}

export function problemsOf(issues: readonly z.core.$ZodIssue[]): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const seen = new Set<string>();
  for (const issue of issues) {
    // Every field of the schema says its problem and fix (src/schema/fields.ts); anything else is still reported.
    const said = heard(issue.message) ?? [{ problem: issue.message, fix: 'see pools/README.md for what this key takes' }];
    for (const { key, problem, fix } of said) {
      const base = fieldOf(issue.path);
      const field = key === undefined ? base : base === '(top level)' ? shownKey(key) : `${base}.${shownKey(key)}`;
      // A value failing two checks of one field (e.g. not whole and below the minimum) is one problem.
      const id = `${field}\n${problem}`;
      if (seen.has(id)) continue;
      seen.add(id);
      problems.push({ field, problem, fix });
    }
  }
  return problems;
}

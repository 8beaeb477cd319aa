// Pure verification of a parsed config document (VyOS's "verify" step): every
// problem is collected with its field and the fix, so the operator sees all of
// them at once, and nothing touches the kernel until the whole config passes.
// The document's shape and defaults are the schema's (src/schema/config.ts);
// what spans several fields is checked by src/config/checks.ts on every part
// that parsed, even when other parts did not.

import type { z } from 'zod';
import type { Config } from '../model/config.js';
import { ConfigError } from '../model/errors.js';
import { configSchema, policyVia, SECTIONS, staticRouteSchema, uplinkSchema } from '../schema/config.js';
import { checkConfig, type CheckOptions, type Parsed } from './checks.js';
import { problemsOf } from './issues.js';

export type VerifyOptions = CheckOptions;

type Doc = Record<string, unknown>;

function isObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A key written with no value (`hold:`) means "the default", as if it were not there; null inside a list stays an error. */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isObject(value)) return value;
  return Object.fromEntries(Object.entries(value).flatMap(([key, v]) => (v === null ? [] : [[key, withoutNulls(v)]])));
}

function parsedAs<S extends z.ZodType>(schema: S, value: unknown): z.output<S> | undefined {
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

function items(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

/** Each section (and each uplink and route) on its own, so one bad part does not hide the checks of the others. */
function parsedParts(doc: Doc): Parsed {
  const marks = isObject(doc.marks) ? doc.marks : {};
  const uplinks = items(doc.uplinks).flatMap((item, index) => {
    const uplink = parsedAs(uplinkSchema, item);
    return uplink ? [{ index, uplink }] : [];
  });
  const via = items(doc.static_routes).flatMap((route, index) => {
    const names = isObject(route) ? parsedAs(staticRouteSchema.shape.via, route.via) : undefined;
    return names ? [{ index, names }] : [];
  });
  const policyVias = items(doc.policies).flatMap((policy, index) => {
    const names = isObject(policy) ? parsedAs(policyVia, policy.via) : undefined;
    return names ? [{ index, names }] : [];
  });
  const lan = parsedAs(SECTIONS.lan, doc.lan);
  const health = parsedAs(SECTIONS.health, doc.health);
  const ddns = parsedAs(SECTIONS.ddns, doc.ddns);
  const mask = parsedAs(SECTIONS.marks, doc.marks)?.mask;
  const schedule = parsedAs(SECTIONS.scan, doc.scan)?.schedule;
  const rebalance = parsedAs(SECTIONS.balance, doc.balance)?.rebalance;
  const ha = parsedAs(SECTIONS.ha, doc.ha);
  return {
    haWritten: doc.ha !== undefined,
    uplinks,
    via,
    policyVias,
    maskWritten: marks.mask !== undefined,
    ...(lan ? { lan } : {}),
    ...(health ? { health } : {}),
    ...(ddns ? { ddns } : {}),
    ...(mask !== undefined ? { mask } : {}),
    ...(schedule !== undefined ? { schedule } : {}),
    ...(rebalance !== undefined ? { rebalance } : {}),
    ...(ha ? { ha } : {}),
  };
}

/** Verifies a parsed YAML document; throws ConfigError listing every problem. */
export function verifyConfig(raw: unknown, options: VerifyOptions = {}, source?: string): Config {
  const doc = withoutNulls(raw);
  const result = configSchema.safeParse(doc);
  const problems = [...(result.success ? [] : problemsOf(result.error.issues)), ...(isObject(doc) ? checkConfig(parsedParts(doc), options) : [])];
  if (problems.length > 0 || !result.success) throw new ConfigError(problems, source);
  return result.data;
}

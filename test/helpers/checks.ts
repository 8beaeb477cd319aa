// Checks the reliability tests share: what the kernel's client set holds,
// whether the kernel already equals the plan, and that nothing of ours is
// duplicated.

import { expect } from '@jest/globals';
import { parseIpsetSave } from '../../src/parse/ipset.js';
import type { Lab } from './lab.js';

/** The kernel's client set: address → skbmark. */
export async function clientSet(lab: Lab): Promise<Map<string, string>> {
  const saved = (await lab.runIn(lab.topo.gw, ['ipset', 'save', 'dispatcher-clients'], [0, 1])).stdout;
  return new Map(parseIpsetSave(saved).entries.map((e) => [e.member, String(e.options.skbmark)]));
}

/** `dispatcher plan` finds nothing to load: the kernel is exactly the plan. */
export async function expectConverged(lab: Lab): Promise<void> {
  const plan = await lab.cliJson<{ payloads: Record<string, unknown> }>(['plan']);
  // Payload texts at any depth (the backend's payload is an object of texts, sysctls one of values): all empty.
  const pending = (value: unknown): boolean => (typeof value === 'string' ? value !== '' : Object.values(value as object).some(pending));
  expect(Object.entries(plan.payloads).filter(([, v]) => pending(v))).toEqual([]);
}

/** No ip rule, route or netfilter rule of ours appears twice. */
export async function expectNoDuplicates(lab: Lab): Promise<void> {
  const snapshot = await lab.snapshot();
  const repeated = (lines: string[]): string[] => lines.filter((line, i) => lines.indexOf(line) !== i);
  expect(
    repeated(
      snapshot
        .rules!.split('\n')
        .filter((l) => l.includes('proto 211'))
        .map((l) => l.replace(/^\d+:\s*/, '')),
    ),
  ).toEqual([]);
  expect(repeated(snapshot.routes!.split('\n').filter((l) => l.includes('proto 211')))).toEqual([]);
  expect(repeated(snapshot.iptables!.split('\n').filter((l) => l.includes('DISPATCHER') && l.startsWith('-A')))).toEqual([]);
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

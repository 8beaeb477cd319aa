// Reading the kernel's state and loading payloads into it. The shared part
// (ip rules, routes, links, sysctls) is read and written here, whatever the
// netfilter backend; the packet filter's part belongs to the backend
// (src/backends/), and the engine puts the two together: reads in parallel,
// writes in the order of DESIGN.md §1 — sysctls, the backend's payload, one
// ip -batch.

import { readsOrNames } from '../core/attempt.js';
import { familyContract, familySysctls, type Family } from '../core/family.js';
import type { Config } from '../model/config.js';
import type { FamilyRouting, Link, RoutingState } from '../model/kernel.js';
import { parseIpAddr, parseIpRoutes, parseIpRules } from '../parse/ip-json.js';
import type { Runner } from './exec.js';

export async function readLinks(runner: Runner): Promise<Link[]> {
  return parseIpAddr((await runner.run(['ip', '-j', 'addr', 'show'])).stdout);
}

export async function readRules(runner: Runner, family: Family = 'ipv4'): Promise<RoutingState['rules']> {
  // `ip rule` shows IPv4 when given no family (and the fake kernel answers exactly this argv).
  return parseIpRules((await runner.run(family === 'ipv4' ? ['ip', '-j', 'rule', 'show'] : ['ip', '-6', '-j', 'rule', 'show'])).stdout);
}

/**
 * IPv6's rules and routes. Read whatever the config says, so that turning
 * IPv6 off (or flush) removes ours; a kernel without IPv6 (ipv6.disable=1)
 * has none, which only matters when the config wants IPv6.
 */
async function readFamily6(runner: Runner, config: Config): Promise<FamilyRouting> {
  const read = Promise.all([readRules(runner, 'ipv6'), readRoutes(runner, 'ipv6')]).then(([rules, routes]) => ({ rules, routes }));
  return config.lan.ipv6.mode === 'off' ? read.catch(() => ({ rules: [], routes: [] })) : read;
}

export async function readRoutes(runner: Runner, family: Family = 'ipv4'): Promise<RoutingState['routes']> {
  return parseIpRoutes((await runner.run(['ip', familyContract(family).ipFlag, '-j', 'route', 'show', 'table', 'all'])).stdout);
}

/** Reads the named sysctls; keys that do not exist (an absent interface) are left out. */
export async function readSysctls(runner: Runner, keys: readonly string[]): Promise<Record<string, string>> {
  if (keys.length === 0) return {};
  const result = await runner.run(['sysctl', '-e', ...keys]);
  const values: Record<string, string> = {};
  for (const line of result.stdout.split('\n')) {
    const match = /^(\S+) = (.*)$/.exec(line);
    if (match) values[match[1] as string] = (match[2] as string).trim();
  }
  return values;
}

/** The sysctl keys a config can touch, so their current values are known before any change. */
export function sysctlKeys(config: Config): string[] {
  const interfaces = config.uplinks.map((u) => u.interface);
  return Object.keys({ ...familySysctls(interfaces), ...(config.lan.ipv6.mode === 'off' ? {} : familySysctls(interfaces, 'ipv6')) });
}

/** The shared kernel state: ip rules and routes of both families, links and the sysctls a config can touch. */
export async function observeRouting(runner: Runner, config: Config): Promise<RoutingState> {
  const [rules, routes, ipv6, links, sysctls] = await Promise.all([readRules(runner), readRoutes(runner), readFamily6(runner, config), readLinks(runner), readSysctls(runner, sysctlKeys(config))]);
  return { rules, routes, ipv6, links, sysctls };
}

/** For `dispatcher plan` without root: the shared state as far as it can be read (ip and sysctl work unprivileged). */
export async function observeRoutingReadable(runner: Runner, config: Config): Promise<{ state: RoutingState; unreadable: string[] }> {
  const unreadable: string[] = [];
  const attempt = readsOrNames(unreadable);
  const [rules, routes, ipv6, links, sysctls] = await Promise.all([
    attempt('ip rule', readRules(runner), []),
    attempt('ip route', readRoutes(runner), []),
    attempt('ip -6 rule/route', readFamily6(runner, config), { rules: [], routes: [] }),
    attempt('ip addr', readLinks(runner), []),
    attempt('sysctl', readSysctls(runner, sysctlKeys(config)), {}),
  ]);
  return { state: { rules, routes, ipv6, links, sysctls }, unreadable };
}

export async function writeSysctls(runner: Runner, values: Readonly<Record<string, string>>): Promise<void> {
  const assignments = Object.entries(values).map(([key, value]) => `${key}=${value}`);
  if (assignments.length > 0) await runner.run(['sysctl', '-q', '-w', ...assignments]);
}

/** Routes first, then rules added, then old ones removed: one `ip -batch` per family (nothing when empty). */
export async function applyIpBatch(runner: Runner, ip: string, family: Family = 'ipv4'): Promise<void> {
  if (ip) await runner.run(family === 'ipv4' ? ['ip', '-batch', '-'] : ['ip', '-6', '-batch', '-'], { input: ip });
}

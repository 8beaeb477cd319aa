// `dispatcher flush`: remove everything the dispatcher put into the kernel
// and nothing else — the netfilter backend removes its objects (and the
// tables it created, once bare), the shared part is the diff against an empty
// desired state, and the sysctls are put back as they were before the first
// start; the radvd of IPv6 prefix mode is stopped. Assignments stay in the store, so the next start restores the same pools.

import type { NetfilterBackend, NetfilterRemoval } from '../backends/backend.js';
import { diffRouting, isRoutingEmpty, NOTHING } from '../core/diff.js';
import type { Config } from '../model/config.js';
import { renderIpBatch } from '../render/payloads.js';
import type { Runner } from '../system/exec.js';
import { applyIpBatch, readSysctls, writeSysctls } from '../system/kernel.js';
import { Radvd } from '../system/radvd.js';
import { gatherInputs } from './inputs.js';
import type { Store } from '../system/store.js';

export interface FlushReport {
  readonly chains: readonly string[];
  readonly hooks: number;
  readonly setDestroyed: boolean;
  readonly rules: number;
  readonly routes: number;
  /** The gateway's LAN addresses of IPv6 prefix mode. */
  readonly addresses: number;
  readonly sysctlsRestored: Readonly<Record<string, string>>;
  readonly tablesDeleted: readonly string[];
  /** The radvd of IPv6 prefix mode was stopped (its last advertisement deprecates the prefixes). */
  readonly radvdStopped: boolean;
  readonly nothingToDo: boolean;
}

/**
 * `backends`: the configured backend first (engine/backend.ts loadBackends),
 * then the others, whose objects a switch of backend may have left; a backend
 * whose tool is not installed has nothing of ours to remove.
 */
export async function flush(runner: Runner, config: Config, store: Store, backends: readonly NetfilterBackend[]): Promise<FlushReport> {
  const [netfilter, ...others] = backends as [NetfilterBackend, ...NetfilterBackend[]];
  // What a run would see (engine/inputs.ts), with the ranges last loaded, in case the config's were edited since.
  const inputs = await gatherInputs(runner, { backend: netfilter, config, stored: store.data, scan: false, now: Date.now() });
  const routing = diffRouting(inputs.config, NOTHING, inputs.routing, inputs.previous);
  // radvd first, while forwarding is still on: its last advertisement, looped back to the gateway's own LAN interface, is ignored there only then.
  const radvdStopped = (await new Radvd(runner, config.state).sync(null)) === 'stopped';
  const originals = store.data.sysctlOriginals;
  const current = await readSysctls(runner, Object.keys(originals));
  // Interfaces that are gone take their sysctls with them.
  const restore = Object.fromEntries(Object.entries(originals).filter(([key, value]) => current[key] !== undefined && current[key] !== value));
  await writeSysctls(runner, restore);
  // Rules and routes first: a backend step that fails (removing a bare table, say) must not leave them behind.
  await applyIpBatch(runner, renderIpBatch(routing));
  await applyIpBatch(runner, renderIpBatch(routing.ipv6), 'ipv6');
  const removal = await netfilter.flush(runner, inputs.netfilter, store.data.createdTables);
  const left = await removeOtherBackends(runner, others, store.data.createdTables);
  await store.save((data) => {
    data.sysctlOriginals = {};
    data.createdTables = [];
    delete data.ranges;
  });
  const removals = [removal, ...left];
  return {
    chains: removals.flatMap((r) => r.chains),
    hooks: removals.reduce((n, r) => n + r.hooks, 0),
    setDestroyed: removals.some((r) => r.setDestroyed),
    rules: routing.rules.remove.length + routing.ipv6.rules.remove.length,
    routes: routing.routes.remove.length + routing.ipv6.routes.remove.length,
    addresses: routing.ipv6.addresses.remove.length,
    sysctlsRestored: restore,
    tablesDeleted: removals.flatMap((r) => r.tablesDeleted),
    radvdStopped,
    nothingToDo: !radvdStopped && isRoutingEmpty(routing) && !removals.some((r) => r.changed) && Object.keys(restore).length === 0 && removals.every((r) => r.tablesDeleted.length === 0),
  };
}

/**
 * What other backends hold of ours (a switch of netfilter.backend leaves the
 * old one's objects): removed, each as its own flush does. A backend whose
 * tool is missing or cannot read has nothing to remove.
 */
export async function removeOtherBackends(runner: Runner, others: readonly NetfilterBackend[], created: readonly string[]): Promise<NetfilterRemoval[]> {
  const removals: NetfilterRemoval[] = [];
  for (const backend of others) {
    const observed = await backend.observe(runner).catch(() => null);
    if (observed === null || backend.isEmpty(backend.plan(null, observed))) continue;
    removals.push(await backend.flush(runner, observed, created));
  }
  return removals;
}

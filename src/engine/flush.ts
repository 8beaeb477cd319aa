// `dispatcher flush`: remove everything the dispatcher put into the kernel
// and nothing else — the diff against an empty desired state, then the
// sysctls and netfilter tables put back as they were before the first start.
// Assignments stay in the store, so the next start restores the same pools.

import { isEmpty, NOTHING, diff } from '../core/diff.js';
import type { Config } from '../model/config.js';
import { renderPayloads } from '../render/payloads.js';
import type { Runner } from '../system/exec.js';
import { applyPayloads, deleteBareTables, observeKernel, readSysctls } from '../system/kernel.js';
import type { Store } from '../system/store.js';

export interface FlushReport {
  readonly chains: readonly string[];
  readonly hooks: number;
  readonly setDestroyed: boolean;
  readonly rules: number;
  readonly routes: number;
  readonly sysctlsRestored: Readonly<Record<string, string>>;
  readonly tablesDeleted: readonly string[];
  readonly nothingToDo: boolean;
}

export async function flush(runner: Runner, config: Config, store: Store): Promise<FlushReport> {
  const observed = await observeKernel(runner, config);
  // The ranges last loaded too, in case the config's were edited since.
  const change = diff(config, NOTHING, observed, store.data.ranges ? [store.data.ranges] : []);
  const originals = store.data.sysctlOriginals;
  const current = await readSysctls(runner, Object.keys(originals));
  // Interfaces that are gone take their sysctls with them.
  const restore = Object.fromEntries(Object.entries(originals).filter(([key, value]) => current[key] !== undefined && current[key] !== value));
  await applyPayloads(runner, { ...renderPayloads(change), sysctls: restore });
  const tablesDeleted = await deleteBareTables(runner, store.data.createdTables);
  await store.save((data) => {
    data.sysctlOriginals = {};
    data.createdTables = [];
    delete data.ranges;
  });
  return {
    chains: change.netfilter.flatMap((t) => t.dropChains.map((c) => `${t.table}/${c}`)),
    hooks: change.netfilter.reduce((n, t) => n + t.deleteRules.length, 0),
    setDestroyed: change.set.destroy,
    rules: change.rules.remove.length,
    routes: change.routes.remove.length,
    sysctlsRestored: restore,
    tablesDeleted,
    nothingToDo: isEmpty(change) && Object.keys(restore).length === 0 && tablesDeleted.length === 0,
  };
}

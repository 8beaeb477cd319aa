// `dispatcher rebalance` (and balance.rebalance's schedule): the plan from
// what the pools carried and which clients have a connection open
// (core/balance/traffic.ts), loaded as one edit of the assignments by the
// next run. Only a client still where the plan found it, and not pinned
// meanwhile, moves.

import { planRebalance } from '../core/balance/traffic.js';
import { RequestError } from '../model/errors.js';
import type { ResultOf } from '../schema/control.js';
import type { Logger } from '../system/logger.js';
import type { Reconciler } from './reconciler.js';

/** What each pool carried recently (bytes per second), and which clients have a connection open. */
export interface Load {
  rates(): Promise<ReadonlyMap<string, number>>;
  busy(): Promise<ReadonlySet<string>>;
}

export async function rebalance(deps: { readonly reconciler: Reconciler; readonly log: Logger; readonly load: Load }, dryRun: boolean): Promise<ResultOf<'rebalance'>> {
  const r = deps.reconciler;
  const { mode } = r.currentConfig.balance;
  if (mode !== 'host') throw new RequestError(`balance.mode is ${mode}: connections are spread by a hash, not by the clients' pools, so moving clients evens out nothing`);
  const [rates, sources] = await Promise.all([deps.load.rates(), deps.load.busy()]);
  // A host busy over IPv6 alone is busy too (its IPv6 addresses share its pool).
  const busy = new Set(sources);
  for (const [ip, record] of r.clients) if (record.ipv6 && Object.keys(record.ipv6).some((address) => sources.has(address))) busy.add(ip);
  const plan = planRebalance({ assignments: r.clients, uplinks: r.uplinks, rates, busy });
  if (dryRun || plan.moves.length === 0) return { dryRun, ...plan, run: null };
  deps.log.info('rebalance', { moves: plan.moves.map((m) => `${m.ip} ${m.from}→${m.to}`), before: plan.before, after: plan.after });
  const run = await r.request('operator rebalance', {
    edit: (clients) => {
      for (const move of plan.moves) {
        const record = clients.get(move.ip);
        if (record && record.uplink === move.from && !record.pinned) clients.set(move.ip, { ...record, uplink: move.to });
      }
    },
  });
  if (!run.ok) throw new Error(`kept, but loading it into the kernel failed (the daemon retries): ${run.error}`);
  return { dryRun, ...plan, run };
}

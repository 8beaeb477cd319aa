// The nftables backend's commands, all through the injected Runner (the exec
// seam): one read of the ruleset (`nft -j list ruleset`: our table, and other
// software's mark rules for collisions), one `nft -f -` transaction per run,
// and the named counters for the metrics.

import type { PoolBytes } from '../../core/traffic.js';
import type { Config } from '../../model/config.js';
import type { Runner } from '../../system/exec.js';
import { parseNftRuleset } from './parse.js';
import { CLIENT_MAP, CLIENT_MAP6, counterNames, TABLE } from './render.js';
import type { NftObserved, NftPayload } from './types.js';

const [FAMILY, NAME] = TABLE.split(' ') as [string, string];

export const EMPTY: NftObserved = { table: false, digest: null, clients: new Map(), counters: new Map(), hostSets: new Map(), rulesPerChain: {}, groups: [], foreignMarks: [] };

export async function observeNft(runner: Runner): Promise<NftObserved> {
  return parseNftRuleset((await runner.run(['nft', '-j', 'list', 'ruleset'])).stdout, { family: FAMILY, name: NAME });
}

/** Without root nft cannot list: the table counts as absent and nft is named. */
export async function observeNftReadable(runner: Runner): Promise<{ observed: NftObserved; unreadable: string[] }> {
  return observeNft(runner).then(
    (observed) => ({ observed, unreadable: [] }),
    () => ({ observed: EMPTY, unreadable: ['nft'] }),
  );
}

export async function applyNft(runner: Runner, payload: NftPayload): Promise<void> {
  if (payload.text !== '') await runner.run(['nft', '-f', '-'], { input: payload.text });
}

/** Bytes per pool from the table's named counters, by uplink name ({} when the table is absent). */
export async function readNftCounters(runner: Runner, config: Config): Promise<Record<string, PoolBytes>> {
  const result = await runner.run(['nft', '-j', 'list', 'counters', 'table', FAMILY, NAME], { okExitCodes: [0, 1] });
  if (result.exitCode !== 0) return {};
  const bytes = new Map<string, number>();
  const items = (JSON.parse(result.stdout) as { nftables?: { counter?: { name?: string; bytes?: number } }[] }).nftables ?? [];
  for (const item of items) if (item.counter?.name !== undefined) bytes.set(item.counter.name, item.counter.bytes ?? 0);
  const pools: Record<string, PoolBytes> = {};
  config.uplinks.forEach((uplink, i) => {
    const names = counterNames(i);
    if (bytes.has(names.sent)) pools[uplink.name] = { sent: bytes.get(names.sent) ?? 0, received: bytes.get(names.received) ?? 0 };
  });
  return pools;
}

/**
 * Each client address's bytes, sent and received, from the client maps'
 * per-element counters (our rules look every LAN packet up in them both
 * ways). Empty while our table or a map is absent.
 */
export async function readClientBytes(runner: Runner): Promise<Map<string, number>> {
  const lists = await Promise.all([CLIENT_MAP, CLIENT_MAP6].map((map) => runner.run(['nft', '-j', 'list', 'map', FAMILY, NAME, map], { okExitCodes: [0, 1] })));
  const bytes = new Map<string, number>();
  for (const list of lists) {
    if (list.exitCode !== 0) {
      if (list.stderr.includes('No such file or directory')) continue;
      throw new Error(`nft list map failed: ${list.stderr.trim()}`);
    }
    for (const [address, [, counted]] of parseNftRuleset(list.stdout, { family: FAMILY, name: NAME }).counters) bytes.set(address, counted);
  }
  return bytes;
}

// Bytes per pool and per uplink (pure). Per pool from the counting rules of
// iptables/skeleton.rules (sent: DISPATCHER-PRE, received: DISPATCHER-COUNT,
// one rule per uplink matching its pool mark); per uplink from the interface
// counters. Both only grow, so a reader takes differences for throughput.

import type { Config } from '../model/config.js';
import type { IptTable } from '../model/kernel.js';
import { hex, markLayout, poolMark } from './marks.js';
import type { Traffic } from '../schema/control.js';

export interface PoolBytes {
  readonly sent: number;
  readonly received: number;
}

/** Bytes counted by the pool counting rules, by uplink name (0 when a rule is missing). */
export function poolBytes(config: Config, netfilter: readonly IptTable[]): Record<string, PoolBytes> {
  const layout = markLayout(config.marks.mask);
  const mangle = netfilter.find((t) => t.name === 'mangle');
  const counted = (chain: string, mark: string): number => mangle?.rules.find((r) => r.chain === chain && r.args.join(' ') === `-m mark --mark ${mark} -j RETURN`)?.counters?.[1] ?? 0;
  return Object.fromEntries(
    config.uplinks.map((u, i) => {
      const mark = `${hex(poolMark(layout, i))}/${hex(layout.poolMask)}`;
      return [u.name, { sent: counted('DISPATCHER-PRE', mark), received: counted('DISPATCHER-COUNT', mark) }];
    }),
  );
}

/** Bytes per second between two readings, per uplink interface and per pool. */
export function rates(before: Traffic, after: Traffic): { uplinks: Record<string, { rx: number; tx: number }>; pools: Record<string, { sent: number; received: number }> } {
  const seconds = Math.max(0.001, (after.at - before.at) / 1000);
  const rate = (a: number, b: number | undefined): number => (b === undefined || a < b ? 0 : (a - b) / seconds);
  return {
    uplinks: Object.fromEntries(Object.entries(after.uplinks).map(([name, c]) => [name, { rx: c ? rate(c.rx, before.uplinks[name]?.rx) : 0, tx: c ? rate(c.tx, before.uplinks[name]?.tx) : 0 }])),
    pools: Object.fromEntries(Object.entries(after.pools).map(([name, c]) => [name, { sent: rate(c.sent, before.pools[name]?.sent), received: rate(c.received, before.pools[name]?.received) }])),
  };
}

/** One reading of the pool counters: bytes sent and received per pool, at a time. */
export interface PoolSample {
  readonly at: number;
  readonly pools: Readonly<Record<string, PoolBytes>>;
}

/**
 * Bytes per second per pool (sent and received together) over the readings:
 * the sum of the growth between consecutive ones, ÷ the time they span. A
 * counter that went down (our chains or table were rewritten, which zeroes
 * them) grew from 0; null with fewer than two readings.
 */
export function poolRates(samples: readonly PoolSample[]): Map<string, number> | null {
  const first = samples[0];
  const last = samples[samples.length - 1];
  if (!first || !last || last.at <= first.at) return null;
  const total = (bytes: PoolBytes | undefined): number => (bytes ? bytes.sent + bytes.received : 0);
  const grown = new Map<string, number>();
  for (let i = 1; i < samples.length; i++) {
    const before = samples[i - 1] as PoolSample;
    for (const [name, bytes] of Object.entries((samples[i] as PoolSample).pools)) {
      const now = total(bytes);
      const then = total(before.pools[name]);
      grown.set(name, (grown.get(name) ?? 0) + (now >= then ? now - then : now));
    }
  }
  const seconds = (last.at - first.at) / 1000;
  return new Map([...grown].map(([name, bytes]) => [name, bytes / seconds]));
}

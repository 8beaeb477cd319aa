// The netfilter intent (pure): what the packet filter must do for this config,
// these uplinks and these assignments, in no tool's words. A backend
// (src/backends/) spells it in its own tool's language.

import type { Config } from '../model/config.js';
import type { Ipv6Intent, NetfilterIntent } from '../model/plan.js';
import type { Assignments, ClientRecord, UplinkView } from '../model/state.js';
import { IPV6_PER_HOST } from './assign6.js';
import { planChoose } from './balance/policies.js';
import { planSpread } from './balance/spread.js';
import { uplinkGroup } from './contract.js';
import { translate6 } from './ipv6.js';
import { Derivation, LayeredMap } from './layered-map.js';
import { connMark, markLayout, poolMark } from './marks.js';

/** IPv6 in nat mode: each client's IPv6 addresses with its pool's mark, and each uplink's translation. */
function planIpv6(config: Config, uplinks6: readonly UplinkView[], assignments: Assignments, poolMarks: ReadonlyMap<string, number>): Ipv6Intent | null {
  const lanPrefix = config.lan.ipv6.prefix;
  if (config.lan.ipv6.mode !== 'nat' || lanPrefix === null || uplinks6.length === 0) return null;
  const clients = new Map<string, number>();
  for (const record of assignments.values()) {
    if (record.ipv6 === undefined) continue;
    const mark = poolMarks.get(record.uplink);
    if (mark !== undefined) for (const address of Object.keys(record.ipv6)) clients.set(address, mark);
  }
  return {
    lanPrefix,
    clients,
    maxClients: config.clients.max * IPV6_PER_HOST,
    translate: uplinks6.map((u) => {
      const prefix = config.uplinks[u.index]?.ipv6?.prefix ?? null;
      // The gateway's translated LAN address leads back to the gateway (the same translation, reversed), only
      // where it is published (the line's AAAA record): it opens the gateway's LAN-side services to that line.
      const published = config.ddns !== undefined && !config.ddns.exclude.includes(u.name);
      const to = published && prefix !== null && u.inbound !== undefined ? translate6(u.inbound, lanPrefix) : null;
      return { interface: u.interface, prefix, inbound: to !== null && u.inbound !== undefined ? { address: u.inbound, to } : null };
    }),
  };
}

/** The role keepalived gave this gateway of a pair (`dispatcher ha master|backup|fault`); unknown until it says. */
export type HaRole = 'master' | 'backup' | 'fault' | 'unknown';

/** The fence while one of a pair is not master: its LAN's forwarding and the lines' shared addresses. */
function planFence(config: Config, role: HaRole): NetfilterIntent['fence'] {
  if (!config.ha || role === 'master') return null;
  return { lans: config.lan.interfaces, addresses: config.uplinks.flatMap((u) => (u.haAddress ? [u.haAddress.address] : [])) };
}

/**
 * The client map (address → pool mark) of the assignments last planned with
 * these pool marks, carried to their next version by the clients that
 * changed (core/layered-map.ts): a run that changed no assignment (a
 * scheduled scan, a routing event) gets the same map back, one new client
 * among 50,000 a version with one entry more; the backends' diffs know it by
 * its lineage too (backends/iptables/diff.ts). Shared, so read-only.
 */
const clientMaps = new Derivation<string, ClientRecord, LayeredMap<string, number>, ReadonlyMap<string, number>>(
  (assignments, poolMarks) => {
    const clients = new Map<string, number>();
    for (const [ip, record] of assignments) {
      const mark = poolMarks.get(record.uplink);
      if (mark !== undefined) clients.set(ip, mark);
    }
    return LayeredMap.of(clients);
  },
  (last, ips, _before, assignments, poolMarks) => {
    const clients = last.draft();
    for (const ip of ips) {
      const mark = poolMarks.get(assignments.get(ip)?.uplink ?? '');
      if (mark === undefined) clients.delete(ip);
      else if (clients.get(ip) !== mark) clients.set(ip, mark);
    }
    return clients.done();
  },
);

const clientMap = (assignments: Assignments, poolMarks: ReadonlyMap<string, number>): ReadonlyMap<string, number> => clientMaps.of(assignments, [...poolMarks].join(' '), poolMarks);

export function planNetfilter(config: Config, uplinks: readonly UplinkView[], assignments: Assignments, uplinks6: readonly UplinkView[] = [], role: HaRole = 'unknown'): NetfilterIntent {
  const layout = markLayout(config.marks.mask);
  const poolMarks = new Map(uplinks.map((u) => [u.name, poolMark(layout, u.index)]));
  const clients = clientMap(assignments, poolMarks);
  return {
    connMask: layout.connMask,
    poolMask: layout.poolMask,
    lans: config.lan.interfaces,
    uplinks: uplinks.map((u) => ({
      name: u.name,
      interface: u.interface,
      connMark: connMark(layout, u.index),
      poolMark: poolMark(layout, u.index),
      group: uplinkGroup(config, u.index),
      snat: config.ha ? (config.uplinks[u.index]?.haAddress?.address ?? null) : null,
    })),
    clients,
    maxClients: config.clients.max,
    choose: planChoose(config, assignments),
    spread: planSpread(config, uplinks),
    ipv6: planIpv6(config, uplinks6, assignments, poolMarks),
    fence: planFence(config, role),
  };
}

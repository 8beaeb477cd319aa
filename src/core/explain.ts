// `dispatcher explain IP` (pure): why a client's traffic goes where it goes —
// its pool, the mark the client set gives its packets, the ip rule that mark
// selects, the table and the route in it, the uplink — and what happens to it
// if that uplink dies. Computed with the same planner functions that program
// the kernel, so the explanation cannot drift from what is loaded.

import type { Config } from '../model/config.js';
import type { Nexthop } from '../model/kernel.js';
import type { Assignments, ClientRecord, UplinkView } from '../model/state.js';
import { hmarkAddressBucket, nftAddressBucket } from './balance/kernel-hash.js';
import { firstLive, policyFor, viaPoolOf } from './balance/policies.js';
import { describeMatch, mayMatch, type PacketFacts, type PolicyProtocol, unknownFacts } from './balance/policy-match.js';
import { planSpread } from './balance/spread.js';
import { inLanSubnets } from './clients.js';
import { ids } from './contract.js';
import { cidrContains, parseCidr, parseIpv4 } from './ipv4.js';
import { connMark, hex, markLayout, poolMark } from './marks.js';
import { planRoutes } from './plan.js';
import { role } from './uplinks.js';
import type { Explanation, ResultOf } from '../schema/control.js';

export function describeHops(hops: readonly Nexthop[], uplinks: readonly UplinkView[]): string {
  return hops
    .map((hop) => {
      const uplink = uplinks.find((u) => u.interface === hop.dev);
      const weight = hops.length > 1 ? ` weight ${hop.weight}` : '';
      return `${uplink?.name ?? hop.dev} (${hop.gateway ? `via ${hop.gateway} ` : ''}dev ${hop.dev}${weight})`;
    })
    .join(' + ');
}

/** The default route planned in a pool's table (or in `table`, e.g. the multipath one), as the planner programs it. */
export function poolRoute(config: Config, uplinks: readonly UplinkView[], index: number, table = ids(config).tables.pool(index)): readonly Nexthop[] {
  return planRoutes(config, uplinks).find((r) => r.table === String(table))?.nexthops ?? [];
}

const HASHED = { destination: 'its address and the destination address', connection: 'the whole connection (addresses, protocol, ports)' } as const;

/** How a new connection picks its pool when policies or a hashing mode apply. */
export function chooseStep(config: Config, uplinks: readonly UplinkView[]): string[] {
  const steps: string[] = [];
  if (config.policies.length > 0) {
    steps.push(
      `policies (${config.policies.length}, first match wins) decide a new connection's line before its pool does: ${config.policies.map((p) => `${p.name} (${describeMatch(p.match)})`).join('; ')} — explain --to DEST [--protocol P --port N --dscp D] says which applies`,
    );
  }
  const { mode } = config.balance;
  const spread = planSpread(config, uplinks);
  if (mode !== 'host' && spread) {
    const ranges = spread.ranges.map((r) => `${r.uplink} ${r.from}–${r.to}`).join(', ');
    steps.push(
      `balance: ${mode} — the first packet of each new connection${config.policies.length > 0 ? ' no policy takes' : ''} is hashed (${HASHED[mode]}) into one of ${spread.buckets} buckets, and the packet gets the bucket's pool mark instead of its client's: ${ranges}; each pool's table routes as that line's does`,
    );
  }
  return steps;
}

type Toward = NonNullable<Explanation['to']>;

/** A destination whose connections go as the client's own do: no bucket, no policy, no other mark. */
const nowhere = (to: string): Toward => ({ address: to, bucket: null, pool: null, policy: null, mark: null, uplink: null });

/** What a hashing mode does with a connection to `to`: the destination mode's bucket, computed as the kernel does. */
function hashed(config: Config, uplinks: readonly UplinkView[], mode: 'destination' | 'connection', ip: string, to: string, by: string): { steps: string[]; to: Toward } {
  const { tables } = ids(config);
  const none = nowhere(to);
  const spread = planSpread(config, uplinks);
  if (!spread) return { steps: [], to: none };
  if (mode === 'connection') {
    return { steps: [`to ${to}: ${by} each new connection takes the bucket of its own addresses, protocol and ports; the source port is the connection's own, so no single line can be named`], to: none };
  }
  const hash = config.netfilter.backend === 'nftables' ? nftAddressBucket : hmarkAddressBucket;
  const bucket = hash(parseIpv4(ip) as number, parseIpv4(to) as number, spread.seed, spread.buckets);
  const range = spread.ranges.find((r) => bucket >= r.from && bucket <= r.to);
  const pool = uplinks.find((u) => u.name === range?.uplink);
  if (!range || !pool) return { steps: [], to: { ...none, bucket } };
  const hops = poolRoute(config, uplinks, pool.index);
  return {
    steps: [`to ${to}: ${by} the hash of ${ip} and ${to} is bucket ${bucket} of ${spread.buckets}, ${pool.name}'s: table ${tables.pool(pool.index)}, default via ${describeHops(hops, uplinks) || 'nothing'}`],
    to: { ...none, bucket, pool: pool.name, mark: range.poolMark, uplink: hops.length === 1 ? lineOf(hops[0] as Nexthop, uplinks) : null },
  };
}

const lineOf = (hop: Nexthop, uplinks: readonly UplinkView[]): string | null => uplinks.find((u) => u.interface === hop.dev)?.name ?? null;

/** The facts of a new connection explain is asked about. */
export interface Towards {
  readonly to: string;
  readonly protocol?: PolicyProtocol;
  readonly port?: number;
  readonly dscp?: number;
}

/**
 * Where the client's new connections to `to` go, when that differs from its
 * pool: a static route that covers `to` (the static table's rule comes before
 * every pool's), the first policy that takes them, or the balancing mode (in
 * the destination mode, the bucket the kernel's hash of the two addresses
 * falls in, core/balance/kernel-hash.ts; connection mode depends on the source
 * port, which only the connection knows).
 */
function towards(config: Config, uplinks: readonly UplinkView[], ip: string, record: ClientRecord | undefined, asked: Towards): { steps: string[]; to: Toward } {
  const mac = record?.mac;
  const pinned = record?.pinned === true;
  const { tables, priorities } = ids(config);
  const { to } = asked;
  const none = nowhere(to);
  const destination = parseIpv4(to) as number;
  const route = config.staticRoutes.find((r) => {
    const cidr = parseCidr(r.destination);
    return cidr !== null && cidrContains(cidr, destination);
  });
  if (route) {
    return { steps: [`to ${to}: the static route ${route.destination} covers it (table ${tables.static}, ahead of the pools and policies): the first live of ${route.via.join(', ')}`], to: none };
  }
  const packet: PacketFacts = {
    source: ip,
    destination: to,
    ...(mac ? { mac } : {}),
    ...(asked.protocol ? { protocol: asked.protocol } : {}),
    ...(asked.port !== undefined ? { port: asked.port } : {}),
    ...(asked.dscp !== undefined ? { dscp: asked.dscp } : {}),
  };
  const chosen = policyFor(config, packet);
  // Only an earlier policy whose known facts match could have taken it: those are the ones worth a word.
  const unjudged = config.policies.slice(0, chosen?.index ?? config.policies.length).filter((p) => unknownFacts(p.match, packet).length > 0 && mayMatch(p.match, packet));
  const caveat = unjudged.map((p) => `policy ${p.name} would need the connection's ${unknownFacts(p.match, packet).join(' and ')} to be judged; taken as not matching`);
  if (!chosen) {
    const { mode } = config.balance;
    if (mode !== 'host' && pinned) return { steps: [...caveat, `to ${to}: ${ip} is pinned by an operator, so it keeps its pool in balance: ${mode} too`], to: none };
    const otherwise = mode === 'host' ? { steps: [], to: none } : hashed(config, uplinks, mode, ip, to, `balance: ${mode} —`);
    return { steps: [...caveat, ...(config.policies.length > 0 ? [`to ${to}: no policy takes it`] : []), ...otherwise.steps], to: otherwise.to };
  }
  const { policy } = chosen;
  const named = `policy ${policy.name} (${describeMatch(policy.match)}) takes it`;
  if (policy.action.kind === 'balance') {
    const { mode } = policy.action;
    if (mode === 'host') return { steps: [...caveat, `to ${to}: ${named} and keeps it in its client's pool`], to: { ...none, policy: policy.name } };
    const result = hashed(config, uplinks, mode, ip, to, `${named}, balance: ${mode} —`);
    return { steps: [...caveat, ...result.steps], to: { ...result.to, policy: policy.name } };
  }
  const pool = viaPoolOf(config, policy.action.via);
  const layout = markLayout(config.marks.mask);
  const mark = poolMark(layout, pool.index);
  const hops = poolRoute(config, uplinks, pool.index);
  const first = firstLive(policy.action.via, uplinks);
  return {
    steps: [
      ...caveat,
      `to ${to}: ${named}: its first packet gets the pool mark ${hex(mark)}/${hex(layout.poolMask)}, rule ${priorities.pool(pool.index)} looks up table ${tables.pool(pool.index)}: default via ${describeHops(hops, uplinks) || 'nothing'} — ${first ? `${first.name}, the first live line of ${policy.action.via.join(', ')}` : `none of ${policy.action.via.join(', ')} is live, so the lines that carry`}`,
    ],
    to: { ...none, policy: policy.name, mark, uplink: first?.name ?? (hops.length === 1 ? lineOf(hops[0] as Nexthop, uplinks) : null) },
  };
}

export function explain(config: Config, uplinks: readonly UplinkView[], assignments: Assignments, ip: string, asked?: Towards): Explanation {
  const toward = asked === undefined ? null : towards(config, uplinks, ip, assignments.get(ip), asked);
  const { tables, priorities } = ids(config);
  const layout = markLayout(config.marks.mask);
  const address = parseIpv4(ip) as number;
  const multipath = planRoutes(config, uplinks).find((r) => r.table === String(tables.multipath))?.nexthops ?? [];
  const connections = `open connections keep the uplink they started on: their connection mark (restored from conntrack) selects rule ${priorities.conn(0)}+i and that uplink's own table, ahead of the pool rules`;
  if (!inLanSubnets(config)(address)) {
    return { ip, mark: null, verdict: 'not a client', steps: [`${ip} is outside lan.subnets (${config.lan.subnets.join(', ')}): the dispatcher never assigns it a pool`], ifUplinkDies: null, pool: null, pinned: false, to: null };
  }
  const record = assignments.get(ip);
  const uplink = record ? uplinks.find((u) => u.name === record.uplink) : undefined;
  if (!record || !uplink) {
    return {
      ip,
      mark: null,
      verdict: 'not assigned',
      steps: [
        `${ip} has no pool yet (not seen in the neighbour table, or refused by clients.max / clients.per_mac)`,
        ...chooseStep(config, uplinks),
        `its packets get no pool mark, so rule ${priorities.multipath} sends them to table ${tables.multipath}: ${describeHops(multipath, uplinks) || 'no live uplink'}`,
        ...(toward?.steps ?? []),
        connections,
      ],
      ifUplinkDies: `a dead uplink leaves table ${tables.multipath} at once; the others carry its share`,
      pool: null,
      pinned: false,
      to: toward?.to ?? null,
    };
  }
  const mark = `${hex(poolMark(layout, uplink.index))}/${hex(layout.poolMask)}`;
  const route = poolRoute(config, uplinks, uplink.index);
  const now = role(uplink, uplinks);
  const home = now === 'carrying';
  const survivors = uplinks.map((u) => (u.name === uplink.name ? { ...u, state: 'down' as const, reason: 'what if' } : u));
  const failover = poolRoute(config, survivors, uplink.index);
  const steps = [
    `${ip} is in ${uplink.name}'s pool${record.pinned ? ' (pinned by an operator)' : ''}${record.mac ? `, MAC ${record.mac} on ${record.interface}` : ''}, since ${new Date(record.firstSeen).toISOString()}`,
    `the client set (dispatcher-clients) gives its packets the pool mark ${mark}`,
    ...chooseStep(config, uplinks),
    `rule ${priorities.pool(uplink.index)}: fwmark ${mark} lookup ${tables.pool(uplink.index)}`,
    `table ${tables.pool(uplink.index)}: default via ${describeHops(route, uplinks) || 'nothing (no uplink can carry it)'}`,
    home
      ? `${uplink.name} is up: new connections leave by ${uplink.name} (${uplink.interface}${uplink.address ? `, ${uplink.address}` : ''}), MASQUERADEd to its address`
      : now === 'standby'
        ? `${uplink.name} is up but stands by (tier ${uplink.tier}; a line of a lower tier is up): its pool is carried by the lower tier`
        : `${uplink.name} is down (${uplink.reason}): its pool is carried by the survivors until it is back`,
    ...(toward?.steps ?? []),
    connections,
  ];
  const conn = `${hex(connMark(layout, uplink.index))}/${hex(layout.connMask)}`;
  const ifUplinkDies = home
    ? `if ${uplink.name} dies: table ${tables.pool(uplink.index)} points at ${describeHops(failover, survivors) || 'nothing (no other uplink is up: routes stay as they are)'}; ` +
      `its connections (conntrack mark ${conn}) are forgotten so the client reconnects at once; the client stays in ${uplink.name}'s pool and comes home when ${uplink.name} is back`
    : now === 'standby'
      ? `${uplink.name} stands by: the client leaves by it only when every line of a lower tier is down`
      : `${uplink.name} is already down: the client comes home when it is back`;
  return { ip, mark: poolMark(layout, uplink.index), verdict: 'assigned', steps, ifUplinkDies, pool: uplink.name, pinned: record.pinned === true, to: toward?.to ?? null };
}

/** `dispatcher explain` as text: the verdict, the numbered steps, what if the line dies, the kernel's own lookup and the firewall's word (the CLI prints it, the web page shows it). */
export function explanationText(ip: string, result: ResultOf<'explain'>): string {
  const steps = result.steps.map((step, i) => `  ${i + 1}. ${step}`).join('\n');
  return `${ip}: ${result.verdict}\n${steps}\n${result.ifUplinkDies ? `  → ${result.ifUplinkDies}\n` : ''}kernel: ${result.kernel.command}\n  ${result.kernel.answer}\n${result.firewall.map((line) => `${line}\n`).join('')}`;
}

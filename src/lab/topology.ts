// A self-contained namespace lab: every host is a network namespace named
// with a unique prefix, linked by veth pairs created directly inside the
// namespaces, so the root namespace's interfaces, routes, rules and firewall
// are never touched. The kernel here has no PPP: "ppp" uplinks are veth
// devices named ppp0… with point-to-point peer addresses, as pppd sets them.
//
//   client namespaces ──┐
//   (c1…cN, 198.18/16)  ├─ lan (bridge) ── gw:lan0 ─┬─ ppp0 ─ isp1 ─┐
//                       │                           ├─ ppp1 ─ isp2 ─┼─ inet (203.0.113.100)
//                       │                           └─ wan0 ─ isp3 ─┘
//
// An uplink may sit behind another NAT (a provider's CPE router, `behindNat`):
// gw ── nat<k> (MASQUERADE) ── isp<k>; the gateway then holds a private-side
// address, and the internet sees the CPE's.
//
// Addresses: LANs in 198.18.0.0/15, customer links in 192.0.2.0/24, ISP
// transit in 198.51.100.0/24, internet hosts in 203.0.113.0/24.
//
// Dual-stack (`ipv6`): the LAN is fd00:18::/64, announced by the site's own
// radvd on the gateway's lan0 (hosts autoconfigure); line k's customer link
// is 2001:db8:k::/64 (the ISP router ::1 and fe80::1, the gateway ::2), its
// ISP advertises itself there (radvd) and routes the prefix it delegated,
// 2001:db8:k:100::/64, to a point-to-point line (an ethernet line has none
// and masquerades); ISP transit is 2001:db8:ffk::/64, the internet host
// 2001:db8:ffff::100. A line behind another NAT stays IPv4-only.

import { mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Runner } from '../system/exec.js';

export interface UplinkSpec {
  readonly name: string;
  /** Interface name on the gateway: ppp* for point-to-point, anything else for an ethernet hand-off. */
  readonly interface: string;
  readonly weight?: number;
  /** The ISP-side address (the gateway's next hop). Two ppp uplinks may share one. */
  readonly gateway?: string;
  /** Another NAT router between the gateway and the ISP (ethernet uplinks only). */
  readonly behindNat?: boolean;
}

export interface LabSpec {
  /** Namespace name prefix, unique per run and naming its owner (core/run-names.ts, e.g. "dspcoex-4242-1-"). */
  readonly prefix: string;
  readonly clients: number;
  readonly uplinks: readonly UplinkSpec[];
  /** Dual-stack: IPv6 on the LAN and on every line not behind another NAT. */
  readonly ipv6?: boolean;
}

/** A line's IPv6 in the dual-stack lab. */
export interface LabUplink6 {
  /** The gateway's address on the customer link. */
  readonly local: string;
  /** The ISP router's link-local address: configured for a point-to-point line, learnt from its advertisements on ethernet. */
  readonly gateway: string;
  /** The prefix the ISP routes to the gateway over this line (NPTv6), or null (the line masquerades to `local`). */
  readonly prefix: string | null;
  /** An address beyond the next hop (the ISP's transit side), for the IPv6 probes. */
  readonly core: string;
}

/** The dual-stack lab's LAN and internet host. */
export interface LabIpv6 {
  readonly lanPrefix: string;
  readonly lanAddress: string;
  readonly server: string;
  /** Where the lab's radvd configs are (removed with the lab). */
  readonly dir: string;
}

export interface LabUplink {
  readonly name: string;
  readonly interface: string;
  readonly weight: number;
  readonly pointToPoint: boolean;
  /** The gateway's address on this uplink. */
  readonly local: string;
  /** What the internet host sees: `local`, or the outer NAT's address when the uplink is behind one. */
  readonly publicAddress: string;
  /** The outer NAT's namespace, when the uplink is behind one. */
  readonly nat?: string;
  readonly gateway: string;
  /** The ISP namespace and its interface towards the gateway. */
  readonly isp: string;
  readonly ispInterface: string;
  /** An address beyond the next hop (the ISP's transit side), for probes. */
  readonly ispCore: string;
  /** Dual-stack lab: the line's IPv6. */
  readonly ipv6?: LabUplink6;
}

export interface LabClient {
  readonly ns: string;
  readonly ip: string;
}

export interface Topology {
  readonly prefix: string;
  readonly gw: string;
  readonly lan: string;
  readonly inet: string;
  readonly lanInterface: string;
  readonly lanAddress: string;
  readonly lanSubnet: string;
  readonly server: string;
  readonly uplinks: readonly LabUplink[];
  readonly clients: readonly LabClient[];
  readonly namespaces: readonly string[];
  /** Dual-stack lab; null: IPv4 only. */
  readonly ipv6: LabIpv6 | null;
}

export const SERVER_ADDRESS = '203.0.113.100';
/** A second site on the same internet host, for static routes. */
export const SITE_ADDRESS = '203.0.113.200';
const LAN_GATEWAY = '198.18.0.1';
const LAN_PREFIX = 16;
export const SERVER_ADDRESS6 = '2001:db8:ffff::100';
const LAN_PREFIX6 = 'fd00:18::/64';
const LAN_GATEWAY6 = 'fd00:18::1';

/** The default lab: two ppp lines sharing one gateway address, and a cable line; weights 2:1:1. */
export const DEFAULT_UPLINKS: readonly UplinkSpec[] = [
  { name: 'isp1', interface: 'ppp0', weight: 2, gateway: '192.0.2.1' },
  { name: 'isp2', interface: 'ppp1', weight: 1, gateway: '192.0.2.1' },
  { name: 'isp3', interface: 'wan0', weight: 1 },
];

/** Client i of the lab's /16 LAN: 198.18.0.10, .11, … (.0/.255 inside a /16 are ordinary hosts). */
export function clientAddress(index: number): string {
  const n = 10 + index;
  return `198.18.${n >> 8}.${n & 255}`;
}

function describeUplinks(prefix: string, specs: readonly UplinkSpec[], ipv6: boolean): LabUplink[] {
  return specs.map((spec, k) => {
    const pointToPoint = spec.interface.startsWith('ppp');
    if (spec.behindNat && pointToPoint) throw new RangeError(`${spec.name}: only an ethernet uplink can sit behind another NAT in the lab`);
    // Each uplink gets 192.0.2.(4k)/30 for its customer link: gateway .4k+1, us (or the outer NAT) .4k+2.
    // Behind a NAT, the gateway and the NAT share 198.19.200.(4k)/30: NAT .4k+1, gateway .4k+2.
    const customer = `192.0.2.${4 * k + 2}`;
    return {
      name: spec.name,
      interface: spec.interface,
      weight: spec.weight ?? 1,
      pointToPoint,
      local: spec.behindNat ? `198.19.200.${4 * k + 2}` : customer,
      publicAddress: customer,
      ...(spec.behindNat ? { nat: `${prefix}nat${k + 1}` } : {}),
      gateway: spec.gateway ?? (spec.behindNat ? `198.19.200.${4 * k + 1}` : `192.0.2.${4 * k + 1}`),
      isp: `${prefix}isp${k + 1}`,
      ispInterface: 'cust',
      ispCore: `198.51.100.${4 * k + 2}`,
      ...(ipv6 && !spec.behindNat ? { ipv6: { local: `2001:db8:${k + 1}::2`, gateway: 'fe80::1', prefix: pointToPoint ? `2001:db8:${k + 1}:100::/64` : null, core: `2001:db8:ff${k + 1}::2` } } : {}),
    };
  });
}

export function describeTopology(spec: LabSpec): Topology {
  const { prefix } = spec;
  const uplinks = describeUplinks(prefix, spec.uplinks, spec.ipv6 === true);
  const clients = Array.from({ length: spec.clients }, (_, i) => ({ ns: `${prefix}c${i + 1}`, ip: clientAddress(i) }));
  const gw = `${prefix}gw`;
  const lan = `${prefix}lan`;
  const inet = `${prefix}inet`;
  return {
    prefix,
    gw,
    lan,
    inet,
    lanInterface: 'lan0',
    lanAddress: LAN_GATEWAY,
    lanSubnet: `198.18.0.0/${LAN_PREFIX}`,
    server: SERVER_ADDRESS,
    uplinks,
    clients,
    namespaces: [gw, lan, inet, ...uplinks.flatMap((u) => (u.nat ? [u.isp, u.nat] : [u.isp])), ...clients.map((c) => c.ns)],
    ipv6: spec.ipv6 ? { lanPrefix: LAN_PREFIX6, lanAddress: LAN_GATEWAY6, server: SERVER_ADDRESS6, dir: join(tmpdir(), `${prefix}radvd`) } : null,
  };
}

async function batch(runner: Runner, ns: string | null, lines: readonly string[]): Promise<void> {
  if (lines.length === 0) return;
  await runner.run([...(ns ? ['ip', '-n', ns] : ['ip']), '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

export async function sysctl(runner: Runner, ns: string, settings: Record<string, string>): Promise<void> {
  await runner.run(['ip', 'netns', 'exec', ns, 'sysctl', '-q', '-w', ...Object.entries(settings).map(([k, v]) => `${k}=${v}`)]);
}

/** Links one uplink: the gateway's side, the ISP namespace and its transit to the internet. */
function uplinkLines(topo: Topology, uplink: LabUplink, k: number): { gw: string[]; isp: string[]; inet: string[]; nat: string[] } {
  const transitIsp = uplink.ispCore;
  const transitInet = `198.51.100.${4 * k + 1}`;
  const ispSide = `192.0.2.${4 * k + 1}`;
  const customer = uplink.pointToPoint ? { gw: `${uplink.local} peer ${uplink.gateway}`, isp: `${uplink.gateway} peer ${uplink.local}` } : { gw: `${uplink.local}/30`, isp: `${uplink.nat ? ispSide : uplink.gateway}/30` };
  // Behind a NAT, the gateway's link ends in the NAT namespace, whose own uplink ends in the ISP.
  const gwPeer = uplink.nat ? { name: 'inside', netns: uplink.nat } : { name: uplink.ispInterface, netns: uplink.isp };
  return {
    gw: [`link add name ${uplink.interface} type veth peer name ${gwPeer.name} netns ${gwPeer.netns}`, `addr add ${customer.gw} dev ${uplink.interface}`, `link set ${uplink.interface} up`],
    nat: uplink.nat
      ? [
          'link set lo up',
          `link add name outside type veth peer name ${uplink.ispInterface} netns ${uplink.isp}`,
          `addr add ${uplink.gateway}/30 dev inside`,
          `addr add ${uplink.publicAddress}/30 dev outside`,
          'link set inside up',
          'link set outside up',
          `route add default via ${ispSide}`,
        ]
      : [],
    isp: [
      'link set lo up',
      `link add name transit type veth peer name isp${k + 1} netns ${topo.inet}`,
      `addr add ${customer.isp} dev ${uplink.ispInterface}`,
      `addr add ${transitIsp}/30 dev transit`,
      `link set ${uplink.ispInterface} up`,
      'link set transit up',
      `route add default via ${transitInet}`,
    ],
    inet: [`addr add ${transitInet}/30 dev isp${k + 1}`, `link set isp${k + 1} up`, `route add ${uplink.publicAddress}/32 via ${transitIsp}`],
  };
}

/** A dual-stack line's IPv6 lines, added to uplinkLines' (after them: the links exist and are up). */
function uplinkLines6(uplink: LabUplink, k: number): { gw: string[]; isp: string[]; inet: string[] } {
  const v6 = uplink.ipv6;
  if (!v6) return { gw: [], isp: [], inet: [] };
  const link = `2001:db8:${k + 1}::`;
  const transitInet = `2001:db8:ff${k + 1}::1`;
  const delegated = v6.prefix === null ? [] : [v6.prefix];
  return {
    gw: [`addr add ${v6.local}/64 dev ${uplink.interface} nodad`],
    isp: [
      `addr add ${link}1/64 dev ${uplink.ispInterface} nodad`,
      `addr add ${v6.gateway}/64 dev ${uplink.ispInterface} nodad`,
      `addr add ${v6.core}/64 dev transit nodad`,
      `route add default via ${transitInet}`,
      ...delegated.map((prefix) => `route add ${prefix} via ${v6.local}`),
    ],
    inet: [`addr add ${transitInet}/64 dev isp${k + 1} nodad`, `route add ${link}/64 via ${v6.core}`, ...delegated.map((prefix) => `route add ${prefix} via ${v6.core}`)],
  };
}

/** radvd in a namespace, advertising on one interface (the ISPs' routers, the site's own on the LAN); killed with the namespace. */
async function advertise(runner: Runner, dir: string, ns: string, iface: string, prefix: string | null): Promise<void> {
  const conf = join(dir, `${ns}.conf`);
  const announced = prefix === null ? '' : `  prefix ${prefix} { AdvOnLink on; AdvAutonomous on; };\n`;
  await writeFile(conf, `interface ${iface} {\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 10;\n${announced}};\n`);
  await runner.run(inNamespace(ns, ['radvd', '--config', conf, '--pidfile', join(dir, `${ns}.pid`), '--logmethod', 'none']));
}

/** Builds the namespaces and links; on failure removes whatever it made. */
export async function buildTopology(runner: Runner, spec: LabSpec): Promise<Topology> {
  const topo = describeTopology(spec);
  try {
    await batch(
      runner,
      null,
      topo.namespaces.map((ns) => `netns add ${ns}`),
    );
    const perUplink = topo.uplinks.map((u, k) => uplinkLines(topo, u, k));
    await batch(runner, topo.inet, ['link set lo up', `addr add ${topo.server}/32 dev lo`, `addr add ${SITE_ADDRESS}/32 dev lo`]);
    await batch(runner, topo.gw, [
      'link set lo up',
      `link add name ${topo.lanInterface} type veth peer name gw netns ${topo.lan}`,
      `addr add ${topo.lanAddress}/${LAN_PREFIX} dev ${topo.lanInterface}`,
      `link set ${topo.lanInterface} up`,
      ...perUplink.flatMap((p) => p.gw),
    ]);
    for (const [k, uplink] of topo.uplinks.entries()) {
      const lines = perUplink[k] as ReturnType<typeof uplinkLines>;
      if (uplink.nat) {
        await batch(runner, uplink.nat, lines.nat);
        await sysctl(runner, uplink.nat, { 'net.ipv4.ip_forward': '1' });
        await runner.run(inNamespace(uplink.nat, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', 'outside', '-j', 'MASQUERADE']));
      }
      await batch(runner, uplink.isp, [...lines.isp, ...uplinkLines6(uplink, k).isp]);
      await sysctl(runner, uplink.isp, { 'net.ipv4.ip_forward': '1', ...(uplink.ipv6 ? { 'net.ipv6.conf.all.forwarding': '1' } : {}) });
    }
    await batch(runner, topo.inet, [...perUplink.flatMap((p) => p.inet), ...topo.uplinks.flatMap((u, k) => uplinkLines6(u, k).inet)]);
    await batch(runner, topo.lan, [
      'link set lo up',
      'link add name br0 type bridge',
      'link set br0 up',
      'link set gw master br0',
      'link set gw up',
      ...topo.clients.flatMap((c, i) => [`link add name c${i + 1} type veth peer name eth0 netns ${c.ns}`, `link set c${i + 1} master br0`, `link set c${i + 1} up`]),
    ]);
    for (const client of topo.clients) {
      await batch(runner, client.ns, ['link set lo up', `addr add ${client.ip}/${LAN_PREFIX} dev eth0`, 'link set eth0 up', `route add default via ${topo.lanAddress}`]);
    }
    if (topo.ipv6) await buildIpv6(runner, topo);
    return topo;
  } catch (error) {
    await destroyTopology(runner, topo);
    throw error;
  }
}

/**
 * The dual-stack part, once every link exists: the gateway's IPv6 addresses,
 * the internet host's, the ISPs' advertisements on the customer links, the
 * site's radvd for the LAN (hosts take fd00:18::/64 addresses and the
 * gateway as their router), hosts without duplicate address detection (their
 * addresses are usable at once).
 */
async function buildIpv6(runner: Runner, topo: Topology): Promise<void> {
  const v6 = topo.ipv6 as LabIpv6;
  await mkdir(v6.dir, { recursive: true, mode: 0o700 });
  await batch(runner, topo.inet, [`addr add ${v6.server}/128 dev lo nodad`]);
  await batch(runner, topo.gw, [`addr add ${v6.lanAddress}/64 dev ${topo.lanInterface} nodad`, ...topo.uplinks.flatMap((u, k) => uplinkLines6(u, k).gw)]);
  // The LAN's router takes no advertisements on the LAN (not even its own radvd's, looped back).
  await sysctl(runner, topo.gw, { [`net.ipv6.conf.${topo.lanInterface}.accept_ra`]: '0' });
  for (const uplink of topo.uplinks) if (uplink.ipv6) await advertise(runner, v6.dir, uplink.isp, uplink.ispInterface, null);
  // Addresses usable at once: no duplicate address detection on the hosts (set before their first advertisement).
  for (const client of topo.clients) await sysctl(runner, client.ns, { 'net.ipv6.conf.eth0.accept_dad': '0' });
  await advertise(runner, v6.dir, topo.gw, topo.lanInterface, v6.lanPrefix);
}

/** Kills every process left in the lab's namespaces, then deletes them (and the dual-stack lab's radvd configs). Safe to call twice. */
export async function destroyTopology(runner: Runner, topo: Pick<Topology, 'namespaces'> & { readonly ipv6?: LabIpv6 | null }): Promise<void> {
  if (topo.ipv6) await rm(topo.ipv6.dir, { recursive: true, force: true });
  const existing = (await runner.run(['ip', 'netns', 'list'])).stdout.split('\n').map((line) => line.split(' ')[0]);
  const ours = topo.namespaces.filter((ns) => existing.includes(ns));
  for (const ns of ours) {
    const pids = (await runner.run(['ip', 'netns', 'pids', ns], { okExitCodes: [0, 1] })).stdout.split('\n').filter((p) => /^[0-9]+$/.test(p));
    if (pids.length > 0) await runner.run(['kill', '-KILL', ...pids], { okExitCodes: [0, 1] });
  }
  await batch(
    runner,
    null,
    ours.map((ns) => `netns delete ${ns}`),
  );
}

/** Runs a command inside one of the lab's namespaces. */
export function inNamespace(ns: string, argv: readonly string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

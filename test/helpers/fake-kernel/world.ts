// The fake kernel's model and the world around the gateway: links with
// their addresses (and the routes the kernel adds with them), neighbours,
// sysctls, connections, and the tools' state (fake-kernel/*.ts). Tests change
// the world through the helpers here (a cable pulled, a client arriving, a
// line gone silent), and the running monitors hear of it as the real ones would.

import { Ipsets } from './ipset.js';
import { addressEventLine, broadcastOf, type Address, type Link, type LinkKind, linkEventLine, type Neighbour, neighbourLine } from './links.js';
import { Netfilter } from './netfilter.js';
import type { FakeProcess } from './processes.js';
import { Routing } from './routing.js';
import type { Connection } from './tools.js';

export type Monitor = 'neigh' | 'link';

/** Global sysctls a fresh kernel has (per-interface ones come and go with their links). */
const GLOBAL_SYSCTLS: Readonly<Record<string, string>> = {
  'net.ipv4.ip_forward': '0',
  'net.ipv4.conf.all.rp_filter': '0',
  'net.ipv4.conf.default.rp_filter': '0',
  'net.ipv4.neigh.default.gc_thresh1': '128',
  'net.ipv4.neigh.default.gc_thresh2': '512',
  'net.ipv4.neigh.default.gc_thresh3': '1024',
};

export class KernelModel {
  links: Link[] = [];
  neighbours: Neighbour[] = [];
  routing = new Routing(() => this.links);
  netfilter = new Netfilter();
  /** ip6tables' tables: a second model of the same kind (the tools share no state). */
  netfilter6 = new Netfilter();
  ipsets = new Ipsets();
  sysctls = new Map<string, string>(Object.entries(GLOBAL_SYSCTLS));
  connections: Connection[] = [];
  readonly processes: FakeProcess[] = [];
  /** Probe targets (or interfaces) that do not answer: a line dead beyond the modem. */
  readonly silent = new Set<string>();

  /** A fresh network namespace has lo, down; a gateway's is up with 127.0.0.1. */
  constructor(loopbackUp = true) {
    this.routing.defaultRules();
    this.addLink('lo', 'loopback', '00:00:00:00:00:00', loopbackUp);
    if (loopbackUp) this.addAddress('lo', '127.0.0.1', 8);
  }

  /** A stable, locally administered MAC for an address or a name. */
  macFor(seed: string): string {
    let h = 0x811c9dc5;
    for (const char of seed) h = Math.imul(h ^ char.charCodeAt(0), 0x01000193) >>> 0;
    return `02:00:${[h >>> 24, (h >>> 16) & 255, (h >>> 8) & 255, h & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
  }

  // ---- the world around the gateway (what tests change; monitors hear of it) ----

  addLink(name: string, kind: LinkKind, mac = this.macFor(name), up = true): Link {
    if (this.links.some((l) => l.name === name)) throw new Error(`fake kernel: link ${name} exists`);
    const link: Link = { index: Math.max(0, ...this.links.map((l) => l.index)) + 1, name, kind, mac, up, carrier: true, addresses: [], rxBytes: 0, txBytes: 0 };
    this.links.push(link);
    this.sysctls.set(`net.ipv4.conf.${name}.rp_filter`, '0');
    this.emit('link', linkEventLine(link));
    return link;
  }

  link(name: string): Link {
    const link = this.links.find((l) => l.name === name);
    if (!link) throw new Error(`fake kernel: no link ${name}`);
    return link;
  }

  /** Adds an address and the routes the kernel adds with it (connected route in main, local and broadcast in local). */
  addAddress(name: string, local: string, prefixlen: number, peer?: string): void {
    const link = this.link(name);
    const address: Address = { local, prefixlen, ...(peer !== undefined ? { peer } : {}) };
    link.addresses.push(address);
    const host = { dev: name, weight: 1, onlink: false };
    const kernel = { type: 'unicast', protocol: 'kernel', prefsrc: local };
    const network = peer !== undefined ? `${peer}/32` : this.network(local, prefixlen);
    if (link.kind !== 'loopback') this.routing.routes.push({ ...kernel, table: 'main', dst: network, scope: 'link', hops: [host] });
    this.routing.routes.push({ ...kernel, table: 'local', type: 'local', dst: link.kind === 'loopback' ? this.network(local, prefixlen) : `${local}/32`, scope: 'host', hops: [host] });
    if (link.kind === 'loopback') this.routing.routes.push({ ...kernel, table: 'local', type: 'local', dst: `${local}/32`, scope: 'host', hops: [host] });
    const brd = broadcastOf(address);
    if (brd) this.routing.routes.push({ ...kernel, table: 'local', type: 'broadcast', dst: `${brd}/32`, scope: 'link', hops: [host] });
    this.emit('link', addressEventLine(link, address));
  }

  private network(local: string, prefixlen: number): string {
    const n = local.split('.').reduce((acc, p) => acc * 256 + Number(p), 0);
    const mask = prefixlen === 0 ? 0 : (0xffffffff << (32 - prefixlen)) >>> 0;
    const net = (n & mask) >>> 0;
    return `${[net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join('.')}/${prefixlen}`;
  }

  /** Carrier lost or back (a cable, a modem): routes over it print `linkdown`; link monitors hear of it. */
  setCarrier(name: string, carrier: boolean): void {
    const link = this.link(name);
    link.carrier = carrier;
    this.emit('link', linkEventLine(link));
  }

  /** A link taken away (ppp hung up): its addresses, routes, neighbours and sysctls go with it. */
  removeLink(name: string): void {
    const link = this.link(name);
    for (const address of link.addresses) this.emit('link', addressEventLine(link, address, true));
    this.links = this.links.filter((l) => l !== link);
    this.routing.routes = this.routing.routes.filter((r) => !r.hops.some((h) => h.dev === name));
    this.neighbours = this.neighbours.filter((n) => n.dev !== name);
    for (const key of [...this.sysctls.keys()]) if (key.startsWith(`net.ipv4.conf.${name}.`)) this.sysctls.delete(key);
    this.emit('link', `Deleted ${linkEventLine(link)}`);
  }

  /** A neighbour appears (a client's first packet): in the table, and on `ip monitor neigh`. */
  addNeighbour(ip: string, dev: string, mac = this.macFor(ip), state = 'REACHABLE'): void {
    this.neighbours = this.neighbours.filter((n) => !(n.ip === ip && n.dev === dev));
    const neighbour = { ip, dev, mac, state };
    this.neighbours.push(neighbour);
    this.emit('neigh', neighbourLine(neighbour).trimEnd());
  }

  /** Running monitors of one kind (`ip monitor neigh`, `ip monitor link address`). */
  monitors(kind: Monitor): FakeProcess[] {
    return this.processes.filter((p) => p.alive && p.argv.includes('monitor') && p.argv.includes(kind));
  }

  /** Prints a line on every running monitor of that kind. */
  emit(kind: Monitor, line: string): void {
    for (const process of this.monitors(kind)) process.print(line);
  }

  /** A link set up or down by its administrator (`ip link set dev X up|down`). */
  setUp(name: string, up: boolean): void {
    const link = this.link(name);
    link.up = up;
    this.emit('link', linkEventLine(link));
  }

  /** Whether a probe to `target` through `iface` is answered now. */
  answers(target: string, iface: string | undefined): boolean {
    if (this.silent.has(target) || (iface !== undefined && this.silent.has(iface))) return false;
    if (iface === undefined) return true;
    const link = this.links.find((l) => l.name === iface);
    return link?.up === true && link.carrier && link.addresses.length > 0;
  }
}

// What the namespace tests that build their own topology with plain `ip`
// commands share (independent.test.ts, ipv6.test.ts, ipv6-prefix.test.ts):
// running a command in a namespace, loading `ip -batch` lines into one,
// deleting the namespaces with every process in them (a radvd the dispatcher
// started, say), and the small inline programs their hosts run — a server
// that answers with the source address it sees, a fetch from a chosen source,
// a bounded UDP stream — which share nothing with the lab agent.

import type { Runner } from '../../src/system/exec.js';

export interface PlainNamespaces {
  /** `ip -n NS -batch -` of these lines. */
  ip(ns: string, ...lines: string[]): Promise<void>;
  /** A command's stdout, run in the namespace; `ok`: the exit codes that are no failure. */
  inNs(ns: string, argv: string[], ok?: number[]): Promise<string>;
  /** Kills every process in the namespaces that exist, then deletes them. */
  teardown(): Promise<void>;
}

export function plainNamespaces(run: Runner, names: readonly string[]): PlainNamespaces {
  const inNs = async (ns: string, argv: string[], ok: number[] = [0]): Promise<string> => (await run.run(['ip', 'netns', 'exec', ns, ...argv], { okExitCodes: ok })).stdout;
  return {
    ip: async (ns, ...lines) => {
      await run.run(['ip', '-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
    },
    inNs,
    teardown: async () => {
      const existing = (await run.run(['ip', 'netns', 'list'])).stdout;
      for (const ns of names) {
        if (!existing.includes(ns)) continue;
        const pids = (await run.run(['ip', 'netns', 'pids', ns], { okExitCodes: [0, 1] })).stdout.split('\n').filter(Boolean);
        if (pids.length > 0) await run.run(['kill', '-KILL', ...pids], { okExitCodes: [0, 1] });
        await run.run(['ip', 'netns', 'delete', ns]);
      }
    },
  };
}

/**
 * A server on each address: HTTP on 8080 answers with the source it sees and
 * prints `up ADDRESS` once listening; with `udp`, UDP on 9000 prints each
 * datagram as `udp 4|6 MS SOURCE` (parseArrival), for a stream's gaps.
 */
export function sourceEchoServer(addresses: readonly string[], udp = false): string {
  return `for (const h of ${JSON.stringify(addresses)}) {
  require('http').createServer((q, s) => s.end(q.socket.remoteAddress)).listen(8080, h, () => console.log('up ' + h));
  ${udp ? "const u = require('dgram').createSocket(h.includes(':') ? 'udp6' : 'udp4'); u.on('message', (m, r) => console.log('udp ' + (h.includes(':') ? 6 : 4) + ' ' + Date.now() + ' ' + r.address)); u.bind(9000, h);" : ''}
}`;
}

export interface Arrival {
  readonly family: '4' | '6';
  readonly at: number;
  readonly from: string;
}

/** A line of sourceEchoServer's UDP half, or null for any other line. */
export function parseArrival(line: string): Arrival | null {
  const udp = /^udp (4|6) (\d+) (\S+)$/.exec(line);
  return udp ? { family: udp[1] as '4' | '6', at: Number(udp[2]), from: udp[3] as string } : null;
}

/** Prints what the server at `server` saw as the source of a request (from `local`, or the source the host chooses); exits 1 printing the error's code. */
export function fetchFrom(server: string, local?: string): string {
  return `require('http').get({ host: '${server}', port: 8080, ${local ? `localAddress: '${local}', ` : ''}timeout: 4000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b)); }).on('error', (e) => { console.error(e.code || e.message); process.exit(1); })`;
}

/**
 * 100 datagrams a second of each family to the servers' port 9000 for 5 s
 * (bounded): from the host's given addresses, or unbound (the host chooses
 * each datagram's source afresh).
 */
export function udpStream(to: { readonly v4: string; readonly v6: string }, from?: { readonly v4: string; readonly v6: string }): string {
  return `const d = require('dgram');
const a = d.createSocket('udp4'), b = d.createSocket('udp6');
let n = 0;
const go = () => { const t = setInterval(() => { a.send('x', 9000, '${to.v4}'); b.send('x', 9000, '${to.v6}'); if (++n >= 500) { clearInterval(t); setTimeout(() => { a.close(); b.close(); }, 50); } }, 10); };
${from ? `a.bind(0, '${from.v4}', () => b.bind(0, '${from.v6}', go));` : 'go();'}`;
}

/** Each family's largest gap between arrivals (ms), and where its last datagram came from. */
export function streamGaps(arrivals: readonly Arrival[]): { gaps: [number, number]; last: [string, string] } {
  const of = (family: '4' | '6'): Arrival[] => arrivals.filter((a) => a.family === family);
  const gap = (family: '4' | '6'): number => {
    const times = of(family).map((a) => a.at);
    return Math.max(...times.slice(1).map((at, i) => at - (times[i] as number)));
  };
  return { gaps: [gap('4'), gap('6')], last: [of('4').at(-1)?.from ?? '', of('6').at(-1)?.from ?? ''] };
}

/** The namespaces of the IPv6 tests' dual-stack topology. */
export interface DualStackNames {
  readonly router: string;
  readonly hostA: string;
  readonly hostB: string;
  readonly ispA: string;
  readonly ispB: string;
  readonly net: string;
}

/**
 * The IPv6 tests' topology, hosts left bare (each test sets them up its
 * way): the gateway (`router`) with a bridge `lan0` (198.18.0.1/24, plus
 * `lan6` when given) over one port per host (each host's end is `eth0`), and
 * two lines to two dual-stack providers: wan1 to isp A (192.0.2.66/30,
 * 2001:db8:a::2/64), wan2 to isp B (192.0.2.70/30, 2001:db8:b::2/64), each
 * provider's router fe80::1 on its link (two lines with the same IPv6 next
 * hop) and routed to the internet namespace, whose loopback holds
 * `internet`. `prefixes`: the prefix each provider routes to the gateway
 * (null: none); `bcp38`: each forwards from the gateway only the gateway's
 * own sources, as providers do.
 */
export async function buildDualStack(
  namespaces: PlainNamespaces,
  run: Runner,
  names: DualStackNames,
  options: { readonly lan6: string | null; readonly prefixes: readonly [string | null, string | null]; readonly bcp38?: boolean; readonly internet: readonly string[] },
): Promise<void> {
  const { ip, inNs } = namespaces;
  for (const ns of Object.values(names)) await run.run(['ip', 'netns', 'add', ns]);
  await ip(
    names.router,
    'link set lo up',
    'link add name lan0 type bridge',
    `link add name lanA type veth peer name eth0 netns ${names.hostA}`,
    `link add name lanB type veth peer name eth0 netns ${names.hostB}`,
    'link set lanA master lan0',
    'link set lanB master lan0',
    `link add name wan1 type veth peer name tocpe netns ${names.ispA}`,
    `link add name wan2 type veth peer name tocpe netns ${names.ispB}`,
    'addr add 198.18.0.1/24 dev lan0',
    ...(options.lan6 ? [`addr add ${options.lan6} dev lan0 nodad`] : []),
    'addr add 192.0.2.66/30 dev wan1',
    'addr add 2001:db8:a::2/64 dev wan1 nodad',
    'addr add 192.0.2.70/30 dev wan2',
    'addr add 2001:db8:b::2/64 dev wan2 nodad',
    'link set lanA up',
    'link set lanB up',
    'link set lan0 up',
    'link set wan1 up',
    'link set wan2 up',
    'route add default via 192.0.2.65 dev wan1',
    'route add default via 192.0.2.69 dev wan2 metric 100',
  );
  const isps = [
    { ns: names.ispA, mine: '192.0.2.65', theirs: '192.0.2.66', net6: '2001:db8:a::', transit: '203.0.113.2', netSide: '203.0.113.1', core6: ['2001:db8:fa::2', '2001:db8:fa::1'], prefix: options.prefixes[0] },
    { ns: names.ispB, mine: '192.0.2.69', theirs: '192.0.2.70', net6: '2001:db8:b::', transit: '203.0.113.6', netSide: '203.0.113.5', core6: ['2001:db8:fb::2', '2001:db8:fb::1'], prefix: options.prefixes[1] },
  ] as const;
  for (const isp of isps) {
    const tag = isp.ns.slice(-2);
    const routed = isp.prefix === null ? [] : [isp.prefix];
    await ip(
      isp.ns,
      'link set lo up',
      `link add name core type veth peer name from-${tag} netns ${names.net}`,
      `addr add ${isp.mine}/30 dev tocpe`,
      `addr add ${isp.net6}1/64 dev tocpe nodad`,
      'addr add fe80::1/64 dev tocpe nodad',
      `addr add ${isp.transit}/30 dev core`,
      `addr add ${isp.core6[0]}/64 dev core nodad`,
      'link set tocpe up',
      'link set core up',
      `route add default via ${isp.netSide}`,
      `route add default via ${isp.core6[1]}`,
      // The prefix delegated to the gateway, routed to its line address.
      ...routed.map((prefix) => `route add ${prefix} via ${isp.net6}2`),
    );
    await inNs(isp.ns, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    if (options.bcp38)
      await run.run(['ip', 'netns', 'exec', isp.ns, 'nft', '-f', '-'], {
        input: `table inet bcp38 {\n  chain filter {\n    type filter hook forward priority 0; policy accept;\n    iifname "tocpe" meta nfproto ipv6 ip6 saddr != { ${[`${isp.net6}/64`, ...routed].join(', ')} } drop\n  }\n}\n`,
      });
    await ip(
      names.net,
      `addr add ${isp.netSide}/30 dev from-${tag}`,
      `addr add ${isp.core6[1]}/64 dev from-${tag} nodad`,
      `link set from-${tag} up`,
      `route add ${isp.theirs}/32 via ${isp.transit}`,
      `route add ${isp.net6}/64 via ${isp.core6[0]}`,
      ...routed.map((prefix) => `route add ${prefix} via ${isp.core6[0]}`),
    );
  }
  await ip(names.net, 'link set lo up', ...options.internet.map((address) => `addr add ${address}/${address.includes(':') ? 128 : 32} dev lo${address.includes(':') ? ' nodad' : ''}`));
}

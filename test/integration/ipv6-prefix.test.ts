// IPv6 prefix mode with real Linux hosts: the dispatcher runs radvd on the
// LAN, announcing each line's /64; the hosts (plain namespaces, SLAAC, one
// with temporary addresses) autoconfigure an address in each. Each ISP routes
// its prefix to the gateway and drops any other source from it (BCP38, as
// providers do), so a packet that left by the wrong line never arrives. The
// internet host answers with the source it sees. What is measured: which
// prefix the hosts choose for new connections while a line's IPv6 dies and
// comes back (the deprecation by router advertisement), and how fast.
// Both netfilter backends (prefix mode loads no IPv6 packet filter: the
// nftables table is inet, so its IPv6 half must not get in the way).

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type DnsServer, startDnsServer } from '../../src/lab/dns.js';
import { DISPATCHER_BIN } from '../../src/lab/harness.js';
import { ExecaRunner, type Process } from '../../src/system/exec.js';
import { requireRoot, within } from '../helpers/lab.js';
import { runPrefix, runTempDir } from '../../src/lab/leftovers.js';
import { type Arrival, buildDualStack, fetchFrom, parseArrival, plainNamespaces, sourceEchoServer, streamGaps, udpStream } from '../helpers/namespaces.js';

jest.setTimeout(60_000);

const run = new ExecaRunner();
const P = runPrefix('pfx');
const NS = { router: `${P}r`, hostA: `${P}ha`, hostB: `${P}hb`, ispA: `${P}ia`, ispB: `${P}ib`, net: `${P}n` };
const SERVER4 = '198.51.100.200';
const SERVER6 = '2001:db8:ffff::200';
const TARGET6 = '2001:db8:ffff::100';
const PREFIXES = { isp1: '2001:db8:1:100::/64', isp2: '2001:db8:2:100::/64' } as const;
type Line = keyof typeof PREFIXES;
const HOSTS = [
  { ns: NS.hostA, v4: '198.18.0.10' },
  { ns: NS.hostB, v4: '198.18.0.11' },
];
/** The line whose prefix an address is in. */
const lineOf6 = (address: string): Line | 'none' => (address.startsWith('2001:db8:1:100:') ? 'isp1' : address.startsWith('2001:db8:2:100:') ? 'isp2' : 'none');
const other = (line: Line): Line => (line === 'isp1' ? 'isp2' : 'isp1');

const namespaces = plainNamespaces(run, Object.values(NS));
const { ip, inNs, teardown } = namespaces;

async function build(): Promise<void> {
  await buildDualStack(namespaces, run, NS, { lan6: null, prefixes: [PREFIXES.isp1, PREFIXES.isp2], bcp38: true, internet: [SERVER4, SERVER6, TARGET6] });
  for (const [i, host] of HOSTS.entries()) {
    // Plain SLAAC hosts (accept_ra is on by default); no duplicate address detection, so addresses are usable at once. Host A prefers temporary addresses.
    await inNs(host.ns, ['sysctl', '-q', '-w', 'net.ipv6.conf.eth0.accept_dad=0', `net.ipv6.conf.eth0.use_tempaddr=${i === 0 ? 2 : 0}`]);
    await ip(host.ns, 'link set lo up', `addr add ${host.v4}/24 dev eth0`, 'link set eth0 up', 'route add default via 198.18.0.1');
  }
}

/** The gateway's rules and routes of both families, its LAN addresses, the ruleset and the sysctls the dispatcher sets: what flush must put back exactly. */
async function kernel(): Promise<string> {
  const parts = await Promise.all([
    inNs(NS.router, ['nft', 'list', 'ruleset']),
    inNs(NS.router, ['ip', '-4', 'rule']),
    inNs(NS.router, ['ip', '-6', 'rule']),
    inNs(NS.router, ['ip', '-4', 'route', 'show', 'table', 'all']),
    inNs(NS.router, ['ip', '-6', 'route', 'show', 'table', 'all']).then((t) => t.replace(/ expires \S+/g, '')),
    inNs(NS.router, ['ip', '-6', 'addr', 'show', 'dev', 'lan0']),
    inNs(NS.router, ['sysctl', 'net.ipv4.ip_forward', 'net.ipv6.conf.all.forwarding', 'net.ipv6.conf.wan1.accept_ra', 'net.ipv6.conf.wan2.accept_ra']),
  ]);
  return parts.join('\n----\n');
}

/** A host's global IPv6 addresses with their state ("deprecated" or not), from `ip -6 addr`. */
async function addresses(ns: string): Promise<{ address: string; line: Line | 'none'; temporary: boolean; deprecated: boolean }[]> {
  const listed = await inNs(ns, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']);
  return listed
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const address = /inet6 (\S+)\/64/.exec(line)?.[1] ?? '';
      return { address, line: lineOf6(address), temporary: line.includes('temporary'), deprecated: line.includes('deprecated') };
    });
}

describe.each(['nftables', 'iptables'] as const)('IPv6 prefix mode: each line announced, deprecated while it is down (%s)', (backend) => {
  let dir: string;
  let config: string;
  let daemon: Process | null = null;
  let server: Process | null = null;
  let dns: DnsServer | null = null;
  let before: string;
  const arrivals: Arrival[] = [];
  const cli = async (args: string[], ok: number[] = [0]): Promise<string> => inNs(NS.router, [process.execPath, DISPATCHER_BIN, '--config', config, ...args], ok);
  const status6 = async (line: Line): Promise<{ state: string; announced: { prefix: string; preferred: boolean } | null }> =>
    JSON.parse(await cli(['status', '--json'])).uplinks.find((u: { name: string }) => u.name === line)?.ipv6;
  const radvdPid = async (): Promise<string> => (await inNs(NS.router, ['cat', join(dir, 'state', 'radvd.pid')], [0, 1])).trim();
  const start = async (): Promise<void> => {
    daemon = run.spawn(['ip', 'netns', 'exec', NS.router, process.execPath, DISPATCHER_BIN, '--config', config, 'start']);
    await within(10_000, 'the daemon answers', async () => (await cli(['status'], [0, 1])).startsWith('dispatcher '));
  };
  const stop = async (): Promise<void> => {
    daemon?.stop('SIGTERM');
    expect(await daemon?.ended).toBe(0);
    daemon = null;
  };
  /** Where a host's new connection (no source asked for) comes from, as the internet host sees it. */
  const seenFrom = async (ns: string): Promise<string> => (await inNs(ns, [process.execPath, '-e', fetchFrom(SERVER6)])).trim();

  beforeAll(async () => {
    requireRoot();
    await teardown();
    await build();
    dir = await runTempDir('pfx');
    config = join(dir, 'gateway.yaml');
    dns = await startDnsServer(run, { inet: NS.net }, join(dir, 'dns'));
    await writeFile(
      config,
      [
        'lan:',
        '  interfaces: [lan0]',
        '  ipv6: { mode: prefix }',
        'uplinks:',
        '  - name: isp1',
        '    interface: wan1',
        `    ipv6: { gateway: fe80::1, prefix: ${PREFIXES.isp1}, probe: { targets: [${TARGET6}] } }`,
        '  - name: isp2',
        '    interface: wan2',
        `    ipv6: { gateway: fe80::1, prefix: ${PREFIXES.isp2}, probe: { targets: [${TARGET6}] } }`,
        `netfilter: { backend: ${backend} }`,
        'health: { interval: 100ms, down: 3, up: 3 }',
        `ddns: { server: ${dns.address}, zone: ${dns.zone}, name: gw.${dns.zone}, key: ${dns.keyFile}, ttl: 60 }`,
        `state: ${dir}/state`,
        `socket: ${dir}/ctl.sock`,
        '',
      ].join('\n'),
    );
    let up = 0;
    server = run.spawn(['ip', 'netns', 'exec', NS.net, process.execPath, '-e', sourceEchoServer([SERVER4, SERVER6], true)], {
      onLine: (line) => {
        if (line.startsWith('up ')) up += 1;
        const arrival = parseArrival(line);
        if (arrival) arrivals.push(arrival);
      },
    });
    await within(5000, 'servers up', async () => up === 2);
    await within(5000, 'no tentative address left', async () => (await inNs(NS.router, ['ip', '-6', 'addr', 'show', 'tentative'])).trim() === '');
    before = await kernel();
  });

  afterAll(async () => {
    daemon?.stop('SIGKILL');
    server?.stop('SIGKILL');
    dns?.process.stop('SIGKILL');
    await teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test("the hosts autoconfigure an address in each line's prefix from the radvd the dispatcher runs, and each prefix leaves by its own line", async () => {
    await start();
    for (const host of HOSTS)
      await within(10_000, `${host.ns} has an address in both prefixes`, async () => {
        const lines = new Set((await addresses(host.ns)).filter((a) => !a.deprecated).map((a) => a.line));
        return lines.has('isp1') && lines.has('isp2');
      });
    // Host A prefers temporary (privacy) addresses, made by its kernel in the announced prefixes. Not always one
    // per prefix: a prefix first heard deprecated (its line's IPv6 verdict not in yet) gets none while another
    // prefix has one (net/ipv6/addrconf.c manage_tempaddrs), until the next regeneration hours later.
    const temporary = async (): Promise<string[]> =>
      (await addresses(NS.hostA))
        .filter((a) => a.temporary)
        .map((a) => a.line)
        .sort();
    await within(5000, 'host A has a temporary address', async () => (await temporary()).length > 0);
    for (const line of await temporary()) expect(['isp1', 'isp2']).toContain(line);
    expect(await inNs(NS.router, ['ip', '-6', 'addr', 'show', 'dev', 'lan0'])).toMatch(
      /2001:db8:1:100::1\/64 metric 4211[\s\S]*2001:db8:2:100::1\/64 metric 4211|2001:db8:2:100::1\/64 metric 4211[\s\S]*2001:db8:1:100::1\/64 metric 4211/,
    );
    expect((await status6('isp1')).announced).toEqual({ prefix: PREFIXES.isp1, preferred: true });
    // Every address of every host, asked for explicitly as the source, reaches the internet as itself, by its prefix's line
    // (the providers drop any other source: a wrong line would not arrive at all).
    for (const host of HOSTS) {
      for (const { address } of await addresses(host.ns)) expect((await inNs(host.ns, [process.execPath, '-e', fetchFrom(SERVER6, address)])).trim()).toBe(address);
      expect(lineOf6(await seenFrom(host.ns))).not.toBe('none');
    }
    const rules6 = await inNs(NS.router, ['ip', '-6', 'rule']);
    expect(rules6).toContain(`from ${PREFIXES.isp1} lookup 3165 proto 211`);
    expect(rules6).toContain(`from ${PREFIXES.isp2} lookup 3166 proto 211`);
    expect(await inNs(NS.router, ['ip', '-6', 'route', 'show', 'table', '3166'])).toContain('default via fe80::1 dev wan2');
  });

  test("the DNS name holds the gateway's address in each live line's prefix, and the gateway answers at each from the internet", async () => {
    const name = `gw.${dns?.zone}`;
    const aaaa = ['2001:db8:1:100::1', '2001:db8:2:100::1'];
    await within(5000, 'the AAAA records published', async () => JSON.stringify(await dns?.records(name, 'AAAA')) === JSON.stringify(aaaa));
    let listening = false;
    const service = run.spawn(['ip', 'netns', 'exec', NS.router, process.execPath, '-e', "require('http').createServer((q, s) => s.end('gateway ' + q.socket.localAddress)).listen(8081, '::', () => console.log('listening'))"], {
      onLine: (line) => {
        if (line === 'listening') listening = true;
      },
    });
    try {
      await within(5000, 'the service on the gateway', async () => listening);
      for (const address of aaaa) {
        const get = `require('http').get({ host: '${address}', port: 8081, timeout: 4000 }, (r) => { let b = ''; r.on('data', (d) => (b += d)); r.on('end', () => console.log(b)); }).on('error', (e) => { console.error(e.message); process.exit(1); })`;
        // The reply leaves from that address, so by that address's line (the providers' filters would drop it elsewhere).
        expect((await inNs(NS.net, [process.execPath, '-e', get])).trim()).toBe(`gateway ${address}`);
      }
    } finally {
      service.stop('SIGKILL');
    }
  });

  test('explain for an address in a prefix: its line, the source rule, the prefix table, and the kernel sending it by that line', async () => {
    const address = (await addresses(NS.hostB)).find((a) => a.line === 'isp2')?.address as string;
    const result = JSON.parse(await cli(['explain', address, '--json']));
    expect(result).toMatchObject({ ip: address, verdict: 'assigned', pool: 'isp2' });
    expect(result.steps.join('\n')).toContain(`from ${PREFIXES.isp2} lookup 3166`);
    expect(result.kernel.answer).toContain('dev wan2');
  });

  test('a steady gateway plans nothing', async () => {
    expect(await cli(['plan'])).toContain('nothing to change');
  });

  test("a silent IPv6 blackhole on the line the hosts use: its prefix is deprecated, the hosts' new connections take the other line's within 2 s, its own are refused at once, IPv4 stays; and it all comes back", async () => {
    const first = await seenFrom(NS.hostA);
    const dead = lineOf6(first) as Line;
    const alive = other(dead);
    const isp = dead === 'isp1' ? NS.ispA : NS.ispB;
    arrivals.length = 0;
    const stream = run.spawn(['ip', 'netns', 'exec', NS.hostA, process.execPath, '-e', udpStream({ v4: SERVER4, v6: SERVER6 })]);
    await within(3000, 'the stream arrives in both families', async () => arrivals.some((a) => a.family === '4') && arrivals.some((a) => a.family === '6'));
    await new Promise((resolve) => setTimeout(resolve, 500));
    // The line's router drops IPv6 alone; its link stays up, so only the IPv6 probes can tell.
    await run.run(['ip', 'netns', 'exec', isp, 'nft', '-f', '-'], {
      input: 'table inet dead6 {\n  chain in {\n    type filter hook prerouting priority -300; policy accept;\n    iifname "tocpe" meta nfproto ipv6 drop\n  }\n}\n',
    });
    const deprecated = await within(3000, `host A's ${dead} addresses deprecated`, async () => (await addresses(NS.hostA)).filter((a) => a.line === dead).every((a) => a.deprecated));
    process.stdout.write(`ipv6 prefix (${backend}): ${dead}'s prefix deprecated on the host ${deprecated.toFixed(0)} ms after its router dropped IPv6\n`);
    expect(await stream.ended).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const { gaps, last } = streamGaps(arrivals);
    process.stdout.write(`ipv6 prefix (${backend}): the host's unbound stream: largest gap IPv4 ${gaps[0]} ms, IPv6 ${gaps[1]} ms (new sources from ${alive}'s prefix)\n`);
    expect(gaps[1]).toBeLessThanOrEqual(2000);
    expect(gaps[0]).toBeLessThan(500);
    expect(lineOf6(last[1])).toBe(alive);
    expect(lineOf6(await seenFrom(NS.hostA))).toBe(alive);
    expect(lineOf6(await seenFrom(NS.hostB))).toBe(alive);
    expect((await status6(dead)).announced).toEqual({ prefix: PREFIXES[dead], preferred: false });
    // A connection asked for from the dead prefix is refused by the gateway at once (ICMPv6), not left to time out.
    const fromDead = (await addresses(NS.hostA)).find((a) => a.line === dead)?.address as string;
    const t0 = performance.now();
    const refused = await run.run(['ip', 'netns', 'exec', NS.hostA, process.execPath, '-e', fetchFrom(SERVER6, fromDead)], { okExitCodes: [1] });
    const refusedMs = performance.now() - t0;
    process.stdout.write(`ipv6 prefix (${backend}): a connection from the deprecated prefix refused after ${refusedMs.toFixed(0)} ms (${refused.stderr.trim()})\n`);
    expect(refused.stderr).toMatch(/ENETUNREACH|EHOSTUNREACH/);
    // Node's start included; the first SYN's ICMPv6 error may fall to the gateway's ICMPv6 rate limit, the retransmit's does not.
    expect(refusedMs).toBeLessThan(5000);
    const name = `gw.${dns?.zone}`;
    await within(3000, `${dead}'s AAAA record withdrawn`, async () => JSON.stringify(await dns?.records(name, 'AAAA')) === JSON.stringify([`${PREFIXES[alive].split('/')[0]}1`]));
    await inNs(isp, ['nft', 'delete', 'table', 'inet', 'dead6']);
    const back = await within(8000, `${dead}'s prefix preferred again on the host`, async () => (await addresses(NS.hostA)).filter((a) => a.line === dead).every((a) => !a.deprecated));
    process.stdout.write(`ipv6 prefix (${backend}): ${dead}'s prefix preferred again ${back.toFixed(0)} ms after its router forwarded IPv6 again\n`);
    expect((await inNs(NS.hostA, [process.execPath, '-e', fetchFrom(SERVER6, fromDead)])).trim()).toBe(fromDead);
    await within(3000, `${dead}'s AAAA record back`, async () => (await dns?.records(name, 'AAAA'))?.length === 2);
  });

  test('a restart changes nothing (the same radvd goes on); stop and flush put the kernel back exactly, stop radvd, and its last advertisement deprecates the prefixes', async () => {
    const running = await kernel();
    const pid = await radvdPid();
    expect(pid).toMatch(/^\d+$/);
    await stop();
    await start();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const strip = (text: string): string => text.replace(/counter packets \d+ bytes \d+/g, 'counter');
    expect(strip(await kernel())).toBe(strip(running));
    expect(await radvdPid()).toBe(pid);
    expect(await cli(['plan'])).toContain('nothing to change');
    await stop();
    expect(await cli(['flush'])).toContain('stopped radvd');
    expect(await kernel()).toBe(before);
    expect(await radvdPid()).toBe('');
    const pids = (await run.run(['ip', 'netns', 'pids', NS.router], { okExitCodes: [0, 1] })).stdout.split('\n').filter(Boolean);
    const names = await Promise.all(pids.map((p) => inNs(NS.router, ['cat', `/proc/${p}/comm`], [0, 1])));
    expect(names.map((n) => n.trim())).not.toContain('radvd');
    await within(3000, "the hosts' addresses deprecated by radvd's last advertisement", async () => (await addresses(NS.hostB)).every((a) => a.deprecated));
  });
});

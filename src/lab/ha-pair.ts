// A pair of gateways in namespaces (issue 21), for `dispatcher lab --ha` and
// the namespace test of a pair: LAN clients on one bridge with both
// gateways' LAN legs, three lines reachable from both gateways, a sync link
// between them, and in each gateway the real conntrackd, keepalived and
// dispatcher, run with what `dispatcher ha render` writes.
//
//   c1…cN ── lan (bridge) ──┬── a:lan0 ─ a ─ wan1, wan2, ppp0 ─┐   isp1 (bridge; 198.51.100.0/26,
//                           └── b:lan0 ─ b ─ wan1, wan2, ppp0 ─┤         shared address .10)
//                               a:sync0 ══ b:sync0             │   isp2 (bridge; 198.51.100.64/26,
//                                                              │         each gateway its own address)
//                                                              └── isp3 (a session only the master holds)
//
// The three lines are the three kinds a pair has (README, "A pair of
// gateways"): isp1 an ethernet line with a shared address (its connections
// survive a takeover), isp2 one where each gateway has its own address (a
// DHCP lease each: pools survive, connections do not), isp3 a point-to-point
// session only the master may hold (PPPoE: the new master dials). Every ISP
// answers on the same internet address with the source it saw, so an answer
// says which line it came by.

import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PoolsReport, Status } from '../schema/control.js';
import { ExecaRunner, type Process, type RunResult } from '../system/exec.js';
import { DAEMON_NODE_FLAGS } from '../render/systemd-unit.js';
import { AGENT, DISPATCHER_BIN, waitFor } from './harness.js';
import { type Arrival, longestGap, streamArrivals } from './lab.js';
import { runPrefix, runTempDir } from './leftovers.js';
import { destroyTopology, inNamespace, SERVER_ADDRESS, sysctl } from './topology.js';

export type GatewayName = 'a' | 'b';

export interface PairGateway {
  readonly name: GatewayName;
  readonly ns: string;
  readonly lan: string;
  readonly wan1: string;
  readonly wan2: string;
  readonly sync: string;
  readonly peer: string;
  readonly priority: number;
}

export interface PairClient {
  readonly ns: string;
  readonly ip: string;
}

export interface PairOptions {
  readonly clients?: number;
  /** ha.preempt: the gateway of higher priority (a) takes the role back when it returns. */
  readonly preempt?: boolean;
  /** Who makes the pair, in its names: lower-case letters. */
  readonly tag?: string;
}

/** The address the clients use as their gateway. */
export const PAIR_LAN_ADDRESS = '198.18.0.1';
/** isp1's shared address: the master holds it, and its connections are translated to it. */
export const PAIR_SHARED = '198.51.100.10';
/** The point-to-point session's two ends (isp3). */
const SESSION = { local: '192.0.2.2', peer: '192.0.2.1' } as const;

/** Which line an address seen at the internet belongs to (each gateway's own on isp2). */
export function pairLineOf(address: string): string | undefined {
  if (address === PAIR_SHARED) return 'isp1';
  if (address === '198.51.100.66' || address === '198.51.100.67') return 'isp2';
  if (address === SESSION.local) return 'isp3';
  return undefined;
}

/** What a takeover measured (HaPair.takeover). */
export interface TakeoverFigures {
  readonly from: GatewayName;
  readonly to: GatewayName;
  /** From the master's death to the other holding every shared address. */
  readonly movedMs: number;
  /** When the TCP connection through isp1 answered again, with the source the server saw, and whether it was reset; null: it never answered. */
  readonly tcp: { readonly ms: number; readonly source: string; readonly reset: boolean } | null;
  /** Each client's longest silence in its stream, and the line its last datagram came by. */
  readonly gaps: readonly { readonly client: string; readonly gapMs: number; readonly last: string | undefined }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class HaPair {
  readonly runner = new ExecaRunner();
  readonly gateways: readonly PairGateway[];
  readonly clients: readonly PairClient[];
  readonly keepalived = new Map<GatewayName, Process>();
  readonly dispatchers = new Map<GatewayName, Process>();
  /** What each gateway's dispatcher printed (its log). */
  readonly logs = new Map<GatewayName, string[]>();
  private readonly others: Process[] = [];
  private takeovers = 0;
  /** What the servers behind the lines printed (stream datagrams: "udp …"). */
  private readonly serverLines: string[] = [];

  private constructor(
    readonly prefix: string,
    readonly dir: string,
    readonly ns: { readonly lan: string; readonly isp1: string; readonly isp2: string; readonly isp3: string },
    clients: number,
  ) {
    this.gateways = [
      { name: 'a', ns: `${prefix}a`, lan: '198.18.0.2/16', wan1: '198.51.100.2/26', wan2: '198.51.100.66/26', sync: '198.19.255.1/30', peer: '198.19.255.2', priority: 150 },
      { name: 'b', ns: `${prefix}b`, lan: '198.18.0.3/16', wan1: '198.51.100.3/26', wan2: '198.51.100.67/26', sync: '198.19.255.2/30', peer: '198.19.255.1', priority: 100 },
    ];
    this.clients = Array.from({ length: clients }, (_, i) => ({ ns: `${prefix}c${i + 1}`, ip: `198.18.0.${10 + i}` }));
  }

  get namespaces(): string[] {
    return [...this.gateways.map((g) => g.ns), ...Object.values(this.ns), ...this.clients.map((c) => c.ns)];
  }

  /** Builds the namespaces and writes each gateway's config (nothing runs yet). */
  static async create(options: PairOptions = {}): Promise<HaPair> {
    const prefix = runPrefix(options.tag ?? 'ha');
    const dir = await runTempDir(options.tag ?? 'ha');
    const pair = new HaPair(prefix, dir, { lan: `${prefix}l`, isp1: `${prefix}i1`, isp2: `${prefix}i2`, isp3: `${prefix}i3` }, options.clients ?? 3);
    try {
      await pair.build();
      await pair.writeConfigs(options.preempt ?? false);
    } catch (error) {
      await pair.destroy();
      throw error;
    }
    return pair;
  }

  gateway(name: GatewayName): PairGateway {
    return this.gateways.find((g) => g.name === name) as PairGateway;
  }

  other(name: GatewayName): GatewayName {
    return name === 'a' ? 'b' : 'a';
  }

  files(name: GatewayName) {
    return { config: join(this.dir, name, 'config.yaml'), rendered: join(this.dir, name, 'ha'), state: join(this.dir, name, 'state'), socket: join(this.dir, name, 'ctl.sock') };
  }

  private async ip(ns: string, ...lines: string[]): Promise<void> {
    await this.runner.run(['ip', '-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
  }

  private async build(): Promise<void> {
    const { lan, isp1, isp2, isp3 } = this.ns;
    for (const ns of this.namespaces) await this.runner.run(['ip', 'netns', 'add', ns]);
    await this.ip(lan, 'link set lo up', 'link add br0 type bridge', 'link set br0 up');
    for (const [isp, subnet] of [
      [isp1, '198.51.100.1/26'],
      [isp2, '198.51.100.65/26'],
    ] as const) {
      await this.ip(isp, 'link set lo up', `addr add ${SERVER_ADDRESS}/32 dev lo`, 'link add br0 type bridge', `addr add ${subnet} dev br0`, 'link set br0 up');
    }
    await this.ip(isp3, 'link set lo up', `addr add ${SERVER_ADDRESS}/32 dev lo`);
    // A dead gateway's session end (its link down) must not keep the route to the session's address.
    await sysctl(this.runner, isp3, { 'net.ipv4.conf.all.ignore_routes_with_linkdown': '1' });
    for (const [i, client] of this.clients.entries()) {
      await this.ip(lan, `link add c${i + 1} type veth peer name eth0 netns ${client.ns}`, `link set c${i + 1} master br0`, `link set c${i + 1} up`);
      await this.ip(client.ns, 'link set lo up', `addr add ${client.ip}/16 dev eth0`, 'link set eth0 up', `route add default via ${PAIR_LAN_ADDRESS}`);
    }
    await this.ip(this.gateway('a').ns, `link add sync0 type veth peer name sync0 netns ${this.gateway('b').ns}`);
    for (const gw of this.gateways) {
      await this.ip(
        gw.ns,
        'link set lo up',
        `link add lan0 type veth peer name ${gw.name}-lan netns ${lan}`,
        `link add wan1 type veth peer name ${gw.name}-wan netns ${isp1}`,
        `link add wan2 type veth peer name ${gw.name}-wan netns ${isp2}`,
        // The session line: down until this gateway, as master, dials it.
        `link add ppp0 type veth peer name ${gw.name}-ppp netns ${isp3}`,
        `addr add ${gw.lan} dev lan0`,
        `addr add ${gw.wan1} dev wan1`,
        `addr add ${gw.wan2} dev wan2`,
        `addr add ${gw.sync} dev sync0`,
        'link set lan0 up',
        'link set wan1 up',
        'link set wan2 up',
        'link set sync0 up',
      );
      await this.ip(lan, `link set ${gw.name}-lan master br0`, `link set ${gw.name}-lan up`);
      for (const isp of [isp1, isp2]) await this.ip(isp, `link set ${gw.name}-wan master br0`, `link set ${gw.name}-wan up`);
    }
  }

  private async writeConfigs(preempt: boolean): Promise<void> {
    const key = join(this.dir, 'ha.key');
    await writeFile(key, 'an-example-key-of-the-pair-0123456789\n', { mode: 0o600 });
    for (const gw of this.gateways) {
      const { config, state, socket } = this.files(gw.name);
      await this.runner.run(['mkdir', '-p', join(this.dir, gw.name)]);
      // Run by this gateway's dispatcher, in its namespace.
      const agent = (...args: string[]) => JSON.stringify([process.execPath, AGENT, ...args]);
      await writeFile(
        config,
        [
          '# A gateway of the lab pair (dispatcher lab --ha): three lines, one of each kind a pair has.',
          'lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }',
          'uplinks:',
          '  # Ethernet, a shared address the master holds: connections survive a takeover.',
          `  - { name: isp1, interface: wan1, gateway: 198.51.100.1, ha_address: ${PAIR_SHARED}/26 }`,
          '  # Ethernet, each gateway its own address (a DHCP lease each): the pool survives a takeover, its connections start again.',
          '  - { name: isp2, interface: wan2, gateway: 198.51.100.65 }',
          '  # A session only the master holds (PPPoE): the new master dials; the lab simulates pppd.',
          '  - name: isp3',
          '    interface: ppp0',
          `    ha_connect: ${agent('dial', 'ppp0', SESSION.local, SESSION.peer, this.ns.isp3, `${gw.name}-ppp`)}`,
          `    ha_disconnect: ${agent('hangup', 'ppp0', this.ns.isp3, `${gw.name}-ppp`)}`,
          `state: ${state}`,
          `socket: ${socket}`,
          `ha: { peer: ${gw.peer}, interface: sync0, key: ${key}, lan_address: ${PAIR_LAN_ADDRESS}/16, priority: ${gw.priority}, preempt: ${preempt} }`,
          '',
        ].join('\n'),
      );
    }
  }

  /** The dispatcher CLI in a gateway's namespace. */
  cli(name: GatewayName, args: readonly string[], okExitCodes: readonly number[] = [0]): Promise<RunResult> {
    return this.runner.run(inNamespace(this.gateway(name).ns, [process.execPath, DISPATCHER_BIN, '--config', this.files(name).config, ...args]), { okExitCodes });
  }

  async status(name: GatewayName): Promise<Status> {
    return JSON.parse((await this.cli(name, ['status', '--json'])).stdout) as Status;
  }

  /** Each client's pool as a gateway has it. */
  async pools(name: GatewayName): Promise<Map<string, string>> {
    const report = JSON.parse((await this.cli(name, ['pools', '--json'])).stdout) as PoolsReport;
    return new Map(report.uplinks.flatMap((u) => u.clients.map((c) => [c, u.name] as const)));
  }

  /** `dispatcher ha render` in each gateway, then conntrackd with what it wrote; waits until each answers. */
  async startConntrackd(): Promise<void> {
    for (const gw of this.gateways) {
      const { rendered } = this.files(gw.name);
      await this.cli(gw.name, ['ha', 'render', '--dir', rendered]);
      this.others.push(this.runner.spawn(inNamespace(gw.ns, ['conntrackd', '-C', join(rendered, 'conntrackd.conf')])));
    }
    for (const gw of this.gateways) {
      const conf = join(this.files(gw.name).rendered, 'conntrackd.conf');
      await waitFor(`conntrackd of ${gw.name} to answer`, 10_000, async () => ((await this.runner.run(inNamespace(gw.ns, ['conntrackd', '-C', conf, '-s']), { okExitCodes: [0, 1] })).exitCode === 0 ? true : null));
    }
  }

  /**
   * Starts a gateway's dispatcher and waits until it answers: fenced (no role
   * yet), or with `resumes`, in the role its running keepalived gave before.
   */
  async startDispatcher(name: GatewayName, resumes?: 'master' | 'backup'): Promise<void> {
    const logs: string[] = [];
    this.logs.set(name, logs);
    const gw = this.gateway(name);
    const process_ = this.runner.spawn(inNamespace(gw.ns, [process.execPath, ...DAEMON_NODE_FLAGS, DISPATCHER_BIN, '--config', this.files(name).config, 'start']), { onLine: (l) => logs.push(l), onErrorLine: (l) => logs.push(l) });
    this.dispatchers.set(name, process_);
    await waitFor(`the dispatcher of ${name} to answer, ${resumes ?? 'fenced'}`, 20_000, async () => {
      if ((await this.cli(name, ['status'], [0, 1])).exitCode !== 0) return null;
      return (resumes ? (await this.role(name)) === resumes && (await this.fenced(name)) === (resumes !== 'master') : await this.fenced(name)) ? true : null;
    });
  }

  /** Starts a gateway's keepalived with the rendered config (its pid files under the state directory, so two on one host do not collide). */
  startKeepalived(name: GatewayName): void {
    const { rendered, state } = this.files(name);
    const runtime = join(state, 'ha');
    const argv = ['keepalived', '-n', '-l', '-P', '-f', join(rendered, 'keepalived.conf'), '-p', join(runtime, 'keepalived.pid'), '-r', join(runtime, 'vrrp.pid'), '-c', join(runtime, 'checkers.pid')];
    this.keepalived.set(name, this.runner.spawn(inNamespace(this.gateway(name).ns, argv)));
  }

  /** Everything, in the order a gateway's boot would: conntrackd, the dispatchers (fenced), keepalived; returns once one is master. */
  async start(): Promise<GatewayName> {
    await this.startConntrackd();
    for (const gw of this.gateways) await this.startDispatcher(gw.name);
    for (const gw of this.gateways) this.startKeepalived(gw.name);
    return waitFor('one master, its fence lifted, the other fenced', 15_000, async () => {
      const held = await this.holders(PAIR_LAN_ADDRESS);
      if (held.length !== 1) return null;
      const master = held[0] as GatewayName;
      return (await this.role(master)) === 'master' && !(await this.fenced(master)) && (await this.fenced(this.other(master))) ? master : null;
    });
  }

  /** The servers behind every line (each answers with the source it sees). */
  async startServers(): Promise<void> {
    for (const isp of [this.ns.isp1, this.ns.isp2, this.ns.isp3]) {
      let up = false;
      const onLine = (line: string) => (line === 'serving' ? (up = true) : this.serverLines.push(line));
      this.others.push(this.runner.spawn(inNamespace(isp, [process.execPath, AGENT, 'serve']), { onLine }));
      await waitFor(`the server behind ${isp}`, 10_000, async () => (up ? true : null));
    }
  }

  /** A numbered UDP stream from a client to the internet (RATE a second for SECONDS); resolves once sent. */
  stream(client: PairClient, tag: string, rate: number, seconds: number): Promise<RunResult> {
    return this.runner.run(inNamespace(client.ns, [process.execPath, AGENT, 'stream', SERVER_ADDRESS, tag, String(rate), String(seconds)]), { timeoutMs: (seconds + 10) * 1000 });
  }

  /** A stream's datagrams as the servers behind every line received them, in order of arrival. */
  arrivals(tag: string): Arrival[] {
    return streamArrivals(this.serverLines, tag).sort((x, y) => x.at - y.at);
  }

  /** Each client sends a datagram to the LAN address: the master learns it from its neighbour table. */
  async hello(): Promise<void> {
    await Promise.all(this.clients.map((c) => this.runner.run(inNamespace(c.ns, [process.execPath, AGENT, 'hello', PAIR_LAN_ADDRESS]))));
  }

  /** The line a client leaves by now: one HTTP request to the internet, answered with the source the server saw. */
  async leavesBy(client: PairClient): Promise<string | undefined> {
    const result = await this.runner.run(inNamespace(client.ns, [process.execPath, AGENT, 'get', `http://${SERVER_ADDRESS}/`]), { timeoutMs: 10_000 });
    return pairLineOf((JSON.parse(result.stdout) as { source: string }).source);
  }

  /**
   * A long TCP connection from a client to the internet's echo port, once up;
   * `say` writes a line and resolves with the source the server answered
   * with, or null after `ms`.
   */
  async connection(client: PairClient): Promise<{ answers: string[]; say: (ms: number) => Promise<string | null>; close: () => void }> {
    const answers: string[] = [];
    const session = this.runner.spawn(inNamespace(client.ns, [process.execPath, AGENT, 'session', SERVER_ADDRESS, '7']), { onLine: (l) => answers.push(l) });
    this.others.push(session);
    await waitFor('the connection to be up', 10_000, async () => (answers.includes('connected') ? true : null));
    let n = 0;
    const say = async (ms: number): Promise<string | null> => {
      const tag = `line-${++n}`;
      session.write(`${tag}\n`);
      const deadline = performance.now() + ms;
      while (performance.now() < deadline) {
        const answer = answers.find((a) => a.endsWith(` ${tag}`));
        if (answer) return answer.split(' ')[0] as string;
        await sleep(50);
      }
      return null;
    };
    return { answers, say, close: () => session.stop('SIGKILL') };
  }

  /**
   * The master dies — `kill`: its keepalived and dispatcher killed at once;
   * `links`: every link of it down (left down) — while every client streams
   * and one of isp1's clients holds a TCP connection through the shared
   * address. Measures when the other holds the addresses, when the
   * connection answers again (TCP's own retransmission timer decides when it
   * tries), and each client's longest gap. Needs the servers and a client on isp1.
   */
  async takeover(master: GatewayName, how: 'kill' | 'links', pools: ReadonlyMap<string, string>): Promise<TakeoverFigures> {
    const survivor = this.other(master);
    const client = this.clients.find((c) => pools.get(c.ip) === 'isp1');
    if (!client) throw new Error('a takeover is shown with a client on isp1 (the line whose address moves)');
    const tcp = await this.connection(client);
    if ((await tcp.say(5_000)) !== PAIR_SHARED) throw new Error(`the connection from ${client.ip} does not leave by isp1's shared address`);
    const tag = `${how}${++this.takeovers}-`;
    // When each stream's sender finished (epoch ms, the servers' clock): a stream that went silent for good has its silence to here counted.
    const ended: number[] = [];
    const streams = this.clients.map((c, i) => this.stream(c, `${tag}${i}`, 50, 12).then(() => void (ended[i] = Date.now())));
    // Let conntrackd send the connections (the stream's too) to the other gateway.
    await sleep(2_500);
    const started = performance.now();
    if (how === 'kill') this.kill(master);
    else await this.links(master, false);
    await waitFor(`${survivor} to hold every address`, 10_000, async () => ((await this.holders(PAIR_SHARED)).includes(survivor) && (await this.holders(PAIR_LAN_ADDRESS)).includes(survivor) ? true : null));
    const movedMs = performance.now() - started;
    let answer: { ms: number; source: string } | null = null;
    while (!answer && performance.now() - started < 15_000) {
      const source = await tcp.say(250);
      if (source) answer = { ms: performance.now() - started, source };
    }
    await Promise.all(streams);
    await sleep(500);
    tcp.close();
    const gaps = this.clients.map((c, i) => {
      const arrived = this.arrivals(`${tag}${i}`);
      const last = arrived.at(-1);
      // The longest silence between datagrams, or after the last one (none at all: never through).
      const gapMs = last ? Math.max(longestGap(arrived).ms, (ended[i] ?? last.at) - last.at) : Number.POSITIVE_INFINITY;
      return { client: c.ip, gapMs, last: pairLineOf(last?.source ?? '') };
    });
    return { from: master, to: survivor, movedMs, tcp: answer ? { ...answer, reset: tcp.answers.some((a) => a.startsWith('error')) } : null, gaps };
  }

  async role(name: GatewayName): Promise<string> {
    return (await this.status(name)).ha?.role ?? 'none';
  }

  /** Whether a gateway's fence is up (iptables backend: DISPATCHER-FENCE hooked into mangle PREROUTING). */
  async fenced(name: GatewayName): Promise<boolean> {
    return (await this.runner.run(inNamespace(this.gateway(name).ns, ['iptables-save', '-t', 'mangle']))).stdout.includes('-A PREROUTING -j DISPATCHER-FENCE');
  }

  /** Which gateways hold an address now. */
  async holders(address: string): Promise<GatewayName[]> {
    const held: GatewayName[] = [];
    for (const gw of this.gateways) if ((await this.runner.run(inNamespace(gw.ns, ['ip', '-4', '-o', 'addr', 'show']))).stdout.includes(` ${address}/`)) held.push(gw.name);
    return held;
  }

  /** The gateway dies at once: its keepalived and dispatcher killed (its kernel keeps what they left, its session stays up). */
  kill(name: GatewayName): void {
    this.keepalived.get(name)?.stop('SIGKILL');
    this.dispatchers.get(name)?.stop('SIGKILL');
  }

  /** Every link of a gateway down (a dead box, a pulled power cord as its neighbours see it) or up again. */
  async links(name: GatewayName, up: boolean): Promise<void> {
    await this.ip(this.gateway(name).ns, ...['lan0', 'wan1', 'wan2', 'ppp0', 'sync0'].map((link) => `link set ${link} ${up ? 'up' : 'down'}`));
  }

  /** Kills what runs in the namespaces, deletes them and the pair's files. Safe to call twice. */
  async destroy(): Promise<void> {
    for (const process_ of [...this.others, ...this.dispatchers.values(), ...this.keepalived.values()]) process_.stop('SIGKILL');
    await destroyTopology(this.runner, { namespaces: this.namespaces });
    await rm(this.dir, { recursive: true, force: true });
  }
}

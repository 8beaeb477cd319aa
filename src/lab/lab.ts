// A lab session: a topology (topology.ts), the internet host, and the real
// dispatcher CLI run inside the gateway namespace, with the measurements the
// namespace tests and the benchmark share (streams, gaps, snapshots). Every
// namespace carries a unique prefix and is deleted by destroy(), which the
// caller runs pass or fail.

import {
  AGENT,
  removeLabFiles,
  runDispatcher,
  sayHello,
  sourceSeenBy,
  startDaemon,
  startServer,
  uplinkByAddress,
  waitFor,
  writeLabConfig,
  type ConfigOptions,
  type InternetHost,
  type LabFiles,
  type RunningDaemon,
} from './harness.js';
import { buildTopology, DEFAULT_UPLINKS, destroyTopology, inNamespace, type LabClient, type LabUplink, type Topology, type UplinkSpec } from './topology.js';
import { ExecaRunner, type RunResult } from '../system/exec.js';
import { runPrefix } from './leftovers.js';
import type { PoolsReport, Status } from '../schema/control.js';

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('the namespace lab needs root (it creates network namespaces)');
}

export interface LabOptions {
  readonly clients: number;
  /** Who makes the lab, in its names (`dsp<tag>-<pid>-<n>-`, core/run-names.ts): lower-case letters. */
  readonly tag?: string;
  readonly uplinks?: readonly UplinkSpec[];
  readonly config?: ConfigOptions;
  /** The PATH the daemon runs with (a gateway without iptables, say); the lab's own by default. */
  readonly path?: string;
}

export class Lab {
  readonly runner = new ExecaRunner();
  daemon: RunningDaemon | null = null;

  private constructor(
    readonly topo: Topology,
    readonly files: LabFiles,
    readonly server: InternetHost,
    readonly options: LabOptions,
  ) {}

  static async create(options: LabOptions): Promise<Lab> {
    requireRoot();
    const runner = new ExecaRunner();
    const prefix = runPrefix(options.tag ?? '');
    const topo = await buildTopology(runner, { prefix, clients: options.clients, uplinks: options.uplinks ?? DEFAULT_UPLINKS });
    try {
      const files = await writeLabConfig(topo, options.config);
      const server = await startServer(runner, topo);
      return new Lab(topo, files, server, options);
    } catch (error) {
      await destroyTopology(runner, topo);
      throw error;
    }
  }

  /** The config's last rewrite; undefined: the one the lab was made with. */
  private rewritten: ConfigOptions | undefined;

  /** The netfilter backend of the config as last written. */
  get backend(): 'iptables' | 'nftables' {
    return (this.rewritten ?? this.options.config)?.backend ?? 'iptables';
  }

  /** Rewrites the config file (the daemon sees it on reload or restart). */
  async rewriteConfig(options: ConfigOptions): Promise<void> {
    await writeLabConfig(this.topo, options, this.files.dir);
    this.rewritten = options;
  }

  client(index: number): LabClient {
    const client = this.topo.clients[index];
    if (!client) throw new Error(`no client ${index}`);
    return client;
  }

  async start(): Promise<RunningDaemon> {
    this.daemon = await startDaemon(this.runner, this.topo, this.files, this.options.path);
    return this.daemon;
  }

  async stop(): Promise<number | null> {
    const code = await this.daemon?.stop();
    this.daemon = null;
    return code ?? null;
  }

  /** Runs the dispatcher CLI in the gateway namespace (with another config file when given). */
  cli(args: readonly string[], okExitCodes: readonly number[] = [0], config = this.files.config): Promise<RunResult> {
    return runDispatcher(this.runner, this.topo, { ...this.files, config }, args, okExitCodes);
  }

  async cliJson<T>(args: readonly string[]): Promise<T> {
    return JSON.parse((await this.cli([...args, '--json'])).stdout) as T;
  }

  /** Runs a command in a namespace of this lab. */
  runIn(ns: string, argv: readonly string[], okExitCodes: readonly number[] = [0]): Promise<RunResult> {
    return this.runner.run(inNamespace(ns, argv), { okExitCodes });
  }

  /** Whether the kernel's client set (or map) holds the address (the client is classified). */
  async inClientSet(ip: string): Promise<boolean> {
    const argv = this.backend === 'nftables' ? ['nft', 'get', 'element', 'inet', 'dispatcher', 'clients', `{ ${ip} }`] : ['ipset', 'test', 'dispatcher-clients', ip];
    return (await this.runIn(this.topo.gw, argv, [0, 1])).exitCode === 0;
  }

  hello(client: LabClient): Promise<void> {
    return sayHello(this.runner, this.topo, client);
  }

  /** The uplink a fresh connection from the client leaves by, as the internet host sees it. */
  async leavesBy(client: LabClient): Promise<string> {
    const seen = await sourceSeenBy(this.runner, this.topo, client);
    const uplink = uplinkByAddress(this.topo, seen);
    if (!uplink) throw new Error(`the host saw ${seen}, which is no uplink's address`);
    return uplink;
  }

  /** A long-lived TCP connection from a client to the internet host's echo port. */
  async session(client: LabClient): Promise<Session> {
    const lines: string[] = [];
    const process_ = this.runner.spawn(inNamespace(client.ns, [process.execPath, AGENT, 'session', this.topo.server, '7']), { onLine: (line) => lines.push(line) });
    await waitFor('the session to connect', 5000, async () => (lines.includes('connected') ? true : null));
    let sent = 0;
    return {
      send: async (text: string) => {
        sent += 1;
        const expected = lines.length + 1;
        process_.write(`${text}\n`);
        await waitFor(`an answer to "${text}"`, 5000, async () => (lines.length >= expected ? true : null));
        return lines[expected - 1] as string;
      },
      close: () => process_.stop('SIGKILL'),
      get sent() {
        return sent;
      },
    };
  }

  uplink(name: string): LabUplink {
    const uplink = this.topo.uplinks.find((u) => u.name === name);
    if (!uplink) throw new Error(`no uplink ${name}`);
    return uplink;
  }

  /** Starts a numbered UDP stream from a client to the internet host; resolves when it has been sent. */
  stream(client: LabClient, tag: string, rate: number, seconds: number): Promise<RunResult> {
    return this.runner.run(inNamespace(client.ns, [process.execPath, AGENT, 'stream', this.topo.server, tag, String(rate), String(seconds)]), { timeoutMs: (seconds + 10) * 1000 });
  }

  /**
   * `count` TCP connections from a client to each internet address (the echo
   * service), each sending two lines `pauseMs` apart: by which public address
   * each line arrived. Every connection is a new one (a new source port).
   */
  async fan(client: LabClient, addresses: readonly string[], count: number, pauseMs = 0): Promise<{ address: string; first: string; second: string }[]> {
    const total = addresses.length * count;
    const result = await this.runner.run(inNamespace(client.ns, [process.execPath, AGENT, 'fan', addresses.join(','), String(count), String(pauseMs)]), {
      timeoutMs: 30_000 + Math.ceil(total / 32) * (pauseMs + 200),
    });
    const lines = result.stdout.split('\n').filter((line) => line.startsWith('fan '));
    const failed = lines.filter((line) => line.split(' ')[2] === 'error');
    if (failed.length > 0 || lines.length !== total) throw new Error(`fan: ${lines.length} of ${total} connections answered; ${failed.slice(0, 3).join('; ')}`);
    return lines.map((line) => {
      const [, address, first, second] = line.split(' ');
      return { address: address as string, first: first as string, second: second as string };
    });
  }

  /** When the daemon logged that `uplink`'s pool moved to the survivors, at or after `since` (ms since the epoch). */
  async poolMovedAt(uplink: string, since: number): Promise<number> {
    let at = 0;
    await within(5000, `${uplink}'s pool moved`, async () => {
      const line = (this.daemon?.logs ?? [])
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as { msg: string; uplink?: string; time: string })
        .find((l) => l.msg.startsWith('uplink down: its pool moved') && l.uplink === uplink && Date.parse(l.time) >= since);
      at = line ? Date.parse(line.time) : 0;
      return line !== undefined;
    });
    return at;
  }

  async status(): Promise<StatusJson> {
    return this.cliJson<StatusJson>(['status']);
  }

  async stateOf(uplink: string): Promise<string> {
    return (await this.status()).uplinks.find((u) => u.name === uplink)?.state ?? 'missing';
  }

  /** What the gateway's kernel holds, as text, for before/after comparisons. */
  async snapshot(): Promise<Record<string, string>> {
    const gw = this.topo.gw;
    const run = async (argv: string[]): Promise<string> => (await this.runIn(gw, argv)).stdout;
    const uplinkSysctls = this.topo.uplinks.map((u) => `net.ipv4.conf.${u.interface}.rp_filter`);
    // Only the comment lines carry a timestamp.
    const saved = async (tool: string): Promise<string> =>
      (await run([tool]))
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('\n');
    return {
      iptables: await saved('iptables-save'),
      ip6tables: await saved('ip6tables-save'),
      // Without the clients' counters, which traffic changes (nft -s below leaves them out the same way).
      ipset: (await run(['ipset', 'save'])).replace(/ packets [0-9]+ bytes [0-9]+/g, ''),
      // The tables, and ours whole (stateless: without the counter values traffic changes). Not every
      // table's contents: iptables-nft leaves an empty built-in chain it created for a jump of ours
      // (iptables-save shows built-in chains either way, and `iptables -X` cannot remove them).
      nft: `${await run(['nft', 'list', 'tables'])}${(await this.runIn(gw, ['nft', '-s', 'list', 'table', 'inet', 'dispatcher'], [0, 1])).stdout}`,
      rules: await run(['ip', 'rule', 'show']),
      // IPv4 only: the dispatcher never touches IPv6, whose link-local routes appear on their own after DAD.
      routes: await run(['ip', '-4', 'route', 'show', 'table', 'all']),
      rules6: await run(['ip', '-6', 'rule', 'show']),
      sysctls: await run(['sysctl', 'net.ipv4.ip_forward', ...uplinkSysctls]),
    };
  }

  async destroy(): Promise<void> {
    await this.daemon?.stop().catch(() => undefined);
    this.server.process.stop('SIGKILL');
    await destroyTopology(this.runner, this.topo);
    await removeLabFiles(this.files);
    const left = (await this.runner.run(['ip', 'netns', 'list'])).stdout.split('\n').filter((line) => line.startsWith(this.topo.prefix));
    if (left.length > 0) throw new Error(`namespaces left behind: ${left.join(', ')}`);
  }
}

export interface Session {
  /** Sends one line and returns the host's answer: "<source it sees> <line>". */
  send(text: string): Promise<string>;
  close(): void;
  readonly sent: number;
}

/** `dispatcher status --json` and `pools --json` as the control protocol defines them (the CLI adds `source` to pools). */
export type StatusJson = Status;
export type PoolsJson = PoolsReport & { readonly source: 'daemon' | 'store' };

/** Polls until the check passes or the time is up; returns the elapsed milliseconds. */
export async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check().catch(() => false)) return performance.now() - started;
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface Arrival {
  readonly seq: number;
  readonly source: string;
  readonly at: number;
}

/** Datagrams of one stream as the internet host received them. */
export function arrivals(lab: Lab, tag: string): Arrival[] {
  return streamArrivals(lab.server.lines, tag);
}

/** Datagrams of one stream among what internet hosts printed (`serve`: "udp TAG SEQ SOURCE MS"). */
export function streamArrivals(lines: readonly string[], tag: string): Arrival[] {
  return lines
    .filter((line) => line.startsWith(`udp ${tag} `))
    .map((line) => {
      const [, , seq, source, at] = line.split(' ');
      return { seq: Number(seq), source: source as string, at: Number(at) };
    });
}

/** The longest silence in a stream, and the sources before and after it. */
export function longestGap(list: readonly Arrival[]): { ms: number; before: string; after: string } {
  let best = { ms: 0, before: '', after: '' };
  for (let i = 1; i < list.length; i++) {
    const ms = (list[i] as Arrival).at - (list[i - 1] as Arrival).at;
    if (ms > best.ms) best = { ms, before: (list[i - 1] as Arrival).source, after: (list[i] as Arrival).source };
  }
  return best;
}

// Namespace integration fixture: a lab topology (src/lab/topology.ts), the
// internet host, and the real dispatcher CLI run inside the gateway
// namespace. Every namespace carries this run's unique prefix and is deleted
// in teardown, pass or fail.

import { expect } from '@jest/globals';
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
  type LabFiles,
  type RunningDaemon,
} from '../../src/lab/harness.js';
import { buildTopology, DEFAULT_UPLINKS, destroyTopology, inNamespace, type LabClient, type Topology, type UplinkSpec } from '../../src/lab/topology.js';
import { ExecaRunner, type Process, type RunResult } from '../../src/system/exec.js';

let labCount = 0;

export function requireRoot(): void {
  if (process.getuid?.() !== 0) throw new Error('namespace integration tests need root (they create network namespaces)');
}

export interface LabOptions {
  readonly clients: number;
  readonly uplinks?: readonly UplinkSpec[];
  readonly config?: ConfigOptions;
}

export class Lab {
  readonly runner = new ExecaRunner();
  daemon: RunningDaemon | null = null;

  private constructor(
    readonly topo: Topology,
    readonly files: LabFiles,
    private readonly server: Process,
  ) {}

  static async create(options: LabOptions): Promise<Lab> {
    requireRoot();
    const runner = new ExecaRunner();
    labCount += 1;
    const prefix = `dsp${process.pid}-${labCount}-`;
    const topo = await buildTopology(runner, { prefix, clients: options.clients, uplinks: options.uplinks ?? DEFAULT_UPLINKS });
    try {
      const files = await writeLabConfig(topo, options.config);
      const server = await startServer(runner, topo);
      return new Lab(topo, files, server);
    } catch (error) {
      await destroyTopology(runner, topo);
      throw error;
    }
  }

  /** Rewrites the config file (the daemon sees it on reload or restart). */
  async rewriteConfig(options: ConfigOptions): Promise<void> {
    await writeLabConfig(this.topo, options, this.files.dir);
  }

  client(index: number): LabClient {
    const client = this.topo.clients[index];
    if (!client) throw new Error(`no client ${index}`);
    return client;
  }

  async start(): Promise<RunningDaemon> {
    this.daemon = await startDaemon(this.runner, this.topo, this.files);
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
  exec(ns: string, argv: readonly string[], okExitCodes: readonly number[] = [0]): Promise<RunResult> {
    return this.runner.run(inNamespace(ns, argv), { okExitCodes });
  }

  /** Whether the kernel's client set holds the address (the client is classified). */
  async inClientSet(ip: string): Promise<boolean> {
    return (await this.exec(this.topo.gw, ['ipset', 'test', 'dispatcher-clients', ip], [0, 1])).exitCode === 0;
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

  /** What the gateway's kernel holds, as text, for before/after comparisons. */
  async snapshot(): Promise<Record<string, string>> {
    const gw = this.topo.gw;
    const run = async (argv: string[]): Promise<string> => (await this.exec(gw, argv)).stdout;
    const uplinkSysctls = this.topo.uplinks.map((u) => `net.ipv4.conf.${u.interface}.rp_filter`);
    return {
      // Only the comment lines carry a timestamp.
      iptables: (await run(['iptables-save'])).split('\n').filter((l) => !l.startsWith('#')).join('\n'),
      ipset: await run(['ipset', 'save']),
      rules: await run(['ip', 'rule', 'show']),
      // IPv4 only: the dispatcher never touches IPv6, whose link-local routes appear on their own after DAD.
      routes: await run(['ip', '-4', 'route', 'show', 'table', 'all']),
      rules6: await run(['ip', '-6', 'rule', 'show']),
      sysctls: await run(['sysctl', 'net.ipv4.ip_forward', ...uplinkSysctls]),
    };
  }

  async destroy(): Promise<void> {
    await this.daemon?.stop().catch(() => undefined);
    this.server.stop('SIGKILL');
    await destroyTopology(this.runner, this.topo);
    await removeLabFiles(this.files);
    const left = (await this.runner.run(['ip', 'netns', 'list'])).stdout.split('\n').filter((line) => line.startsWith(this.topo.prefix));
    expect(left).toEqual([]);
  }
}

export interface Session {
  /** Sends one line and returns the host's answer: "<source it sees> <line>". */
  send(text: string): Promise<string>;
  close(): void;
  readonly sent: number;
}

export interface PoolsJson {
  source: string;
  clients: number;
  uplinks: { name: string; interface: string; state: string; weight: number; clients: string[]; pinned: string[]; address: string | null; gateway: string | null }[];
}

/** Polls until the check passes or the time is up; returns the elapsed milliseconds. */
export async function within(ms: number, what: string, check: () => Promise<boolean>): Promise<number> {
  const started = performance.now();
  for (;;) {
    if (await check().catch(() => false)) return performance.now() - started;
    if (performance.now() - started > ms) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

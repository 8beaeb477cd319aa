// A fake kernel that keeps state (Tailscale's fake OS, kube-proxy's knftables
// fake): a Runner that applies what the adapters send (iptables-restore,
// ipset restore, ip -batch, sysctl -w, conntrack -D, nft -f) to an in-memory
// model, answers the reads (iptables-save, ipset save, ip -j …, sysctl -e,
// ip neigh, ip monitor, ping) from it in the real tools' formats, refuses any
// command it does not know by throwing an Error that names the whole argv, and
// prints itself as sorted text for golden files (dump()).
//
// The semantics each tool has here were measured on the real tools (see the
// files in fake-kernel/); unit tests of the whole loop run against it, the
// namespace tests prove the loop on the real kernel.
//
// Use: `const fake = FakeKernel.gateway({ lan: 'lan0', uplinks, clients: 3 })`,
// pass it as the daemon's runner; change the world with addNeighbour,
// setCarrier, setUp, removeLink, `silent.add(target)` (probes go unanswered),
// `connections.push(…)`; compare `dump()` text; `writes` lists every command
// that tried to change the kernel; `handle([...argv prefix], fn)` answers a
// command outside the kernel (a notify hook, sendmail); `stopAll()` in afterEach.

import { describeTopology, type UplinkSpec } from '../../src/lab/topology.js';
import { CommandError } from '../../src/model/errors.js';
import type { Process, RunOptions, RunResult, Runner, SpawnOptions } from '../../src/system/exec.js';
import { prefix, ToolFailure } from './fake-kernel/failure.js';
import { addrJson, cloneLink, linkStatsJson, neighbourLine, neighbourOrder } from './fake-kernel/links.js';
import { FakeProcess, parsePing, runPing } from './fake-kernel/processes.js';
import { parseRouteGet, routeGet } from './fake-kernel/route-get.js';
import { deleteConnections, describeConnection, listConnections, nftDeleteTables, readSysctls, writeSysctls } from './fake-kernel/tools.js';
import type { Netfilter } from './fake-kernel/netfilter.js';
import { KernelModel } from './fake-kernel/world.js';

export type { Connection } from './fake-kernel/tools.js';
export type { Monitor } from './fake-kernel/world.js';

export interface Call {
  readonly argv: readonly string[];
  readonly input?: string;
}

type Handler = (argv: readonly string[], input: string | undefined) => RunResult;

const IPV6_DEFAULT_RULES = JSON.stringify([
  { priority: 0, src: 'all', table: 'local' },
  { priority: 32766, src: 'all', table: 'main' },
]);

const same = (argv: readonly string[], ...expected: string[]): boolean => argv.length === expected.length && argv.every((a, i) => a === expected[i]);

export interface GatewaySpec {
  /** The LAN interface (198.18.0.1/16 on it, as in the lab). */
  readonly lan?: string;
  /** Uplinks as the lab describes them (src/lab/topology.ts): ppp* are point-to-point, the rest ethernet. */
  readonly uplinks: readonly UplinkSpec[];
  /** LAN clients in the neighbour table: 198.18.0.10, .11, … */
  readonly clients?: number;
}

export class FakeKernel extends KernelModel implements Runner {
  /** Every command run, and the ones that change the kernel. */
  readonly calls: Call[] = [];
  readonly writes: Call[] = [];
  private readonly handlers: { prefix: readonly string[]; handler: Handler }[] = [];
  /** Other network namespaces by name (`ip netns add`), each a fake kernel of its own. */
  readonly namespaces = new Map<string, FakeKernel>();
  /** `nft monitor` processes, told of every netfilter commit. */
  private readonly nftMonitors: FakeProcess[] = [];
  private generation = 0;
  /** Process ids of the commands run (the real ones start far lower; these only need to differ). */
  private nextPid = 40_000;
  private runningPid = 0;
  /** Called after each write the kernel accepted (a test's hook to act "between" two commands). */
  onWrite: ((call: Call) => void) | undefined;

  /** A gateway like the lab's (src/lab/topology.ts): lo, the LAN, the uplinks with their addresses, the clients as neighbours. */
  static gateway(spec: GatewaySpec): FakeKernel {
    const fake = new FakeKernel();
    const topology = describeTopology({ prefix: '', clients: spec.clients ?? 0, uplinks: spec.uplinks });
    const lan = spec.lan ?? topology.lanInterface;
    fake.addLink(lan, 'ether');
    fake.addAddress(lan, topology.lanAddress, Number(topology.lanSubnet.split('/')[1]));
    for (const uplink of topology.uplinks) {
      fake.addLink(uplink.interface, uplink.pointToPoint ? 'ppp' : 'ether');
      if (uplink.pointToPoint) fake.addAddress(uplink.interface, uplink.local, 32, uplink.gateway);
      else {
        fake.addAddress(uplink.interface, uplink.local, 30);
        fake.neighbours.push({ ip: uplink.gateway, dev: uplink.interface, mac: fake.macFor(uplink.gateway), state: 'REACHABLE' });
      }
    }
    for (const client of topology.clients) fake.neighbours.push({ ip: client.ip, dev: lan, mac: fake.macFor(client.ip), state: 'REACHABLE' });
    return fake;
  }

  /** Lets a test answer a command the kernel model does not cover (a notify hook, sendmail, dig). */
  handle(prefix: readonly string[], handler: Handler): this {
    this.handlers.push({ prefix, handler });
    return this;
  }

  // ---- the Runner ----

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const call = { argv: [...argv], ...(options.input !== undefined ? { input: options.input } : {}) };
    this.calls.push(call);
    // Every command is a process of its own, as the kernel names it in nft monitor.
    this.runningPid = this.nextPid++;
    options.onSpawn?.(this.runningPid);
    const ok = options.okExitCodes ?? [0];
    const writes = this.writes.length;
    let result: RunResult;
    try {
      result = this.execute(argv, options.input, call);
      if (this.writes.length > writes) this.onWrite?.(call);
    } catch (error) {
      if (!(error instanceof ToolFailure)) throw error;
      result = { stdout: '', stderr: error.stderr, exitCode: error.exitCode };
    }
    if (!ok.includes(result.exitCode)) throw new CommandError(argv, result.exitCode, result.stderr);
    return result;
  }

  /**
   * Tells every `nft monitor` about a committed netfilter change: one line per
   * table it touched (nft's own event lines are finer; which tables is what
   * matters to readers), then who committed it.
   */
  private committed(input: string, process: string, family: 'ip' | 'ip6'): void {
    const tables = [...input.matchAll(/^\*(\S+)$/gm)].map((m) => m[1] as string);
    this.generation += 1;
    for (const monitor of this.nftMonitors) {
      for (const table of tables) monitor.print(`flush table ${family} ${table}`);
      monitor.print(`# new generation ${this.generation} by process ${this.runningPid} (${process})`);
    }
  }

  private refuse(argv: readonly string[]): never {
    throw new Error(`fake kernel: command it does not know: ${JSON.stringify(argv)}`);
  }

  private write(call: Call): void {
    this.writes.push(call);
  }

  private execute(argv: readonly string[], input: string | undefined, call: Call): RunResult {
    const out = (stdout: string, stderr = '', exitCode = 0): RunResult => ({ stdout, stderr, exitCode });
    const [tool] = argv;
    const custom = this.handlers.find((h) => h.prefix.every((p, i) => argv[i] === p));
    if (custom) return custom.handler(argv, input);
    switch (tool) {
      case 'iptables-save':
        return out(this.iptablesSave(argv, this.netfilter));
      case 'ip6tables-save':
        return out(this.iptablesSave(argv, this.netfilter6));
      case 'iptables':
      case 'ip6tables':
        if (same(argv, tool, '-V') || same(argv, tool, '--version')) return out(`${tool} v1.8.9 (nf_tables)\n`);
        return this.refuse(argv);
      case 'iptables-restore':
      case 'ip6tables-restore': {
        const flags = argv
          .slice(1)
          .join(' ')
          .replace(/--wait [0-9]+|-w [0-9]+/, '')
          .trim()
          .split(/\s+/)
          .filter((f) => f !== '');
        if (flags.some((f) => f !== '--noflush') || input === undefined) return this.refuse(argv);
        this.write(call);
        const ipv6 = tool === 'ip6tables-restore';
        (ipv6 ? this.netfilter6 : this.netfilter).restore(input, !flags.includes('--noflush'));
        // The kernel names a process by its first 15 characters.
        this.committed(input, (tool as string).slice(0, 15), ipv6 ? 'ip6' : 'ip');
        return out('');
      }
      case 'ipset':
        return this.ipset(argv, input, call);
      case 'ip':
        return this.ip(argv, input, call);
      case 'sysctl':
        return this.sysctl(argv, call);
      case 'conntrack':
        return this.conntrack(argv, call);
      case 'nft':
        if (same(argv, 'nft', '--version')) return out('nftables v1.0.6 (Lester Gooch #5)\n');
        if (!same(argv, 'nft', '-f', '-') || input === undefined) return this.refuse(argv);
        this.write(call);
        if (nftDeleteTables(this.netfilter, this.netfilter6, input) === null) return this.refuse([...argv, `<<< ${input}`]);
        return out('');
      case 'ping': {
        const ping = parsePing(argv);
        if (ping.count === undefined) return this.refuse(argv);
        const answered = this.answers(ping.target, ping.iface);
        return out(`PING ${ping.target}\n\n--- ${ping.target} ping statistics ---\n${ping.count} packets transmitted, ${answered ? ping.count : 0} received\n`, '', answered ? 0 : 1);
      }
      default:
        return this.refuse(argv);
    }
  }

  private iptablesSave(argv: readonly string[], netfilter: Netfilter): string {
    let counters = false;
    let table: string | undefined;
    for (let i = 1; i < argv.length; i++) {
      if (argv[i] === '-c') counters = true;
      else if (argv[i] === '-t' && argv[i + 1] !== undefined) table = argv[++i];
      else this.refuse(argv);
    }
    return netfilter.save({ counters, ...(table !== undefined ? { table } : {}) });
  }

  private ipset(argv: readonly string[], input: string | undefined, call: Call): RunResult {
    if (same(argv, 'ipset', 'list', '-n'))
      return {
        stdout: this.ipsets
          .names()
          .map((n) => `${n}\n`)
          .join(''),
        stderr: '',
        exitCode: 0,
      };
    if (argv[1] === 'save' && argv.length <= 3) return { stdout: this.ipsets.save(argv[2]), stderr: '', exitCode: 0 };
    if (same(argv, 'ipset', 'list', '-t'))
      return {
        stdout: this.ipsets
          .names()
          .map((name) => this.ipsets.header(name, (set) => this.usesSet(set)))
          .join(''),
        stderr: '',
        exitCode: 0,
      };
    if (argv[1] === 'list' && argv[2] === '-t' && argv.length === 4) {
      const header = this.ipsets.header(argv[3] as string, (name) => this.usesSet(name));
      if (header === null) return { stdout: '', stderr: `ipset v7.17: The set with the given name does not exist\n`, exitCode: 1 };
      return { stdout: header, stderr: '', exitCode: 0 };
    }
    if ((argv[1] === 'create' || argv[1] === 'add' || argv[1] === 'del' || argv[1] === 'destroy') && input === undefined) {
      this.write(call);
      try {
        this.ipsets.restore(argv.slice(1).join(' '), false, (name) => this.usesSet(name));
      } catch (error) {
        // A single command says what failed without a line number.
        if (error instanceof ToolFailure) throw new ToolFailure(error.exitCode, error.stderr.replace('Error in line 1: ', ''));
        throw error;
      }
      return { stdout: '', stderr: '', exitCode: 0 };
    }
    const exist = same(argv, 'ipset', '-exist', 'restore');
    if ((exist || same(argv, 'ipset', 'restore')) && input !== undefined) {
      this.write(call);
      this.ipsets.restore(input, exist, (name) => this.usesSet(name));
      return { stdout: '', stderr: '', exitCode: 0 };
    }
    return this.refuse(argv);
  }

  /** Whether a rule of either family's tables names the ipset (a set in use cannot be destroyed). */
  private usesSet(name: string): boolean {
    return this.netfilter.usesSet(name) || this.netfilter6.usesSet(name);
  }

  private ip(argv: readonly string[], input: string | undefined, call: Call): RunResult {
    const out = (stdout: string): RunResult => ({ stdout, stderr: '', exitCode: 0 });
    if (same(argv, 'ip', '-j', 'addr', 'show')) return out(addrJson(this.links));
    if (same(argv, 'ip', '-j', '-s', 'link', 'show')) return out(linkStatsJson(this.links));
    if (same(argv, 'ip', '-j', 'rule', 'show')) return out(this.routing.rulesJson());
    if (same(argv, 'ip', '-4', '-j', 'route', 'show', 'table', 'all')) return out(this.routing.routesJson());
    // IPv6 policy routing is proven in the namespaces only: the fake has the kernel's two default rules and no routes.
    if (same(argv, 'ip', '-6', '-j', 'rule', 'show')) return out(IPV6_DEFAULT_RULES);
    if (same(argv, 'ip', '-6', '-j', 'route', 'show', 'table', 'all')) return out('[]');
    if (same(argv, 'ip', '-4', 'neigh', 'show'))
      return out(
        [...this.neighbours]
          .sort(neighbourOrder)
          .map((n) => `${neighbourLine(n)}\n`)
          .join(''),
      );
    const lookup = parseRouteGet(argv);
    if (lookup) return out(routeGet(this.routing, this.links, this.sysctls.get('net.ipv4.ip_forward') === '1', lookup));
    if (same(argv, 'ip', '-batch', '-') && input !== undefined) {
      this.write(call);
      this.routing.batch(input, (tokens) => this.linkCommand(tokens));
      return out('');
    }
    const [, object, verb, name] = argv;
    if ((object === 'rule' || object === 'route') && ['add', 'del', 'delete', 'replace'].includes(verb ?? '')) {
      this.write(call);
      this.routing.command(argv.slice(1));
      return out('');
    }
    // Other network namespaces (doctor tries the kernel's features in a scratch one): each is a fake kernel of its own.
    if (object === 'netns' && verb === 'add' && name !== undefined && argv.length === 4) {
      this.write(call);
      if (this.namespaces.has(name)) throw new ToolFailure(1, `Cannot create namespace file "/run/netns/${name}": File exists\n`);
      this.namespaces.set(name, new FakeKernel(false));
      return out('');
    }
    if (object === 'netns' && (verb === 'delete' || verb === 'del') && name !== undefined && argv.length === 4) {
      this.write(call);
      if (!this.namespaces.delete(name)) throw new ToolFailure(1, `Cannot remove namespace file "/run/netns/${name}": No such file or directory\n`);
      return out('');
    }
    const inside = object === 'netns' && verb === 'exec' ? argv.slice(4) : object === '-n' ? ['ip', ...argv.slice(3)] : null;
    const namespace = (object === 'netns' && verb === 'exec') || object === '-n' ? (object === '-n' ? verb : name) : undefined;
    if (inside && namespace !== undefined) {
      const ns = this.namespaces.get(namespace);
      if (!ns) throw new ToolFailure(1, `Cannot open network namespace "${namespace}": No such file or directory\n`);
      const nested = { argv: inside, ...(input !== undefined ? { input } : {}) };
      ns.calls.push(nested);
      return ns.execute(inside, input, nested);
    }
    return this.refuse(argv);
  }

  /** The `link`, `addr` and `neigh` lines of an ip batch (building a namespace or a big LAN; the daemon never sends them). */
  private linkCommand(tokens: readonly string[]): void {
    const line = tokens.join(' ');
    let match = /^link set (?:dev )?(\S+) (up|down)$/.exec(line);
    if (match) {
      this.setUp(match[1] as string, match[2] === 'up');
      return;
    }
    match = /^link add (?:name )?(\S+) type veth peer name (\S+)$/.exec(line);
    if (match) {
      for (const name of [match[1] as string, match[2] as string]) {
        if (this.links.some((l) => l.name === name)) throw new ToolFailure(2, 'RTNETLINK answers: File exists\n');
        this.addLink(name, 'ether', this.macFor(name), false);
      }
      return;
    }
    match = /^neigh (?:add|replace) (\S+) dev (\S+) lladdr (\S+) nud ([a-z]+)$/.exec(line);
    if (match) {
      this.addNeighbour(match[1] as string, match[2] as string, match[3] as string, (match[4] as string).toUpperCase());
      return;
    }
    match = /^addr add (\S+) dev (\S+)$/.exec(line);
    const address = match ? prefix(match[1] as string) : null;
    if (!match || !address) throw new Error(`fake kernel: ip -batch line it does not know: "${line}"`);
    this.addAddress(match[2] as string, (match[1] as string).split('/')[0] as string, address[1]);
  }

  private sysctl(argv: readonly string[], call: Call): RunResult {
    if (argv[1] === '-e' && argv.length > 2 && argv.slice(2).every((k) => !k.startsWith('-') && !k.includes('='))) {
      return { stdout: readSysctls(this.sysctls, argv.slice(2)), stderr: '', exitCode: 0 };
    }
    if (argv[1] !== '-q' || argv[2] !== '-w' || argv.length < 4) return this.refuse(argv);
    this.write(call);
    if (writeSysctls(this.sysctls, argv.slice(3)) === null) return this.refuse(argv);
    return { stdout: '', stderr: '', exitCode: 0 };
  }

  private conntrack(argv: readonly string[], call: Call): RunResult {
    if (argv[1] === '-L') return listConnections(this.connections, argv.slice(2)) ?? this.refuse(argv);
    if (argv[1] !== '-D') return this.refuse(argv);
    const deleted = deleteConnections(this.connections, argv.slice(2)) ?? this.refuse(argv);
    this.write(call);
    this.connections = deleted.kept;
    return { stdout: deleted.stdout, stderr: deleted.stderr, exitCode: deleted.exitCode };
  }

  spawn(argv: readonly string[], options: SpawnOptions = {}): Process {
    this.calls.push({ argv: [...argv] });
    const process = new FakeProcess(argv, options);
    // The receive buffer size is tuning, not meaning: `ip -rcvbuf N monitor …` is `ip monitor …`.
    const plain = argv.filter((a, i) => a !== '-rcvbuf' && argv[i - 1] !== '-rcvbuf');
    if (same(plain, 'ip', 'monitor', 'neigh') || same(plain, 'ip', 'monitor', 'link', 'address') || same(plain, 'ip', 'monitor', 'rule', 'route')) {
      this.processes.push(process);
      return process;
    }
    if (same(argv, 'nft', 'monitor')) {
      this.processes.push(process);
      this.nftMonitors.push(process);
      return process;
    }
    if (same(argv, 'stdbuf', '-oL', 'ipset', '-')) return this.ipsetSession(process);
    if (argv[0] === 'ping') {
      const ping = parsePing(argv);
      if (ping.count !== undefined) this.refuse(argv);
      this.processes.push(process);
      const link = ping.iface === undefined ? undefined : this.links.find((l) => l.name === ping.iface);
      if (ping.iface !== undefined && !link) {
        // ping cannot bind to a device that does not exist: it says so and exits 2.
        setImmediate(() => {
          process.printError(`ping: SO_BINDTODEVICE ${ping.iface}: No such device`);
          process.exit(2);
        });
        return process;
      }
      runPing(
        process,
        ping,
        () => this.answers(ping.target, ping.iface),
        () => link?.addresses[0]?.local,
      );
      return process;
    }
    return this.refuse(argv);
  }

  /**
   * `ipset -` (under stdbuf): each line read is a command answered as `ipset
   * …` would answer it, after the prompt ipset prints before reading (no
   * newline), as the real one does: `list -t`, and members added or deleted
   * (a complaint on stderr, as the real one prints it, and on to the next line).
   */
  private ipsetSession(process: FakeProcess): FakeProcess {
    this.processes.push(process);
    let prompt = 'ipset> ';
    process.onWrite((text) => {
      for (const command of text.split('\n').filter((line) => line !== '')) {
        const argv = ['ipset', ...command.split(' ')];
        if (command === 'version') {
          process.print(`${prompt}ipset v7.17, protocol version: 7`);
          prompt = 'ipset> ';
          continue;
        }
        // A name longer than ipset allows: its complaint (the session's error marker, adapter.ts IPSET_SESSION).
        const name = /^list -t (\S+)$/.exec(command)?.[1];
        if (name !== undefined && name.length > 31) {
          process.printError(`ipset v7.17: Syntax error: setname '${name}' is longer than 31 characters`);
          prompt += 'ipset> ';
          continue;
        }
        // A change (the loader's: engine/loader.ts) as ipset applies one line, -exist at its end as restore's flag.
        const exist = command.endsWith(' -exist');
        const change = exist ? command.slice(0, -' -exist'.length) : command;
        if (/^(add|del) /.test(change)) {
          const call = { argv: process.argv, input: `${command}\n` };
          this.calls.push(call);
          this.write(call);
          try {
            this.ipsets.restore(change, exist, (name) => this.usesSet(name));
          } catch (error) {
            if (!(error instanceof ToolFailure)) throw error;
            process.printError(error.stderr.replace('Error in line 1: ', '').trim());
          }
          prompt += 'ipset> ';
          continue;
        }
        if (!same(argv, 'ipset', 'list', '-t')) this.refuse(argv);
        this.calls.push({ argv });
        const lines = this.ipset(argv, undefined, { argv })
          .stdout.split('\n')
          .filter((line) => line !== '');
        for (const line of lines) {
          process.print(`${prompt}${line}`);
          prompt = '';
        }
        prompt += 'ipset> ';
      }
    });
    return process;
  }

  /** Sysctl values as /proc/sys would show them (the keys that exist). */
  async sysctlValues(keys: readonly string[]): Promise<Record<string, string>> {
    return Object.fromEntries(keys.flatMap((key) => (this.sysctls.has(key) ? [[key, this.sysctls.get(key) as string]] : [])));
  }

  /** Stops every process still running (afterEach: no timer outlives a test). */
  stopAll(): void {
    for (const process of this.processes) process.stop();
  }

  // ---- printing ----

  /** The whole kernel as stable text: one section per object type, sorted. */
  dump(): string {
    const links = [...this.links]
      .sort((a, b) => a.index - b.index)
      .map((l) => `${l.index}: ${l.name} ${l.kind} ${l.up ? 'up' : 'down'}${l.carrier ? '' : ' no-carrier'}${l.addresses.map((a) => ` ${a.local}${a.peer !== undefined ? ` peer ${a.peer}` : `/${a.prefixlen}`}`).join('')}`);
    const neighbours = [...this.neighbours].sort(neighbourOrder).map((n) => neighbourLine(n).trimEnd());
    const sysctls = [...this.sysctls].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, v]) => `${k} = ${v}`);
    const { rules, routes } = this.routing.dump();
    const connections = this.connections.map(describeConnection).sort();
    const sections: [string, string[]][] = [
      ['links', links],
      ['neighbours', neighbours],
      ['sysctls', sysctls],
      ['iptables', this.netfilter.dump()],
      // Only where something was loaded: an IPv4-only kernel's golden text has no such section.
      ...(this.netfilter6.dump().length > 0 ? [['ip6tables', this.netfilter6.dump()] as [string, string[]]] : []),
      ['ipset', this.ipsets.dump()],
      ['ip rule', rules],
      ['ip route', routes],
      ['conntrack', connections],
    ];
    return sections.map(([title, lines]) => `## ${title}\n${lines.map((l) => `${l}\n`).join('')}`).join('\n');
  }

  /** A deep copy: the same kernel, for "state unchanged" comparisons and what-if runs. */
  clone(): FakeKernel {
    const copy = new FakeKernel();
    copy.links = this.links.map(cloneLink);
    copy.neighbours = [...this.neighbours];
    copy.routing = this.routing.clone(() => copy.links);
    copy.netfilter = this.netfilter.clone();
    copy.netfilter6 = this.netfilter6.clone();
    copy.ipsets = this.ipsets.clone();
    copy.sysctls = new Map(this.sysctls);
    copy.connections = [...this.connections];
    return copy;
  }
}

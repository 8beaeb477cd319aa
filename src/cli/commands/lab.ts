import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { PoolsReport } from '../../schema/control.js';
import { blackhole } from '../../lab/faults.js';
import { AGENT, removeLabFiles, runDispatcher, sayHello, sourceSeenBy, startDaemon, startServer, uplinkByAddress, uplinkByAddress6, waitFor, type InternetHost, type LabFiles, type RunningDaemon } from '../../lab/harness.js';
import { cleanLeftovers, removeRun, runPrefix } from '../../lab/leftovers.js';
import { forwardPage, type PageForward } from '../../lab/page-forward.js';
import { buildTopology, DEFAULT_UPLINKS, destroyTopology, inNamespace, type Topology } from '../../lab/topology.js';
import type { Runner } from '../../system/exec.js';
import { ask } from '../../system/control-client.js';
import { findTool } from '../../system/tools.js';
import type { CliContext } from '../context.js';
import { ENDING_SIGNALS, EXIT_FAILURE, Failure } from '../exit.js';
import { formatPools, table } from '../format.js';
import { haLab } from './lab-ha.js';

const LAB_CONFIG = fileURLToPath(new URL('../../../pools/lab.yaml', import.meta.url));
/** The same lab, dual-stack (the default; `--ipv4-only` runs lab.yaml's). */
const DUAL_STACK_CONFIG = fileURLToPath(new URL('../../../pools/lab-dual-stack.yaml', import.meta.url));

interface LabOptions {
  readonly clients: string;
  /** commander's name for --ipv4-only. */
  readonly ipv4Only?: boolean;
  readonly hold?: boolean;
  readonly clean?: boolean;
  readonly ha?: boolean;
}

/** Where the gateway's web page listens (its own loopback), and the host port the lab forwards to it when free. */
const PAGE_LISTEN = '127.0.0.1:8080';
const HOST_PORT = 8080;

/**
 * The lab's config: the committed one (its comments say what the lab is),
 * with the web dashboard turned on and a token of this lab's, in its directory.
 */
async function writeConfig(committed: string, dir: string): Promise<{ config: string; token: string }> {
  const token = randomBytes(16).toString('hex');
  const tokenFile = join(dir, 'web.token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const config = join(dir, 'config.yaml');
  const web = `\n# Added by dispatcher lab: the web dashboard, its actions behind this lab's token.\nweb: { listen: "${PAGE_LISTEN}", token_file: ${JSON.stringify(tokenFile)} }\n`;
  await writeFile(config, `${await readFile(committed, 'utf8')}${web}`);
  return { config, token };
}

/** Removes what dead labs and test runs left behind and says what it removed. */
async function cleanLeftoversSaying(runner: Runner, say: (text: string) => void): Promise<void> {
  const removed = await cleanLeftovers(runner);
  for (const l of removed) say(`removed ${l.kind} ${l.name}, left by process ${l.owner}, which is gone`);
}

/**
 * The lab's output may go away before the lab does (`lab --hold | tee log`:
 * Ctrl-C ends tee first). Writing then fails (EPIPE); from then on the lab
 * stops printing and goes on (cleaning up), rather than dying with its
 * namespaces left behind.
 */
function surviveLostOutput(ctx: CliContext): void {
  let lost = false;
  const onError = (): void => {
    lost = true;
  };
  process.stdout.on('error', onError);
  process.stderr.on('error', onError);
  const [out, err] = [ctx.out.bind(ctx), ctx.err.bind(ctx)];
  ctx.out = (text) => {
    if (!lost) out(text);
  };
  ctx.err = (text) => {
    if (!lost) err(text);
  };
}

async function pools(files: LabFiles): Promise<PoolsReport> {
  const report = await ask(files.socket, { cmd: 'pools' }).catch(() => null);
  if (!report) throw new Failure('the lab daemon stopped answering');
  return report;
}

/** What one failover demonstration does, per family: the fault, where the stream goes, which line an address is, whether the line is back. */
interface FailoverFamily {
  readonly name: 'IPv4' | 'IPv6';
  readonly server: string;
  readonly fault: string;
  blackhole(on: boolean): Promise<void>;
  lineOf(address: string): string | undefined;
  isBack(): Promise<boolean>;
}

/**
 * A line dies silently (its ISP drops everything of the family; the link
 * stays up) while a client of its pool streams 100 datagrams a second: the
 * internet host shows how long the stream was silent and where it comes from
 * afterwards. Then the line recovers and the pool goes home.
 */
async function demonstrateFailover(ctx: CliContext, topo: Topology, files: LabFiles, server: InternetHost, poolOf: ReadonlyMap<string, string>, family: FailoverFamily): Promise<boolean> {
  const say = (text: string): void => ctx.out(`${text}\n`);
  const isp1 = topo.uplinks[0] as Topology['uplinks'][number];
  const client = topo.clients.find((c) => poolOf.get(c.ip) === isp1.name);
  if (!client) return true;
  const tag = `demo${family.name}`;
  say(`\nnow ${isp1.name} ${family.fault} while ${client.ip} streams 100 ${family.name} packets/s to ${family.server} …`);
  const sending = ctx.runner.run(inNamespace(client.ns, [process.execPath, AGENT, 'stream', family.server, tag, '100', '5']), { timeoutMs: 20_000 });
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await family.blackhole(true);
  await sending;
  const stream = server.lines
    .filter((l) => l.startsWith(`udp ${tag} `))
    .map((l) => l.split(' '))
    .map(([, , , source, at]) => ({ source: source as string, at: Number(at) }));
  let gap = { ms: 0, before: '', after: '' };
  for (let i = 1; i < stream.length; i++) {
    const ms = (stream[i]?.at ?? 0) - (stream[i - 1]?.at ?? 0);
    if (ms > gap.ms) gap = { ms, before: stream[i - 1]?.source ?? '', after: stream[i]?.source ?? '' };
  }
  const after = family.lineOf(gap.after) ?? '?';
  say(`the ${family.name} stream was silent for ${gap.ms} ms, then came from ${gap.after} (${after}) instead of ${gap.before} (${isp1.name})`);
  say(`\n$ dispatcher pools\n${formatPools(await pools(files))}`);
  const restored = Date.now();
  await family.blackhole(false);
  const back = await waitFor(`${isp1.name} to come back`, 10_000, async () => ((await family.isBack()) ? true : null)).catch(() => false);
  say(back ? `${isp1.name} recovered: its pool's ${family.name} went home after ${Date.now() - restored} ms; new connections of ${client.ip} leave by ${isp1.name} again.` : `${isp1.name} did not come back.`);
  return gap.ms < 2000 && after !== isp1.name && back === true;
}

/** Each client's IPv4 (or IPv6) request to the internet host, the source it saw and the line that is, against the client's pool. */
async function leavingTable(ctx: CliContext, topo: Topology, poolOf: ReadonlyMap<string, string>, server: string, lineOf: (address: string) => string | undefined): Promise<{ text: string; wrong: number }> {
  const rows = await Promise.all(
    topo.clients.map(async (c) => {
      const seen = await sourceSeenBy(ctx.runner, topo, c, server).catch((error: Error) => `error: ${error.message}`);
      const leftBy = lineOf(seen) ?? '?';
      return [c.ip, poolOf.get(c.ip) ?? '-', seen, leftBy, leftBy === poolOf.get(c.ip) ? 'ok' : 'WRONG'];
    }),
  );
  return { text: table(['CLIENT', 'POOL', 'HOST SAW', 'LEFT BY', ''], rows), wrong: rows.filter((r) => r[4] !== 'ok').length };
}

/**
 * The dual-stack lab's IPv6 half: every client autoconfigured from the LAN's
 * advertisements and told the gateway its IPv6 address (which joins its pool
 * by MAC); each leaves by its pool's line over IPv6 too (translated onto the
 * line's prefix, or masqueraded); then an IPv6-only failover.
 */
async function demonstrateIpv6(ctx: CliContext, topo: Topology, files: LabFiles, server: InternetHost, poolOf: ReadonlyMap<string, string>): Promise<boolean> {
  const say = (text: string): void => ctx.out(`${text}\n`);
  const v6 = topo.ipv6 as NonNullable<Topology['ipv6']>;
  say(`\nIPv6: the clients autoconfigured addresses in ${v6.lanPrefix} from the LAN's router advertisements; each sends one packet to ${v6.lanAddress} …`);
  await Promise.all(topo.clients.map((c) => waitFor(`${c.ns} to autoconfigure`, 10_000, () => sayHello(ctx.runner, topo, c, v6.lanAddress).then(() => true))));
  const report = await waitFor("every client's IPv6 address in its pool", 10_000, async () => {
    const current = await pools(files);
    return current.uplinks.reduce((n, u) => n + u.clients6.length, 0) >= topo.clients.length ? current : null;
  });
  say(`\n$ dispatcher pools\n${formatPools(report)}`);
  say(`each client fetches http://[${v6.server}]/ over IPv6:`);
  const leaving = await leavingTable(ctx, topo, poolOf, `[${v6.server}]`, (address) => uplinkByAddress6(topo, address));
  say(leaving.text);
  say(
    leaving.wrong === 0
      ? `all ${topo.clients.length} clients left by the uplink of their pool over IPv6 too (translated onto its prefix, or masqueraded).`
      : `${leaving.wrong} clients did not leave by their pool's uplink over IPv6.`,
  );
  const isp1 = topo.uplinks[0] as Topology['uplinks'][number];
  const failover = await demonstrateFailover(ctx, topo, files, server, poolOf, {
    name: 'IPv6',
    server: v6.server,
    fault: 'loses IPv6 alone (its ISP drops every IPv6 packet; IPv4 and the link stay up, so only its own IPv6 probes can tell)',
    blackhole: (on) => blackhole(ctx.runner, isp1, on, 'ipv6'),
    lineOf: (address) => uplinkByAddress6(topo, address),
    isBack: async () => (await ask(files.socket, { cmd: 'status' }).catch(() => null))?.uplinks[0]?.ipv6?.state === 'up',
  });
  return leaving.wrong === 0 && failover;
}

export function registerLab(program: Command, ctx: CliContext): void {
  program
    .command('lab')
    .description('build a dual-stack namespace lab (LAN clients, three uplinks, an internet host), run the dispatcher in it, show pools, traffic of both families and a failover of each, clean up')
    .option('--clients <n>', 'number of LAN clients', '8')
    .option(
      '--ipv4-only',
      "leave IPv6 out (pools/lab.yaml); by default the lab is dual-stack: the LAN autoconfigures IPv6 and the lines carry it (IPv6 nat mode, pools/lab-dual-stack.yaml), and the lab shows both families leaving by the pool's line and an IPv6 failover",
    )
    .option('--hold', 'keep the lab running until Ctrl-C (or SIGTERM, SIGHUP)')
    .option('--ha', 'a pair of gateways instead (keepalived and conntrackd in each, three lines of the kinds a pair has), and a takeover with its figures')
    .option('--clean', 'only remove what labs and test runs that died left behind (namespaces, their processes, temporary files), and say what')
    .action(async (options: LabOptions) => {
      if (process.getuid?.() !== 0) throw new Failure('the lab needs root: it creates network namespaces (sudo npm run lab)');
      const clients = Number(options.clients);
      if (!Number.isInteger(clients) || clients < 1 || clients > 200) throw new Failure('--clients must be a whole number from 1 to 200', 2);
      const { runner } = ctx;
      surviveLostOutput(ctx);
      const say = (text: string): void => ctx.out(`${text}\n`);
      if (options.clean) {
        await cleanLeftoversSaying(runner, say);
        say('nothing else of a dead lab or test run is left.');
        return;
      }
      await cleanLeftoversSaying(runner, say);
      if (options.ha) {
        await haLab(ctx, clients, options.hold === true, say);
        return;
      }
      const ipv6 = options.ipv4Only !== true;
      if (ipv6 && (await findTool('radvd')) === null) throw new Failure("the dual-stack lab needs radvd (its ISPs' and LAN's router advertisements): apt install radvd, or run dispatcher lab --ipv4-only");
      const prefix = runPrefix('lab');
      let topo: Topology | null = null;
      let daemon: RunningDaemon | null = null;
      let server: InternetHost | null = null;
      let files: LabFiles | null = null;
      let page: PageForward | null = null;
      let cleaning: Promise<void> | null = null;
      const cleanup = (): Promise<void> =>
        (cleaning ??= (async () => {
          say('\ncleaning up: stopping the dispatcher (it leaves the kernel programmed), deleting the namespaces …');
          await page?.stop();
          await daemon?.stop();
          server?.process.stop('SIGKILL');
          if (topo) await destroyTopology(runner, topo);
          if (files) await removeLabFiles(files);
          // What a signal caught half-built (namespaces the build had not reported yet).
          await removeRun(runner, prefix);
          say('done: nothing of the lab is left.');
        })());
      // Ended by a signal: exit as a shell reports it (128 + its number) once clean.
      const interrupt = (signal: NodeJS.Signals): void => void cleanup().then(() => process.exit(128 + (constants.signals[signal] ?? 0)));
      for (const signal of ENDING_SIGNALS) process.on(signal, interrupt);
      try {
        say(`building the lab: namespaces ${prefix}* …`);
        topo = await buildTopology(runner, { prefix, clients, uplinks: DEFAULT_UPLINKS, ipv6 });
        // Named like the namespaces: removed with them as a leftover if the lab dies.
        const dir = await mkdtemp(join(tmpdir(), prefix));
        const { config, token } = await writeConfig(ipv6 ? DUAL_STACK_CONFIG : LAB_CONFIG, dir);
        files = { dir, config, state: join(dir, 'state'), socket: join(dir, 'dispatcher.sock') };
        for (const u of topo.uplinks) {
          say(`  uplink ${u.name}: ${u.interface} ${u.pointToPoint ? 'point-to-point' : 'ethernet'}, ${u.local} via ${u.gateway}, weight ${u.weight}`);
          if (u.ipv6)
            say(`    IPv6 ${u.ipv6.local}, ${u.ipv6.prefix ? `delegated ${u.ipv6.prefix} (NPTv6)` : 'no delegated prefix (masquerade)'}, next hop ${u.pointToPoint ? u.ipv6.gateway : "from its ISP's router advertisements"}`);
        }
        say(`  LAN ${topo.lanSubnet}${topo.ipv6 ? ` and ${topo.ipv6.lanPrefix}` : ''} on lan0 with ${clients} clients; internet host ${topo.server}${topo.ipv6 ? ` and ${topo.ipv6.server}` : ''}`);
        server = await startServer(runner, topo);
        say(`starting the dispatcher in ${topo.gw} (config ${config}) …`);
        daemon = await startDaemon(runner, topo, files);
        page = await forwardPage(runner, topo.gw, dir, PAGE_LISTEN, HOST_PORT);
        say(`the web dashboard: ${page.url} (on this machine; from another, ssh -L ${new URL(page.url).port}:127.0.0.1:${new URL(page.url).port} to it first); actions need the token ${token}`);
        say('each client sends one packet to the gateway, which learns it from its neighbour table …');
        await Promise.all(topo.clients.map((c) => sayHello(runner, topo as Topology, c)));
        const labFiles = files;
        const report = await waitFor('every client to be assigned', 5000, async () => {
          const current = await pools(labFiles);
          return current.clients >= clients ? current : null;
        });
        say(`\n$ dispatcher pools\n${formatPools(report)}`);
        const poolOf = new Map(report.uplinks.flatMap((u) => u.clients.map((c) => [c, u.name] as const)));
        say(`each client fetches http://${topo.server}/ and the host reports the source address it saw:`);
        const labTopo = topo;
        const { text, wrong } = await leavingTable(ctx, topo, poolOf, topo.server, (address) => uplinkByAddress(labTopo, address));
        say(text);
        say(wrong === 0 ? `all ${clients} clients left by the uplink of their pool (MASQUERADE address of that line).` : `${wrong} clients did not leave by their pool's uplink.`);
        if (wrong > 0) ctx.exitCode = EXIT_FAILURE;
        const first = topo.clients[0]?.ip as string;
        const explained = await runDispatcher(runner, topo, files, ['explain', first], [0, 1, 2]);
        say(`\n$ dispatcher explain ${first}\n${explained.stdout}${explained.stderr}`);
        const isp1 = topo.uplinks[0] as Topology['uplinks'][number];
        const ipv4 = {
          name: 'IPv4',
          server: topo.server,
          fault: `dies silently (its ISP drops everything${topo.ipv6 ? ' of IPv4' : ''}; the link stays up)`,
          blackhole: (on: boolean) => blackhole(runner, isp1, on),
          lineOf: (address: string) => uplinkByAddress(labTopo, address),
          isBack: async () => (await pools(labFiles)).uplinks[0]?.state === 'up',
        } as const;
        if (!(await demonstrateFailover(ctx, topo, files, server, poolOf, ipv4))) ctx.exitCode = EXIT_FAILURE;
        if (topo.ipv6 && !(await demonstrateIpv6(ctx, topo, files, server, poolOf))) ctx.exitCode = EXIT_FAILURE;
        if (options.hold) {
          say(
            `\nthe lab stays up. Open ${page.url} in a browser (the token for its actions: ${token}) and watch a line die: ip netns exec ${isp1.isp} iptables -t raw -I PREROUTING -i cust -j DROP (-D to bring it back). Or try, in another terminal:`,
          );
          const cli = `ip netns exec ${topo.gw} ${process.argv[1]} --config ${config} --socket ${files.socket} --state ${files.state}`;
          say(`  ${cli} pools`);
          say(`  ${cli} top                  (the live view; stream traffic from a client to see it move)`);
          say(`  ${cli} explain ${topo.clients[0]?.ip ?? ''}`);
          say(`  ${cli} doctor`);
          say(`  ip netns exec ${topo.clients[0]?.ns} ${process.execPath} ${join(fileURLToPath(new URL('../../lab/', import.meta.url)), 'agent.js')} get http://${topo.server}/`);
          say(`  ip netns exec ${topo.gw} iptables-save; ip -n ${topo.gw} rule; ip -n ${topo.gw} route show table all`);
          if (topo.ipv6) say(`  ip netns exec ${topo.gw} ip6tables-save; ip -n ${topo.gw} -6 rule; ip -n ${topo.gw} -6 route show table all`);
          say('press Ctrl-C to stop and clean up.');
          await new Promise<never>(() => undefined);
        }
      } catch (error) {
        if (daemon) ctx.err(`dispatcher log:\n${daemon.logs.slice(-30).join('\n')}\n`);
        throw error;
      } finally {
        await cleanup();
        for (const signal of ENDING_SIGNALS) process.off(signal, interrupt);
      }
    });
}

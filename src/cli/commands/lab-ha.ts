// `dispatcher lab --ha`: a pair of gateways in namespaces (src/lab/ha-pair.ts)
// with the real keepalived and conntrackd, its clients spread over three
// lines of the three kinds a pair has, and a takeover shown with its figures:
// when the other gateway held the addresses, each client's longest gap, a TCP
// connection through the shared address going on, nobody changing line.

import { constants } from 'node:os';
import type { PoolsReport } from '../../schema/control.js';
import { type GatewayName, HaPair, PAIR_LAN_ADDRESS, PAIR_SHARED } from '../../lab/ha-pair.js';
import { waitFor } from '../../lab/harness.js';
import { findTool } from '../../system/tools.js';
import type { CliContext } from '../context.js';
import { ENDING_SIGNALS, EXIT_FAILURE, Failure } from '../exit.js';
import { formatPools, table } from '../format.js';

/** The pair's lines, as the lab's output describes them. */
const LINES = [
  ['isp1', 'wan1', `ethernet, shared address ${PAIR_SHARED} (moves with the role: connections survive)`],
  ['isp2', 'wan2', 'ethernet, each gateway its own address (a DHCP lease each: pools survive, connections start again)'],
  ['isp3', 'ppp0', 'a session only the master holds (PPPoE: the new master dials; simulated)'],
] as const;

export async function haLab(ctx: CliContext, clients: number, hold: boolean, say: (text: string) => void): Promise<void> {
  for (const tool of ['keepalived', 'conntrackd']) {
    if ((await findTool(tool)) === null) throw new Failure(`the pair lab needs ${tool}: apt install keepalived conntrackd (bin/setup installs them)`);
  }
  let pair: HaPair | null = null;
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      say('\ncleaning up: stopping keepalived, conntrackd and both dispatchers, deleting the namespaces …');
      await pair?.destroy();
      say('done: nothing of the lab is left.');
    })());
  const interrupt = (signal: NodeJS.Signals): void => void cleanup().then(() => process.exit(128 + (constants.signals[signal] ?? 0)));
  for (const signal of ENDING_SIGNALS) process.on(signal, interrupt);
  try {
    say('building the pair lab …');
    pair = await HaPair.create({ clients, tag: 'labha' });
    const built = pair;
    say(`  namespaces ${built.prefix}*: gateways a (VRRP priority 150) and b (100), sync link sync0 198.19.255.0/30, LAN 198.18.0.0/16 with ${clients} clients, gateway address ${PAIR_LAN_ADDRESS}`);
    for (const [name, iface, kind] of LINES) say(`  ${name} on ${iface}: ${kind}`);
    say('starting in each gateway: dispatcher ha render, conntrackd, the dispatcher (fenced until keepalived speaks), keepalived …');
    const master = await built.start();
    const backup = built.other(master);
    say(`keepalived made ${master} master: it holds ${PAIR_LAN_ADDRESS} and ${PAIR_SHARED}, its fence is down and it dialled isp3; ${backup} is backup, fenced.`);
    await built.startServers();
    say('each client sends one packet to the gateway address; the master assigns them and sends them to the backup …');
    await built.hello();
    await waitFor('the master to assign every client', 10_000, async () => ((await built.pools(master)).size === clients ? true : null));
    // One client on each line at least, so the takeover shows each kind.
    for (const [i, [line]] of LINES.entries()) {
      const client = built.clients[i];
      if (client) await built.cli(master, ['assign', client.ip, line]);
    }
    const pools = await built.pools(master);
    const synced = await waitFor('the backup to hold the same pools', 5_000, async () => (same(await built.pools(backup), pools) ? true : null)).catch(() => false);
    const report = JSON.parse((await built.cli(master, ['pools', '--json'])).stdout) as PoolsReport;
    say(`\n$ dispatcher pools   (on ${master})\n${formatPools(report)}`);
    say(synced ? `${backup} holds the same pools (state channel lag ${(await built.status(master)).ha?.lagMs ?? '?'} ms).` : `${backup} does NOT hold the same pools.`);
    say(`\n$ dispatcher status   (on ${backup}, the pair's line)\n${(await built.cli(backup, ['status'])).stdout.split('\n').find((l) => l.startsWith('pair:')) ?? ''}`);
    await waitFor('every client to leave by its line', 20_000, async () => {
      for (const client of built.clients) if ((await built.leavesBy(client).catch(() => undefined)) !== pools.get(client.ip)) return null;
      return true;
    }).catch(() => undefined);
    say(`\nthe master dies: its keepalived and dispatcher killed with SIGKILL, while every client streams 50 datagrams a second and a client on isp1 holds a TCP connection …`);
    const figures = await built.takeover(master, 'kill', pools);
    say(
      `${backup} held every address ${figures.movedMs.toFixed(0)} ms after the kill; the TCP connection answered ${figures.tcp ? `${figures.tcp.ms.toFixed(0)} ms after it, from ${figures.tcp.source}${figures.tcp.reset ? ' (but it was reset)' : ', never reset'}` : 'never'}.`,
    );
    say(
      table(
        ['client', 'pool', 'longest gap', 'last datagram by'],
        figures.gaps.map((g) => [g.client, pools.get(g.client) ?? '', `${g.gapMs} ms`, g.last ?? '?']),
      ),
    );
    const after = await built.pools(backup);
    const changed = [...pools].filter(([client, line]) => after.get(client) !== line).length;
    say(`${changed} clients changed line (${backup} has every pool as ${master} had it). isp2's and isp3's connections started again (their addresses did not move); isp1's went on.`);
    const kept = changed === 0 && figures.tcp !== null && !figures.tcp.reset && figures.gaps.every((g) => g.gapMs < 3000);
    if (!kept) ctx.exitCode = EXIT_FAILURE;
    if (hold) {
      const dead: GatewayName = master;
      say(`\nthe lab stays up with ${backup} master (${dead}'s namespace is still there, its dispatcher and keepalived dead). Try, in another terminal:`);
      for (const gw of [backup, dead] as const) say(`  ip netns exec ${built.gateway(gw).ns} ${process.argv[1]} --config ${built.files(gw).config} status`);
      say('press Ctrl-C to stop and clean up.');
      await new Promise<never>(() => undefined);
    }
  } catch (error) {
    if (pair) for (const [gw, logs] of pair.logs) ctx.err(`dispatcher log of ${gw}:\n${logs.slice(-20).join('\n')}\n`);
    throw error;
  } finally {
    await cleanup();
    for (const signal of ENDING_SIGNALS) process.off(signal, interrupt);
  }
}

function same(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);
}

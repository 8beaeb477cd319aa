// Scenario 2: small-packet forwarding through the gateway with many clients
// programmed, with each netfilter backend, against the same path with no
// dispatcher rules (a plain NAT gateway: one default route, one MASQUERADE,
// and the same clients as neighbours, in an identical lab where no policy
// rule has ever been: only our rules differ) and against the naive design
// (that gateway plus one mangle MARK rule per client). iperf3
// sends 64-byte UDP payloads as fast as it can from a LAN client to the
// internet host; the figure is what the receiver got per second. The set-ups
// alternate, and each figure is the median of its repeats.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sayHello, waitFor } from '../lab/harness.js';
import { Lab } from '../lab/lab.js';
import { inNamespace } from '../lab/topology.js';
import type { Process } from '../system/exec.js';
import { AFTER_BURST_MS, addNeighbours, afterBurst, NAIVE_CHAIN, naiveRule, resetGateway, untilClassified } from './clients.js';
import type { BenchContext } from './context.js';
import { figure, type ScenarioResult } from './report.js';
import { median } from './stats.js';

const PORT = '5201';

interface IperfEnd {
  end: { sum: { packets: number; lost_packets: number; seconds: number } };
}

async function udpRate(lab: Lab, seconds: number): Promise<number> {
  const client = lab.client(0);
  const result = await lab.runner.run(inNamespace(client.ns, ['iperf3', '-c', lab.topo.server, '-p', PORT, '-u', '-l', '64', '-b', '0', '-t', String(seconds), '--json']), {
    timeoutMs: (seconds + 20) * 1000,
  });
  const { sum } = (JSON.parse(result.stdout) as IperfEnd).end;
  return (sum.packets - sum.lost_packets) / sum.seconds;
}

/** The plain NAT gateway the other set-ups are compared with: default route and MASQUERADE over the first uplink. */
async function plainGateway(lab: Lab): Promise<void> {
  const uplink = lab.topo.uplinks[0];
  if (!uplink) throw new Error('the lab has no uplink');
  await lab.runIn(lab.topo.gw, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await lab.runIn(lab.topo.gw, ['ip', 'route', 'add', 'default', 'via', uplink.gateway, 'dev', uplink.interface, 'onlink']);
  await lab.runIn(lab.topo.gw, ['iptables', '-t', 'nat', '-A', 'POSTROUTING', '-o', uplink.interface, '-j', 'MASQUERADE']);
}

/** One MARK rule per client in a chain every forwarded packet walks (the client under test matches none, as most do not). */
async function naiveRules(lab: Lab, count: number, on: boolean): Promise<void> {
  if (!on) {
    await lab.runIn(lab.topo.gw, ['iptables', '-t', 'mangle', '-D', 'PREROUTING', '-j', NAIVE_CHAIN]);
    await lab.runIn(lab.topo.gw, ['iptables', '-t', 'mangle', '-F', NAIVE_CHAIN]);
    await lab.runIn(lab.topo.gw, ['iptables', '-t', 'mangle', '-X', NAIVE_CHAIN]);
    return;
  }
  const rules = Array.from({ length: count }, (_, i) => `-A ${naiveRule(i)}`);
  const file = join(lab.files.dir, 'naive.rules');
  await writeFile(file, ['*mangle', `:${NAIVE_CHAIN} - [0:0]`, `-A PREROUTING -j ${NAIVE_CHAIN}`, ...rules, 'COMMIT', ''].join('\n'));
  await lab.runIn(lab.topo.gw, ['iptables-restore', '--noflush', file]);
}

/** How many policies the policy set-up has: the figure. */
const POLICIES = 50;

/**
 * 50 policies, none of which takes the measured flow (its first packet walks
 * them all and falls through, the worst case for a first packet), each with
 * a destination network outside the lab's traffic and the same via list.
 */
function policiesYaml(): string {
  const lines = Array.from({ length: POLICIES }, (_, i) => `  - { match: { destination: [198.19.${i}.0/24], protocol: tcp, port: [443] }, via: [isp2, isp1] }`);
  return ['policies:', ...lines, ''].join('\n');
}

/** One dispatcher set-up: start, program the clients, measure, take everything away again. */
async function measured(lab: Lab, count: number, seconds: number): Promise<number> {
  await lab.start();
  await addNeighbours(lab, count);
  await sayHello(lab.runner, lab.topo, lab.client(0));
  await untilClassified(lab, count + 1, performance.now(), 60_000);
  await afterBurst();
  const rate = await udpRate(lab, seconds);
  await resetGateway(lab);
  return rate;
}

/** An iperf3 server on the lab's internet host, listening. */
async function iperfServer(lab: Lab): Promise<Process> {
  const said: string[] = [];
  const server = lab.runner.spawn(inNamespace(lab.topo.inet, ['iperf3', '-s', '-B', lab.topo.server, '-p', PORT, '--forceflush']), { onLine: (line) => said.push(line) });
  await waitFor('iperf3 to listen', 10_000, async () => (said.some((line) => line.includes('listening')) ? true : null));
  return server;
}

export async function forwarding(ctx: BenchContext): Promise<ScenarioResult> {
  const { forwardingClients: count, forwardingSeconds: seconds, forwardingRepeats: repeats } = ctx.sizes;
  const host = { schedule: '0 0 * * * *' };
  const lab = await Lab.create({ clients: 1, tag: 'b', config: host });
  // The no-rule gateway is a lab of its own, where no policy rule has ever been: once one has existed in a
  // namespace, the kernel walks the rule list for every route lookup (and checks each source by a full
  // lookup) for good, and our lab's gateway would charge the baseline with our rules' cost.
  const bare = await Lab.create({ clients: 1, tag: 'n', config: host });
  const servers: Process[] = [];
  try {
    servers.push(await iperfServer(lab), await iperfServer(bare));
    // The same LAN without our rules: as many clients in the gateway's neighbour table.
    await addNeighbours(bare, count);
    await plainGateway(bare);
    await afterBurst();
    const rates = { plain: [] as number[], ours: [] as number[], nft: [] as number[], naive: [] as number[], policies: [] as number[] };
    for (let round = 0; round < repeats; round++) {
      rates.ours.push(await measured(lab, count, seconds));
      await lab.rewriteConfig({ ...host, backend: 'nftables' });
      rates.nft.push(await measured(lab, count, seconds));
      await lab.rewriteConfig({ ...host, extra: policiesYaml() });
      rates.policies.push(await measured(lab, count, seconds));
      await lab.rewriteConfig(host);
      rates.plain.push(await udpRate(bare, seconds));
      await naiveRules(bare, count, true);
      rates.naive.push(await udpRate(bare, seconds));
      await naiveRules(bare, count, false);
      ctx.log(
        `forwarding round ${round + 1}: plain ${rates.plain.at(-1)?.toFixed(0)} pps, dispatcher ${rates.ours.at(-1)?.toFixed(0)} pps, nftables ${rates.nft.at(-1)?.toFixed(0)} pps, with ${POLICIES} policies ${rates.policies.at(-1)?.toFixed(0)} pps, naive ${rates.naive.at(-1)?.toFixed(0)} pps`,
      );
    }
    const plain = median(rates.plain);
    const ours = median(rates.ours);
    const nft = median(rates.nft);
    const naive = median(rates.naive);
    const policies = median(rates.policies);
    const k = `${count.toLocaleString('en-US')}`;
    return {
      id: 'forwarding',
      title: `Forwarding cost: 64-byte UDP through the gateway with ${k} clients programmed`,
      baseline: 'the same path with no dispatcher rules (a plain NAT gateway: one default route, one MASQUERADE; the same clients in its neighbour table), in an identical lab where no policy rule has ever been',
      figures: [
        figure({ name: `dispatcher (iptables), ${k} clients (÷ no rules)`, unit: 'pps', value: ours, baseline: plain, lowerIsBetter: false, target: { text: '≥ 0.90× the no-rule rate', min: 0.9 * plain } }),
        figure({ name: `dispatcher (nftables), ${k} clients (÷ no rules)`, unit: 'pps', value: nft, baseline: plain, lowerIsBetter: false, target: { text: '≥ 0.95× the no-rule rate', min: 0.95 * plain } }),
        figure({ name: `naive chain, ${k} rules (÷ no rules)`, unit: 'pps', value: naive, baseline: plain, lowerIsBetter: false }),
        figure({ name: `dispatcher ÷ naive chain`, unit: 'pps', value: ours, baseline: naive, baselineNote: 'naive chain', lowerIsBetter: false }),
        figure({
          name: `dispatcher with ${POLICIES} policies, ${k} clients (÷ host mode)`,
          unit: 'pps',
          value: policies,
          baseline: ours,
          baselineNote: 'host mode',
          lowerIsBetter: false,
          target: { text: '≥ 0.95× host mode', min: 0.95 * ours },
        }),
      ],
      notes: [
        `iperf3 -u -l 64 -b 0 for ${seconds} s from a LAN client namespace to the internet host, received packets per second; median of ${repeats} alternating round(s). Every set-up is measured ${AFTER_BURST_MS / 1000} s after its clients were loaded: the daemon's handling of the burst (with nftables, reading its ${k} element events) is not forwarding's cost.`,
        'The targets are the issue’s: at 50,000 clients, ≥ 0.90× the no-rule rate with iptables (one ipset lookup in mangle), ≥ 0.95× with nftables (one map lookup in our own table). The naive chain and the policies are measured with iptables.',
        `The ${POLICIES} policies (destination networks, tcp port 443, one via list) never take the measured flow: its first packet walks all of them; every later packet has its line in the connection mark and skips them, which is what the rate shows.`,
        "Every namespace shares this machine's CPUs: sender, gateway and receiver compete, so the rates are lower than a real gateway's; the ratios are what carries over.",
      ],
    };
  } finally {
    for (const server of servers) server.stop('SIGKILL');
    await lab.destroy();
    await bare.destroy();
  }
}

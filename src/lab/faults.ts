// Line failures for the lab, all made inside an ISP's namespace (the gateway
// and the root namespace are never touched). There is no netem here: loss is
// iptables' statistic match.
//   blackhole  silent: the link stays up, nothing the gateway sends gets through (IPv4, or IPv6 alone)
//   cut        hard: the ISP side of the link goes down, the gateway loses carrier
//   loss       each packet across the customer link dropped with probability p, both ways

import type { Runner } from '../system/exec.js';
import { inNamespace, type LabUplink } from './topology.js';

const BLACKHOLE = ['-t', 'raw', 'PREROUTING', '-i', 'cust', '-j', 'DROP'];

function rule(action: '-I' | '-D', spec: readonly string[]): string[] {
  const [flag, table, chain, ...rest] = spec as [string, string, string, ...string[]];
  return ['iptables', flag, table, action, chain, ...rest];
}

/** `family`: ipv6 drops the line's IPv6 alone (ip6tables), its IPv4 and link untouched. */
export async function blackhole(runner: Runner, uplink: LabUplink, on: boolean, family: 'ipv4' | 'ipv6' = 'ipv4'): Promise<void> {
  const [command, ...rest] = rule(on ? '-I' : '-D', BLACKHOLE) as [string, ...string[]];
  await runner.run(inNamespace(uplink.isp, [family === 'ipv6' ? 'ip6tables' : command, ...rest]));
}

export async function cut(runner: Runner, uplink: LabUplink, on: boolean): Promise<void> {
  await runner.run(['ip', '-n', uplink.isp, 'link', 'set', 'dev', uplink.ispInterface, on ? 'down' : 'up']);
}

export async function loss(runner: Runner, uplink: LabUplink, probability: number, on: boolean): Promise<void> {
  const random = ['-m', 'statistic', '--mode', 'random', '--probability', String(probability), '-j', 'DROP'];
  for (const spec of [
    ['-t', 'raw', 'PREROUTING', '-i', 'cust', ...random],
    ['-t', 'mangle', 'POSTROUTING', '-o', 'cust', ...random],
  ]) {
    await runner.run(inNamespace(uplink.isp, rule(on ? '-I' : '-D', spec)));
  }
}

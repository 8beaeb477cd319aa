// Reading the byte counters: iptables-save -c of the mangle table (our
// counting rules) and ip -s link (the uplinks' interfaces).

import { poolBytes, type Traffic } from '../core/traffic.js';
import type { Config } from '../model/config.js';
import { parseIptablesSave } from '../parse/iptables-save.js';
import type { Runner } from './exec.js';

interface LinkStats {
  readonly ifname?: unknown;
  readonly stats64?: { readonly rx?: { readonly bytes?: unknown }; readonly tx?: { readonly bytes?: unknown } };
}

export async function readTraffic(runner: Runner, config: Config): Promise<Traffic> {
  const [save, links] = await Promise.all([runner.run(['iptables-save', '-c', '-t', 'mangle']), runner.run(['ip', '-j', '-s', 'link', 'show'])]);
  const stats = JSON.parse(links.stdout) as LinkStats[];
  const counters = (iface: string): { interface: string; rx: number; tx: number } | null => {
    const link = stats.find((l) => l.ifname === iface);
    const rx = Number(link?.stats64?.rx?.bytes);
    const tx = Number(link?.stats64?.tx?.bytes);
    return link && Number.isFinite(rx) && Number.isFinite(tx) ? { interface: iface, rx, tx } : null;
  };
  return {
    at: Date.now(),
    pools: poolBytes(config, parseIptablesSave(save.stdout)),
    uplinks: Object.fromEntries(config.uplinks.map((u) => [u.name, counters(u.interface)])),
  };
}

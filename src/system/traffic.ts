// Reading the byte counters: per uplink from ip -s link (shared by every
// backend); per pool from the netfilter backend's counting rules
// (backend.counters). The engine puts the two together into a Traffic.

import type { Traffic } from '../schema/control.js';
import type { Config } from '../model/config.js';
import type { Runner } from './exec.js';

interface LinkStats {
  readonly ifname?: unknown;
  readonly stats64?: { readonly rx?: { readonly bytes?: unknown }; readonly tx?: { readonly bytes?: unknown } };
}

/** Each uplink interface's received and transmitted bytes (null when the interface is absent). */
export async function readUplinkCounters(runner: Runner, config: Config): Promise<Traffic['uplinks']> {
  const stats = JSON.parse((await runner.run(['ip', '-j', '-s', 'link', 'show'])).stdout) as LinkStats[];
  const counters = (iface: string): { interface: string; rx: number; tx: number } | null => {
    const link = stats.find((l) => l.ifname === iface);
    const rx = Number(link?.stats64?.rx?.bytes);
    const tx = Number(link?.stats64?.tx?.bytes);
    return link && Number.isFinite(rx) && Number.isFinite(tx) ? { interface: iface, rx, tx } : null;
  };
  return Object.fromEntries(config.uplinks.map((u) => [u.name, counters(u.interface)]));
}

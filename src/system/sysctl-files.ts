// Reading sysctls from /proc/sys directly: the self-repair check reads ours
// every half second, and a process per read would cost more CPU than the
// rest of an idle gateway. /proc/sys/net shows the reading process's own
// network namespace, as `sysctl` does.

import { readFileSync } from 'node:fs';

/**
 * The file of a key: dots separate the path, except inside an interface name
 * (net.ipv4.conf.eth0.100.rp_filter is conf/eth0.100/rp_filter), as `sysctl`
 * reads it.
 */
export function sysctlPath(key: string): string {
  const parts = key.split('.');
  const conf = parts.indexOf('conf');
  if (parts[0] === 'net' && conf === 2 && parts.length > 5) {
    return ['/proc/sys', ...parts.slice(0, 3), parts.slice(3, -1).join('.'), parts.at(-1)].join('/');
  }
  return `/proc/sys/${parts.join('/')}`;
}

/**
 * Current values of the keys that can be read (an interface that is gone has
 * none). Read synchronously: a /proc/sys file answers from memory in
 * microseconds, and a round through the thread pool per file cost more.
 */
export async function readSysctlFiles(keys: readonly string[]): Promise<Record<string, string>> {
  const values: Record<string, string> = {};
  for (const key of keys) {
    try {
      values[key] = readFileSync(sysctlPath(key), 'utf8').trim();
    } catch {
      // Gone with its interface, or not in this kernel.
    }
  }
  return values;
}

// Reading sysctls from /proc/sys directly: the self-repair check reads ours
// every half second, and a process per read would cost more CPU than the
// rest of an idle gateway. /proc/sys/net shows the reading process's own
// network namespace, as `sysctl` does.

import { readFile } from 'node:fs/promises';

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

/** Current values of the keys that can be read (an interface that is gone has none). */
export async function readSysctlFiles(keys: readonly string[]): Promise<Record<string, string>> {
  const values = await Promise.all(keys.map(async (key) => [key, (await readFile(sysctlPath(key), 'utf8').catch(() => null))?.trim()] as const));
  return Object.fromEntries(values.filter((entry): entry is readonly [string, string] => entry[1] !== undefined && entry[1] !== null));
}

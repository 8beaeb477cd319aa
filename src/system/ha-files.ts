// Writing a pair's keepalived and conntrackd configs and the notify script
// (`dispatcher ha render`; the texts come from src/render/). keepalived runs
// the notify script as root only if no one else can change it or any
// directory above it, so the directory is made 0755 and the files are not
// group- or world-writable.

import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import type { Config } from '../model/config.js';
import { haRuntimeDir } from '../render/conntrackd-conf.js';
import { haFiles } from '../render/ha-files.js';
import type { PppHookPaths } from '../render/ppp-hook.js';
import { recordConntrackdConf } from './conntrackd.js';
import type { Runner } from './exec.js';
import { readLinks } from './kernel.js';

export interface HaFiles {
  readonly keepalived: string;
  readonly conntrackd: string;
  readonly notify: string;
  /** Where keepalived's pid files and conntrackd's lock, socket and log go: under the state directory. */
  readonly runtime: string;
}

/** keepalived and conntrackd read these files with their own parsers, which split at spaces and braces: such a path cannot be written into them. */
const PLAIN_PATH = /^\/[A-Za-z0-9_.,+@%=:/-]*$/;

/** This gateway's IPv4 address on the sync link, as the kernel has it. */
export async function syncAddress(runner: Runner, iface: string): Promise<string> {
  const link = (await readLinks(runner)).find((l) => l.name === iface);
  if (!link) throw new Error(`ha.interface: there is no interface ${iface} here; create the sync link (or name the right one) and render again`);
  const address = link.addresses[0]?.local;
  if (address === undefined) throw new Error(`ha.interface: ${iface} has no IPv4 address; give it one (e.g. 198.19.255.1/30) and render again`);
  return address;
}

export async function writeHaFiles(runner: Runner, config: Config, dir: string, paths: PppHookPaths): Promise<HaFiles> {
  const ha = config.ha;
  if (!ha) throw new Error('ha: this config has no ha section; add it (see README, "A pair of gateways") and render again');
  const runtime = haRuntimeDir(config.state);
  for (const [what, path] of [
    ['--dir', dir],
    ['state', runtime],
  ] as const) {
    if (!PLAIN_PATH.test(path)) throw new Error(`${what}: ${JSON.stringify(path)} has characters keepalived and conntrackd cannot take in a path; use letters, digits and / . _ - only`);
  }
  const own = await syncAddress(runner, ha.interface);
  const [keepalived, conntrackd, notify] = haFiles(config, dir, own, paths);
  const files: HaFiles = { keepalived: keepalived.path, conntrackd: conntrackd.path, notify: notify.path, runtime };
  // keepalived runs the notify script only if no one but root can change it or its directory. A directory made
  // here is made so; one that exists is left as it is (never opened up or narrowed: /tmp, /root), refused if others may write it.
  const made = await mkdir(dir, { recursive: true, mode: 0o755 });
  if (made !== undefined) await chmod(dir, 0o755);
  else if (((await stat(dir)).mode & 0o022) !== 0) throw new Error(`--dir: ${dir} may be written by others, so keepalived would refuse the notify script in it; use a directory of its own, e.g. /etc/dispatcher/ha`);
  await mkdir(runtime, { recursive: true, mode: 0o755 });
  for (const file of [keepalived, conntrackd, notify]) {
    await writeFile(file.path, file.text as string, { mode: file.mode });
    // writeFile's mode is only for a new file, and the umask narrows it: set it either way.
    await chmod(file.path, file.mode);
  }
  // The daemon's takeover asks conntrackd through this config's socket.
  await recordConntrackdConf(config.state, files.conntrackd);
  return files;
}

/** The pair's shared key: the first line of ha.key, 16 characters or more, in a file only its owner may read. */
export async function readHaKey(path: string): Promise<string> {
  const mode = (await stat(path)).mode & 0o077;
  if (mode !== 0) throw new Error(`ha.key: ${path} may be read by others (mode ${(mode | 0o600).toString(8)}); chmod 600 it`);
  const key = (await readFile(path, 'utf8')).split('\n')[0]?.trim() ?? '';
  if (key.length < 16) throw new Error(`ha.key: ${path} holds no key of 16 characters or more; write one (openssl rand -hex 32) on both gateways`);
  return key;
}

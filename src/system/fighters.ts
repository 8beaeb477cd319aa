// Software on this host known to undo what the dispatcher sets up (network
// managers that delete "foreign" rules and routes, firewall services that
// flush tables on reload), found by reading files only: /proc/<pid>/comm for
// what runs, the symlinks in /etc/systemd/system/*.wants/ for what is
// enabled, and each program's own configuration. No systemctl, no shell, so
// doctor sees the same on any init and a test can hand it a directory as `root`.
// core/doctor.ts judges the result.

import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHAIN_PREFIX } from '../core/contract.js';
import type { FighterFacts, NetworkdSetting } from '../core/fighters.js';

/** Process names as /proc/<pid>/comm shows them (cut to 15 characters by the kernel). */
const PROCESS = { networkd: 'systemd-network', networkManager: 'NetworkManager', firewalld: 'firewalld' } as const;

const read = (root: string, path: string): Promise<string | null> => readFile(join(root, path), 'utf8').catch(() => null);
const list = (root: string, dir: string): Promise<string[]> => readdir(join(root, dir)).catch(() => []);

/** The names every running process gave itself. */
async function runningNames(root: string): Promise<Set<string>> {
  const pids = (await list(root, 'proc')).filter((name) => /^\d+$/.test(name));
  const names = await Promise.all(pids.map((pid) => read(root, `proc/${pid}/comm`)));
  return new Set(names.flatMap((name) => (name === null ? [] : [name.trim()])));
}

/** Units enabled for any target: the entries of /etc/systemd/system/*.wants/. */
async function enabledUnits(root: string): Promise<Set<string>> {
  const base = 'etc/systemd/system';
  const wants = (await list(root, base)).filter((name) => name.endsWith('.wants'));
  const units = await Promise.all(wants.map((dir) => list(root, `${base}/${dir}`)));
  return new Set(units.flat());
}

interface IniEntry {
  readonly section: string;
  readonly key: string;
  readonly value: string;
  /** NetworkManager.conf's "key+=value" appends to a list set by an earlier file. */
  readonly append: boolean;
}

/** The key=value lines of an ini-style file (systemd units, NetworkManager.conf), with their section. */
export function parseIni(text: string): IniEntry[] {
  let section = '';
  return text.split('\n').flatMap((raw) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return [];
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]?.trim() ?? '';
      return [];
    }
    const pair = /^([^=+\s]+)\s*(\+?)=\s*(.*)$/.exec(line);
    return pair ? [{ section, key: pair[1] ?? '', value: pair[3] ?? '', append: pair[2] === '+' }] : [];
  });
}

/**
 * Drop-in files of a configuration directory searched in several places: a
 * name in an earlier directory hides the same name in a later one, and the
 * files apply in the lexical order of their names (systemd's and
 * NetworkManager's rule alike).
 */
async function dropIns(root: string, dirs: readonly string[]): Promise<string[]> {
  const byName = new Map<string, string>();
  for (const dir of dirs) {
    for (const name of await list(root, dir)) if (name.endsWith('.conf') && !byName.has(name)) byName.set(name, `${dir}/${name}`);
  }
  return [...byName.keys()].sort().map((name) => byName.get(name) as string);
}

/** systemd-networkd's [Network] Manage* settings: networkd.conf, then its drop-ins, the last one set wins. */
async function networkdSettings(root: string): Promise<FighterFacts['networkd']> {
  const files = ['etc/systemd/networkd.conf', ...(await dropIns(root, ['etc/systemd/networkd.conf.d', 'run/systemd/networkd.conf.d', 'usr/local/lib/systemd/networkd.conf.d', 'usr/lib/systemd/networkd.conf.d']))];
  const settings: { ManageForeignRoutingPolicyRules: NetworkdSetting | null; ManageForeignRoutes: NetworkdSetting | null } = { ManageForeignRoutingPolicyRules: null, ManageForeignRoutes: null };
  for (const file of files) {
    const text = await read(root, file);
    if (text === null) continue;
    for (const entry of parseIni(text)) {
      if (entry.section === 'Network' && (entry.key === 'ManageForeignRoutingPolicyRules' || entry.key === 'ManageForeignRoutes')) settings[entry.key] = { value: entry.value, file: `/${file}` };
    }
  }
  return settings;
}

/**
 * NetworkManager's device lists: [keyfile] unmanaged-devices after every
 * file (conf.d under /usr/lib, then /run, then NetworkManager.conf, then
 * /etc's conf.d; a name in /etc/NetworkManager/conf.d hides the others), and
 * the interfaces of /etc/network/interfaces when the ifupdown plugin is on
 * with managed=false (Debian's default): NetworkManager leaves those alone too.
 */
async function networkManagerFacts(root: string): Promise<FighterFacts['networkManager']> {
  const early = await dropIns(root, ['usr/lib/NetworkManager/conf.d', 'run/NetworkManager/conf.d']);
  const late = await dropIns(root, ['etc/NetworkManager/conf.d']);
  const lateNames = new Set(late.map((file) => file.slice(file.lastIndexOf('/'))));
  const files = [...early.filter((file) => !lateNames.has(file.slice(file.lastIndexOf('/')))), 'etc/NetworkManager/NetworkManager.conf', ...late];
  let unmanaged: string[] = [];
  let plugins: string[] = [];
  let ifupdownManaged = false;
  for (const file of files) {
    const text = await read(root, file);
    if (text === null) continue;
    for (const entry of parseIni(text)) {
      const values = entry.value
        .split(/[;,]/)
        .map((v) => v.trim())
        .filter((v) => v !== '');
      if (entry.section === 'keyfile' && entry.key === 'unmanaged-devices') unmanaged = entry.append ? [...unmanaged, ...values] : values;
      if (entry.section === 'main' && entry.key === 'plugins') plugins = entry.append ? [...plugins, ...values] : values;
      if (entry.section === 'ifupdown' && entry.key === 'managed') ifupdownManaged = /^(true|yes|1)$/i.test(entry.value.trim());
    }
  }
  const ifupdownUnmanaged = plugins.includes('ifupdown') && !ifupdownManaged ? await ifupdownInterfaces(root) : [];
  return { unmanagedDevices: unmanaged, ifupdownUnmanaged };
}

/** Interfaces with an "iface" stanza in /etc/network/interfaces or /etc/network/interfaces.d/ (Debian sources that directory). */
async function ifupdownInterfaces(root: string): Promise<string[]> {
  const files = ['etc/network/interfaces', ...(await list(root, 'etc/network/interfaces.d')).map((name) => `etc/network/interfaces.d/${name}`)];
  const texts = await Promise.all(files.map((file) => read(root, file)));
  const names = texts.flatMap((text) => [...(text ?? '').matchAll(/^\s*iface\s+(\S+)/gm)].map((m) => m[1] as string));
  return [...new Set(names.filter((name) => name !== 'lo'))];
}

/** A shell-style KEY=value of /etc/ufw/ufw.conf or /etc/default/ufw, quotes removed. */
function shellValue(text: string | null, key: string): string | null {
  const match = new RegExp(`^\\s*${key}\\s*=\\s*["']?([^"'\\s#]*)`, 'm').exec(text ?? '');
  return match ? (match[1] ?? '') : null;
}

/** The tables an iptables-restore file loads ("*mangle" lines); restoring it without --noflush empties each of them. */
function restoredTables(text: string): string[] {
  return [...text.matchAll(/^\*(\w+)/gm)].map((m) => m[1] as string);
}

/** The first line of nftables.conf that empties every table, others' included. */
function flushRulesetLine(text: string): number | null {
  const index = text.split('\n').findIndex((line) => /^\s*flush\s+ruleset\b/.test(line));
  return index < 0 ? null : index + 1;
}

/** Everything doctor knows about the known fighters on the host whose filesystem starts at `root`. */
export async function gatherFighters(root = '/'): Promise<FighterFacts> {
  const [running, enabled, networkd, networkManager] = await Promise.all([runningNames(root), enabledUnits(root), networkdSettings(root), networkManagerFacts(root)]);
  const [ufwConf, ufwDefaults, firewalldConf, directXml, rulesV4, nftablesConf] = await Promise.all([
    read(root, 'etc/ufw/ufw.conf'),
    read(root, 'etc/default/ufw'),
    read(root, 'etc/firewalld/firewalld.conf'),
    read(root, 'etc/firewalld/direct.xml'),
    read(root, 'etc/iptables/rules.v4'),
    read(root, 'etc/nftables.conf'),
  ]);
  return {
    running: { networkd: running.has(PROCESS.networkd), networkManager: running.has(PROCESS.networkManager), firewalld: running.has(PROCESS.firewalld) },
    networkd,
    networkManager,
    ufw: ufwConf === null ? null : { enabled: /^yes$/i.test(shellValue(ufwConf, 'ENABLED') ?? ''), manageBuiltins: /^yes$/i.test(shellValue(ufwDefaults, 'MANAGE_BUILTINS') ?? '') },
    firewalld: {
      backend: shellValue(firewalldConf, 'FirewallBackend') || null,
      directRules: directXml !== null && /<(rule|passthrough|chain)\b/.test(directXml),
    },
    netfilterPersistent: {
      enabled: enabled.has('netfilter-persistent.service'),
      rules: rulesV4 === null ? null : { file: '/etc/iptables/rules.v4', tables: restoredTables(rulesV4), ours: rulesV4.includes(`:${CHAIN_PREFIX}`) },
    },
    nftables: {
      enabled: enabled.has('nftables.service'),
      flushRulesetLine: nftablesConf === null ? null : flushRulesetLine(nftablesConf),
    },
  };
}

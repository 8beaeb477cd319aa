// Doctor's judgement of the other software on the host that undoes what is
// ours (a network manager deleting "foreign" rules and routes, a firewall that
// flushes on reload), and of the repairs the running daemon has made (pure;
// the facts come from system/fighters.ts and the daemon's status).

import type { Config } from '../model/config.js';
import type { RepairStatus } from '../schema/control.js';
import { CHAIN_PREFIX, ids } from './contract.js';
import type { Finding } from './finding.js';

/** A systemd-networkd setting and the last file that set it. */
export interface NetworkdSetting {
  readonly value: string;
  readonly file: string;
}

/** What doctor read about the programs known to delete or flush what we own. */
export interface FighterFacts {
  /** Which of them run now (/proc/<pid>/comm). */
  readonly running: { readonly networkd: boolean; readonly networkManager: boolean; readonly firewalld: boolean };
  /** networkd.conf's [Network] settings after its drop-ins; null: set nowhere (the default, yes). */
  readonly networkd: { readonly ManageForeignRoutingPolicyRules: NetworkdSetting | null; readonly ManageForeignRoutes: NetworkdSetting | null };
  readonly networkManager: {
    /** [keyfile] unmanaged-devices after every file, in NetworkManager's words ("interface-name:ppp*", "except:…"). */
    readonly unmanagedDevices: readonly string[];
    /** Interfaces of /etc/network/interfaces it leaves alone (ifupdown plugin with managed=false). */
    readonly ifupdownUnmanaged: readonly string[];
  };
  /** null: ufw is not installed (no /etc/ufw/ufw.conf). */
  readonly ufw: { readonly enabled: boolean; readonly manageBuiltins: boolean } | null;
  /** firewalld.conf's FirewallBackend (null: unset, nftables by default) and whether direct.xml holds rules. */
  readonly firewalld: { readonly backend: string | null; readonly directRules: boolean };
  readonly netfilterPersistent: {
    readonly enabled: boolean;
    /** The IPv4 rules file: the tables it restores, and whether it holds chains of ours (saved while we ran). */
    readonly rules: { readonly file: string; readonly tables: readonly string[]; readonly ours: boolean } | null;
  };
  /** nftables.service, and the line of /etc/nftables.conf that says "flush ruleset" (null: none, or no file). */
  readonly nftables: { readonly enabled: boolean; readonly flushRulesetLine: number | null };
}

/** A host where none of them is present. */
export const NO_FIGHTERS: FighterFacts = {
  running: { networkd: false, networkManager: false, firewalld: false },
  networkd: { ManageForeignRoutingPolicyRules: null, ManageForeignRoutes: null },
  networkManager: { unmanagedDevices: [], ifupdownUnmanaged: [] },
  ufw: null,
  firewalld: { backend: null, directRules: false },
  netfilterPersistent: { enabled: false, rules: null },
  nftables: { enabled: false, flushRulesetLine: null },
};

/** What the fighter findings need: the config names our interfaces. */
type FighterInput = { readonly config: Config; readonly fighters: FighterFacts };

/** What every flushing firewall finding says about the time until the daemon puts things back. */
const REPAIRED = 'the daemon puts them back within about a second, but connections opened in that window are reset';

/** systemd booleans: yes/no, true/false, on/off, 1/0. */
const isNo = (setting: NetworkdSetting | null): boolean => setting !== null && /^(no|false|off|0)$/i.test(setting.value.trim());

function networkdFinding(facts: FighterInput): Finding[] {
  const { running, networkd } = facts.fighters;
  const check = 'fighter:systemd-networkd';
  if (!running.networkd) return [];
  const keys = ['ManageForeignRoutingPolicyRules', 'ManageForeignRoutes'] as const;
  const missing = keys.filter((key) => !isNo(networkd[key]));
  if (missing.length === 0) return [{ check, severity: 'ok', summary: 'systemd-networkd runs and leaves ip rules and routes it did not make alone (ManageForeignRoutingPolicyRules=no, ManageForeignRoutes=no)' }];
  const what = { ManageForeignRoutingPolicyRules: 'ip rules', ManageForeignRoutes: 'routes' };
  const settings = missing.map((key) => {
    const setting = networkd[key];
    return setting ? `${key}=${setting.value} (${setting.file})` : `${key}=yes (the default)`;
  });
  return [
    {
      check,
      severity: 'warn',
      summary: `systemd-networkd runs with ${settings.join(' and ')}: each time it starts or reconfigures a link it deletes the ${missing.map((key) => what[key]).join(' and ')} it did not make, ours included, and clients lose their uplink until the daemon puts them back`,
      fix: `create /etc/systemd/networkd.conf.d/zz-dispatcher.conf (drop-ins apply in lexical order, the last one wins) with "[Network]" and ${missing.map((key) => `"${key}=no"`).join(' and ')} on lines of their own, then systemctl restart systemd-networkd`,
    },
  ];
}

/** One NetworkManager device spec ("interface-name:ppp*", "*") against an interface name; other kinds (mac:, type:, driver:) are not judged. */
function nmSpecMatches(spec: string, name: string): boolean {
  if (spec === '*') return true;
  const pattern = /^interface-name:(.*)$/.exec(spec)?.[1];
  if (pattern === undefined) return false;
  if (pattern.startsWith('=')) return pattern.slice(1) === name;
  const glob = pattern.startsWith('~') ? pattern.slice(1) : pattern;
  const regex = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  // Anchored by hand: the end anchor written in a template literal reads as a shell command to the architecture test.
  return new RegExp(['^', regex, '$'].join('')).test(name);
}

/** NetworkManager's device list rule: an except: match wins; a list of only except: entries matches everything else. */
function nmListMatches(specs: readonly string[], name: string): boolean {
  const negative = specs.filter((s) => s.startsWith('except:')).map((s) => s.slice('except:'.length));
  const positive = specs.filter((s) => !s.startsWith('except:'));
  if (negative.some((s) => nmSpecMatches(s, name))) return false;
  return positive.length === 0 ? negative.length > 0 : positive.some((s) => nmSpecMatches(s, name));
}

function networkManagerFinding(facts: FighterInput): Finding[] {
  const { running, networkManager } = facts.fighters;
  if (!running.networkManager) return [];
  const check = 'fighter:networkmanager';
  const ours = [...new Set([...facts.config.uplinks.map((u) => u.interface), ...facts.config.lan.interfaces])];
  const managed = ours.filter((name) => !networkManager.ifupdownUnmanaged.includes(name) && !nmListMatches(networkManager.unmanagedDevices, name));
  if (managed.length === 0) return [{ check, severity: 'ok', summary: `NetworkManager runs and leaves ${ours.join(', ')} unmanaged` }];
  const { first, last } = ids(facts.config).priorities;
  return [
    {
      check,
      severity: 'warn',
      summary: `NetworkManager runs and may manage ${managed.join(', ')}: when a device's profile sets ipv4.route-table, NetworkManager deletes the routes it did not add from every table of that device, ours included (with the default 0 it syncs only the main table, where the dispatcher keeps no routes); ip rules it did not add it leaves alone`,
      fix: `leave them to the dispatcher: create /etc/NetworkManager/conf.d/dispatcher.conf with "[keyfile]" and "unmanaged-devices+=${managed.map((name) => `interface-name:${name}`).join(';')}" on lines of their own (+= keeps the devices other files list), then systemctl reload NetworkManager. If NetworkManager must bring a link up (DHCP, PPPoE), keep it managed, leave ipv4.route-table at 0 (the default) on its profile and give no profile routing rules at priorities ${first}–${last}`,
    },
  ];
}

function ufwFinding(facts: FighterInput): Finding[] {
  const ufw = facts.fighters.ufw;
  if (!ufw?.enabled) return [];
  const check = 'fighter:ufw';
  if (!ufw.manageBuiltins) return [{ check, severity: 'ok', summary: 'ufw is enabled with MANAGE_BUILTINS=no: its reloads rewrite only its own ufw-* chains' }];
  return [
    {
      check,
      severity: 'warn',
      summary: `ufw is enabled with MANAGE_BUILTINS=yes (/etc/default/ufw): each ufw reload, enable or restart flushes every built-in chain, the jumps into our ${CHAIN_PREFIX}* chains included; ${REPAIRED}`,
      fix: 'set MANAGE_BUILTINS=no in /etc/default/ufw (ufw then rewrites only its own ufw-* chains), then ufw reload',
    },
  ];
}

function firewalldFinding(facts: FighterInput): Finding[] {
  const { running, firewalld } = facts.fighters;
  if (!running.firewalld) return [];
  const check = 'fighter:firewalld';
  if (firewalld.backend?.toLowerCase() === 'iptables')
    return [
      {
        check,
        severity: 'warn',
        summary: `firewalld runs with FirewallBackend=iptables: each reload or restart flushes and deletes every chain of every iptables table, ours included; ${REPAIRED}`,
        fix: 'set FirewallBackend=nftables in /etc/firewalld/firewalld.conf (firewalld 1.3 and later then leave other tables alone unless direct rules exist), then systemctl restart firewalld',
      },
    ];
  if (firewalld.directRules)
    return [
      {
        check,
        severity: 'warn',
        summary: `firewalld runs with direct rules (/etc/firewalld/direct.xml): with them each reload flushes every iptables table, ours included; ${REPAIRED}`,
        fix: 'move the direct rules into firewalld policies or rich rules and empty /etc/firewalld/direct.xml, then firewall-cmd --reload',
      },
    ];
  return [
    {
      check,
      severity: 'info',
      summary: 'firewalld runs with the nftables backend: from version 1.3 its reloads change only its own table; older versions (0.9 on RHEL 8) flush every iptables table on each reload, ours included',
      fix: `if firewall-cmd --version says less than 1.3, upgrade firewalld; until then ${REPAIRED}`,
    },
  ];
}

function netfilterPersistentFindings(facts: FighterInput): Finding[] {
  const { enabled, rules } = facts.fighters.netfilterPersistent;
  if (!enabled || !rules) return [];
  const check = 'fighter:netfilter-persistent';
  const wiped = rules.tables.filter((t) => t === 'mangle' || t === 'nat');
  const findings: Finding[] = [];
  if (wiped.length === 0) findings.push({ check, severity: 'ok', summary: `netfilter-persistent restores ${rules.file}, which leaves the mangle and nat tables alone` });
  else
    findings.push({
      check,
      severity: 'warn',
      summary: `netfilter-persistent is enabled and ${rules.file} restores whole tables (${wiped.join(', ')}): each netfilter-persistent reload or restart empties them, our chains included; ${REPAIRED}`,
      fix: `iptables-restore empties only the tables the file names: remove the ${wiped.map((t) => `*${t}`).join(' and ')} section${wiped.length > 1 ? 's' : ''} from ${rules.file} if they hold no rules of yours; if they do, reload them yourself with iptables-restore --noflush instead`,
    });
  if (rules.ours)
    findings.push({
      check: `${check}:saved`,
      severity: 'warn',
      summary: `${rules.file} holds the dispatcher's ${CHAIN_PREFIX}* chains (a netfilter-persistent save while it ran): each boot and reload restores those stale rules`,
      fix: `delete the ${CHAIN_PREFIX}* chain lines and the -j ${CHAIN_PREFIX}* jumps from ${rules.file}; run netfilter-persistent save only after dispatcher flush, or not while the dispatcher runs`,
    });
  return findings;
}

function nftablesFinding(facts: FighterInput): Finding[] {
  const { enabled, flushRulesetLine } = facts.fighters.nftables;
  if (!enabled) return [];
  const check = 'fighter:nftables';
  if (flushRulesetLine === null) return [{ check, severity: 'ok', summary: 'nftables.service is enabled and /etc/nftables.conf does not flush the whole ruleset' }];
  return [
    {
      check,
      severity: 'warn',
      summary: `nftables.service is enabled and /etc/nftables.conf says "flush ruleset" (line ${flushRulesetLine}): each systemctl reload or restart of nftables deletes every nftables table, those iptables-nft keeps our chains in included; ${REPAIRED}`,
      fix: 'flush only the tables the file defines: replace "flush ruleset" with, before each table it defines, e.g. "table inet filter" and "delete table inet filter" on lines of their own (declaring it first makes the delete safe when the table does not exist yet)',
    },
  ];
}

/** Known programs on the host that undo our objects, each with how to configure it. */
export function fighterFindings(facts: FighterInput): Finding[] {
  return [...networkdFinding(facts), ...networkManagerFinding(facts), ...ufwFinding(facts), ...firewalldFinding(facts), ...netfilterPersistentFindings(facts), ...nftablesFinding(facts)];
}

/** What the running daemon repaired, and whether something keeps undoing it (a repair loop). */
export function repairFindings(repairs: RepairStatus | null, fighters: readonly Finding[]): Finding[] {
  if (!repairs) return [];
  const fighting = repairs.fighting;
  if (fighting) {
    const who = fighting.by.length > 0 ? fighting.by.join(', ') : 'a program the kernel did not name';
    const known = fighters.filter((f) => f.severity === 'warn' || f.severity === 'fail').map((f) => f.check);
    return [
      {
        check: 'repair:loop',
        severity: 'fail',
        summary: `something keeps undoing what the dispatcher set up: ${fighting.repairs} repairs since ${fighting.since}, by ${who}; repairs are backed off${fighting.nextRepairAt ? ` (next at ${fighting.nextRepairAt})` : ''}, and clients lose their uplink or NAT in between`,
        fix: `find the program (a command named here is often run by a service: look for its parent) and configure it to leave our ${CHAIN_PREFIX}* chains, ip rules, routing tables and sysctls alone; ${
          known.length > 0
            ? `doctor found ${known.join(', ')} above, each with its configuration`
            : 'the usual ones are systemd-networkd, NetworkManager, ufw, firewalld, netfilter-persistent, nftables.service and scripts running iptables-restore or nft flush ruleset'
        }`,
      },
    ];
  }
  if (repairs.total === 0) return [{ check: 'repair:last', severity: 'ok', summary: 'no other software changed what the dispatcher set up since the daemon started' }];
  const last = repairs.last;
  return [
    {
      check: 'repair:last',
      severity: 'info',
      summary: `the daemon put back what other software changed ${repairs.total} time${repairs.total === 1 ? '' : 's'} since it started${last ? `; the last at ${last.at}: ${last.what.join('; ')} (noticed: ${last.noticed.join('; ')})` : ''}`,
      fix: 'nothing to do after a one-off (a firewall reload, a network restart); if it recurs, configure the program that does it (the fighter findings say how)',
    },
  ];
}

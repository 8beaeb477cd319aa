// `dispatcher doctor`, the judging part (pure): facts gathered by
// system/doctor.ts become findings, each with what to do about it. The worst
// finding is the exit code: 0 all well, 1 warnings, 2 something that stops the
// dispatcher from working (as monitoring plugins count).

import type { BackendName, Config } from '../model/config.js';
import type { ConfigProblem } from '../model/errors.js';
import type { RoutingState } from '../model/kernel.js';
import type { UplinkView } from '../model/state.js';
import type { RepairStatus } from '../schema/control.js';
import { routingCollisions } from './collisions.js';
import { uplinkGroup } from './contract.js';
import { familySysctls } from './family.js';
import { fighterFindings, repairFindings, type FighterFacts } from './fighters.js';
import { firewallFindings } from './firewall/findings.js';
import type { RuleSets } from './firewall/model.js';
import type { Finding, Severity } from './finding.js';
import { HA_TOOLS, type HaDoctorFacts, haFindings } from './ha-doctor.js';
import { type Cidr, formatCidr, maskOf, parseCidr, parseIpv4 } from './ipv4.js';

export type { Finding, Severity } from './finding.js';

export const EXIT_OF: Record<Severity, number> = { ok: 0, info: 0, warn: 1, fail: 2 };

/** Commands the dispatcher runs whatever its backend, with the Debian package that has them. */
export const TOOLS: Readonly<Record<string, string>> = {
  ip: 'iproute2',
  conntrack: 'conntrack',
  ping: 'iputils-ping',
  sysctl: 'procps',
};
/** Commands each netfilter backend runs. */
export const BACKEND_TOOLS: Readonly<Record<BackendName, Readonly<Record<string, string>>>> = {
  // ip6tables-save is read on every run (ours are removed when IPv6 is off); both come in Debian's iptables package.
  iptables: { iptables: 'iptables', 'iptables-save': 'iptables', 'iptables-restore': 'iptables', 'ip6tables-save': 'iptables', 'ip6tables-restore': 'iptables', ipset: 'ipset' },
  nftables: { nft: 'nftables' },
};
const DDNS_TOOLS: Readonly<Record<string, string>> = { dig: 'bind9-dnsutils', nsupdate: 'bind9-dnsutils' };
/** What IPv6 prefix mode runs: the router advertisements. */
const PREFIX_MODE_TOOLS: Readonly<Record<string, string>> = { radvd: 'radvd' };

/** The tools (and their Debian packages) the config's features need beyond the backend's: dynamic DNS, IPv6 prefix mode, a pair (keepalived, conntrackd). */
export function configTools(config: Config): Readonly<Record<string, string>> {
  return { ...(config.ddns ? DDNS_TOOLS : {}), ...(config.lan.ipv6.mode === 'prefix' ? PREFIX_MODE_TOOLS : {}), ...(config.ha ? HA_TOOLS : {}) };
}

export interface DoctorFacts {
  readonly config: Config;
  /** Tool name → its path, or null when it is not installed. */
  readonly tools: Readonly<Record<string, string | null>>;
  /** What `iptables --version` printed, e.g. "iptables v1.8.9 (nf_tables)". */
  readonly iptablesVersion: string | null;
  /** Kernel feature → null when it worked in a scratch namespace, else what failed. */
  readonly features: Readonly<Record<string, string | null>>;
  /** Sysctl values by key; absent keys were not readable (an absent interface, a namespace). */
  readonly sysctls: Readonly<Record<string, string>>;
  readonly kernel: RoutingState;
  /** Other software's netfilter rules in the way of ours, as the backend judges them. */
  readonly netfilterCollisions: readonly ConfigProblem[];
  readonly uplinks: readonly UplinkView[];
  /** Uplink name → whether its gateway answered a ping through the uplink (null: not tried). */
  readonly gatewayAnswers: Readonly<Record<string, boolean | null>>;
  /** Groups in /etc/group whose id is one of ours. */
  readonly groupsInRange: readonly { readonly name: string; readonly gid: number }[];
  readonly daemonRunning: boolean;
  /** Software on the host known to undo our objects (system/fighters.ts). */
  readonly fighters: FighterFacts;
  /** The running daemon's repair record (`status`), null when no daemon answered. */
  readonly repairs: RepairStatus | null;
  /** The gateway's own firewall as read (system/firewall.ts). */
  readonly firewall: RuleSets;
  /** One of a pair (config ha): its rendered files, keepalived, conntrackd, key and daemon (system/ha-doctor.ts); null alone. */
  readonly ha: HaDoctorFacts | null;
}

export function worst(findings: readonly Finding[]): Severity {
  const order: Severity[] = ['ok', 'info', 'warn', 'fail'];
  return findings.reduce<Severity>((w, f) => (order.indexOf(f.severity) > order.indexOf(w) ? f.severity : w), 'ok');
}

function toolFindings(tools: DoctorFacts['tools'], needed: Readonly<Record<string, string>>): Finding[] {
  return Object.entries(needed).map(([tool, pkg]) => {
    const path = tools[tool];
    return path ? { check: `tool:${tool}`, severity: 'ok', summary: `${tool} is ${path}` } : { check: `tool:${tool}`, severity: 'fail', summary: `${tool} is not installed`, fix: `apt-get install ${pkg}` };
  });
}

function backendFinding(facts: Pick<DoctorFacts, 'iptablesVersion' | 'tools'>, backend: BackendName): Finding {
  const check = 'netfilter:backend';
  if (backend === 'nftables') return { check, severity: 'ok', summary: 'netfilter.backend nftables: one table of our own, inet dispatcher, loaded whole by nft' };
  const version = facts.iptablesVersion;
  const nft = facts.tools.nft ? ' (nft is installed)' : '';
  if (!version) return { check, severity: 'fail', summary: 'iptables --version did not answer', fix: `apt-get install iptables ipset, or set netfilter.backend: nftables in the config${nft}` };
  const kind = /\((nf_tables|legacy)\)/.exec(version)?.[1] ?? 'unknown';
  if (kind === 'nf_tables') {
    return {
      check,
      severity: 'ok',
      summary: `${version.trim()}: iptables here is the nftables shim; netfilter.backend: nftables (recommended) does the same with one table of our own, loaded in one transaction, and needs neither iptables nor ipset`,
    };
  }
  return { check, severity: 'ok', summary: `${version.trim()}: the ${kind} backend (other firewall tools must use the same one)` };
}

function featureFindings(facts: Pick<DoctorFacts, 'features'>): Finding[] {
  return Object.entries(facts.features).map(([feature, error]) =>
    error === null
      ? { check: `kernel:${feature}`, severity: 'ok', summary: `${feature} works (tried in a scratch namespace)` }
      : {
          check: `kernel:${feature}`,
          severity: 'fail',
          summary: `${feature} does not work in this kernel: ${error}`,
          fix: 'use a kernel with policy routing, multipath, ipset (hash:ip with counters and skbinfo) and the netfilter CONNMARK, MARK, SET, owner and MASQUERADE modules, and for IPv6 nat mode NETMAP and DNAT (any Debian kernel has them)',
        },
  );
}

function forwardingFinding(facts: DoctorFacts): Finding {
  const value = facts.sysctls['net.ipv4.ip_forward'];
  if (value === '1') return { check: 'sysctl:ip_forward', severity: 'ok', summary: 'IPv4 forwarding is on' };
  return facts.daemonRunning
    ? {
        check: 'sysctl:ip_forward',
        severity: 'fail',
        summary: 'IPv4 forwarding is off although the daemon runs: something turned it off',
        fix: 'find what sets net.ipv4.ip_forward=0 (/etc/sysctl.d, a firewall tool), then dispatcher reload',
      }
    : { check: 'sysctl:ip_forward', severity: 'warn', summary: 'IPv4 forwarding is off', fix: 'dispatcher start turns it on (and flush puts it back); nothing else to do' };
}

/**
 * IPv6 (nat or prefix mode): IPv6 forwarding, and accept_ra=2 on every uplink (with
 * forwarding on, the kernel ignores router advertisements elsewhere, and the
 * line's IPv6 default route and next hop go with them). Nothing while IPv6 is off.
 */
function ipv6SysctlFindings(facts: DoctorFacts): Finding[] {
  if (facts.config.lan.ipv6.mode === 'off') return [];
  const wanted = familySysctls(
    facts.config.uplinks.map((u) => u.interface),
    'ipv6',
  );
  return Object.entries(wanted).map(([key, value]) => {
    const check = `sysctl:${key}`;
    const have = facts.sysctls[key];
    if (have === value) return { check, severity: 'ok', summary: `${key} is ${value}` };
    if (have === undefined && key.endsWith('.forwarding')) return { check, severity: 'fail', summary: `${key} does not exist: this kernel has IPv6 disabled`, fix: 'boot without ipv6.disable=1 (or set lan.ipv6.mode: off)' };
    if (have === undefined) return { check, severity: 'info', summary: `${key} is not readable yet (its interface does not exist); it is set when it appears` };
    const why = key.endsWith('.forwarding') ? 'IPv6 is not forwarded' : "with forwarding on, the kernel ignores the ISP router's advertisements on this uplink: its IPv6 default route and next hop go";
    return facts.daemonRunning
      ? { check, severity: 'fail', summary: `${key} is ${have}, not ${value}, although the daemon runs: ${why}`, fix: `find what sets it (/etc/sysctl.d, a network manager), then dispatcher reload` }
      : { check, severity: 'warn', summary: `${key} is ${have}: ${why}`, fix: 'dispatcher start sets it (and flush puts it back); nothing else to do' };
  });
}

function rpFilterFindings(facts: DoctorFacts): Finding[] {
  const all = Number(facts.sysctls['net.ipv4.conf.all.rp_filter'] ?? 0);
  return facts.config.uplinks.map((uplink) => {
    const own = facts.sysctls[`net.ipv4.conf.${uplink.interface}.rp_filter`];
    const check = `sysctl:rp_filter:${uplink.interface}`;
    if (own === undefined) return { check, severity: 'info', summary: `${uplink.interface} does not exist yet; rp_filter is set when it appears` };
    // The kernel uses the larger of "all" and the interface's own value.
    const effective = Math.max(all, Number(own));
    if (effective !== 1) return { check, severity: 'ok', summary: `reverse-path filter on ${uplink.interface} is ${effective === 2 ? 'loose' : 'off'}` };
    if (all === 1)
      return {
        check,
        severity: 'fail',
        summary: `net.ipv4.conf.all.rp_filter is 1 (strict): replies arriving on another uplink than the route back are dropped, whatever the dispatcher sets`,
        fix: 'sysctl -w net.ipv4.conf.all.rp_filter=0 (and remove it from /etc/sysctl.conf or /etc/sysctl.d)',
      };
    return facts.daemonRunning
      ? { check, severity: 'fail', summary: `rp_filter on ${uplink.interface} is strict although the daemon runs`, fix: 'dispatcher reload sets it back to 2; find what changes it' }
      : { check, severity: 'warn', summary: `rp_filter on ${uplink.interface} is strict`, fix: 'dispatcher start sets it to 2 (loose); nothing else to do' };
  });
}

/** Where the clients are: the configured subnets, else the prefixes of the LAN interfaces' addresses. */
function lanCidrs(facts: DoctorFacts): Cidr[] {
  if (facts.config.lan.subnets.length > 0) return facts.config.lan.subnets.map((s) => parseCidr(s) as Cidr);
  return facts.kernel.links.filter((l) => facts.config.lan.interfaces.includes(l.name)).flatMap((l) => l.addresses.map((a) => ({ network: ((parseIpv4(a.local) ?? 0) & maskOf(a.prefixlen)) >>> 0, prefix: a.prefixlen })));
}

/** The addresses the LAN can hold. */
function lanSize(facts: DoctorFacts): number {
  return lanCidrs(facts).reduce((sum, cidr) => sum + 2 ** (32 - cidr.prefix), 0);
}

function neighbourTableFinding(facts: DoctorFacts): Finding {
  const thresh3 = facts.sysctls['net.ipv4.neigh.default.gc_thresh3'];
  const size = lanSize(facts);
  if (thresh3 === undefined)
    return { check: 'sysctl:gc_thresh', severity: 'info', summary: "the neighbour table limits are not visible from this network namespace (they are the host's)", fix: 'run doctor in the root namespace to check them' };
  const wanted = Math.min(size, facts.config.clients.max);
  if (Number(thresh3) >= wanted) return { check: 'sysctl:gc_thresh', severity: 'ok', summary: `the neighbour table holds up to ${thresh3} entries, enough for ${wanted} clients` };
  return {
    check: 'sysctl:gc_thresh',
    severity: 'warn',
    summary: `the neighbour table holds at most ${thresh3} entries but the LAN can have ${wanted} clients: beyond that the kernel forgets neighbours and clients go unseen`,
    fix: `sysctl -w net.ipv4.neigh.default.gc_thresh1=${Math.ceil(wanted / 4)} net.ipv4.neigh.default.gc_thresh2=${Math.ceil(wanted / 2)} net.ipv4.neigh.default.gc_thresh3=${wanted} (and in /etc/sysctl.d)`,
  };
}

function collisionFindings(facts: DoctorFacts): Finding[] {
  const problems = [...routingCollisions(facts.config, facts.kernel), ...facts.netfilterCollisions];
  if (problems.length === 0) return [{ check: 'collisions', severity: 'ok', summary: 'no other software uses our rule priorities, routing tables or mark bits' }];
  return problems.map((p) => ({ check: `collisions:${p.field}`, severity: 'fail', summary: p.problem, fix: p.fix }));
}

function groupFinding(facts: DoctorFacts): Finding {
  const first = uplinkGroup(facts.config, 0);
  const last = uplinkGroup(facts.config, facts.config.uplinks.length - 1);
  if (facts.groupsInRange.length === 0) return { check: 'groups', severity: 'ok', summary: `group ids ${first}–${last} (dispatcher exec) are free` };
  const names = facts.groupsInRange.map((g) => `${g.name} (${g.gid})`).join(', ');
  return { check: 'groups', severity: 'warn', summary: `${names} use our group ids ${first}–${last}: their members' traffic would leave by one uplink`, fix: 'set groups.base to a free block' };
}

function uplinkFindings(facts: DoctorFacts): Finding[] {
  return facts.config.uplinks.map((uplink) => {
    const check = `uplink:${uplink.name}`;
    const view = facts.uplinks.find((v) => v.name === uplink.name);
    if (!view?.present) return { check, severity: 'fail', summary: `${uplink.name}: interface ${uplink.interface} does not exist or is down`, fix: `bring ${uplink.interface} up (or correct uplinks[].interface)` };
    if (!view.address) return { check, severity: 'fail', summary: `${uplink.name}: ${uplink.interface} has no IPv4 address`, fix: 'check the ppp/DHCP client of this line' };
    if (!view.gateway) return { check, severity: 'fail', summary: `${uplink.name}: no gateway known for ${uplink.interface}`, fix: 'set uplinks[].gateway, or let a DHCP client or pppd configure the link' };
    const answered = facts.gatewayAnswers[uplink.name];
    if (answered === false)
      return {
        check,
        severity: 'warn',
        summary: `${uplink.name}: gateway ${view.gateway} (${view.gatewaySource}) did not answer a ping through ${uplink.interface}`,
        fix: 'some modems ignore ping; health is judged by probe.targets beyond the gateway, so check those answer',
      };
    return { check, severity: 'ok', summary: `${uplink.name}: ${uplink.interface} ${view.address}, gateway ${view.gateway} (${view.gatewaySource})${answered ? ' answers' : ''}` };
  });
}

/** The config's own problems, when it does not load: everything that needs it is skipped. */
export function configFindings(problems: readonly { field: string; problem: string; fix: string }[], path: string): Finding[] {
  return problems.map((p) => ({ check: `config:${p.field}`, severity: 'fail', summary: `${path}: ${p.field}: ${p.problem}`, fix: p.fix }));
}

/** What can be checked without a config: the tools, the iptables backend and the kernel's features. */
export function diagnoseHost(facts: Pick<DoctorFacts, 'tools' | 'iptablesVersion' | 'features'>, backend: BackendName): Finding[] {
  return [...toolFindings(facts.tools, { ...TOOLS, ...BACKEND_TOOLS[backend] }), backendFinding(facts, backend), ...featureFindings(facts)];
}

/** Whether the gateway's own firewall lets the clients, their replies and our probes' answers through. */
function forwardPathFindings(facts: DoctorFacts): Finding[] {
  const uplinkAddresses = Object.fromEntries(facts.uplinks.map((u) => [u.name, u.address]));
  return firewallFindings(facts.firewall, { config: facts.config, lan: lanCidrs(facts).map(formatCidr), uplinkAddresses });
}

export function diagnose(facts: DoctorFacts): Finding[] {
  const findings = [
    ...diagnoseHost(facts, facts.config.netfilter.backend),
    ...toolFindings(facts.tools, configTools(facts.config)),
    forwardingFinding(facts),
    ...rpFilterFindings(facts),
    ...ipv6SysctlFindings(facts),
    neighbourTableFinding(facts),
    ...collisionFindings(facts),
    groupFinding(facts),
    ...uplinkFindings(facts),
    ...forwardPathFindings(facts),
    ...haFindings(facts.config, facts.kernel.links, facts.ha),
  ];
  const fighters = fighterFindings(facts);
  return [...findings, ...fighters, ...repairFindings(facts.repairs, fighters)];
}

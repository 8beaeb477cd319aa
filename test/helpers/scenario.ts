// Named scenarios for planner, diff and render tests, built from the lab's
// config (pools/lab.yaml) and kernel output captured from a running lab.

import { ruleSets } from '../../src/parse/firewall/rule-sets.js';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.js';
import { iptablesBackend, type IptablesBackend } from '../../src/backends/iptables/index.js';
import { parseSkeleton, type Skeleton } from '../../src/backends/iptables/skeleton.js';
import type { IptablesObserved } from '../../src/backends/iptables/types.js';
import type { DoctorFacts } from '../../src/core/doctor.js';
import { NO_FIGHTERS } from '../../src/core/fighters.js';
import { viewUplinks } from '../../src/core/uplinks.js';
import type { Config } from '../../src/model/config.js';
import type { RoutingState } from '../../src/model/kernel.js';
import type { ClientRecord, UplinkView } from '../../src/model/state.js';
import { parseIpAddr, parseIpRoutes, parseIpRules } from '../../src/parse/ip-json.js';
import { parseIptablesSave } from '../../src/parse/iptables-save.js';
import { parseIpsetSave } from '../../src/parse/ipset.js';
import { FakeRunner } from './fake-runner.js';
import { fixture } from './fixtures.js';

export const skeleton: Skeleton = parseSkeleton(readFileSync(new URL('../../iptables/skeleton.rules', import.meta.url), 'utf8'));
/** The iptables backend built from the shipped skeleton, as the engine builds it. */
export const backend: IptablesBackend = iptablesBackend(skeleton);

/** A whole captured kernel: the shared state and the iptables backend's. */
export type KernelState = RoutingState & IptablesObserved;

/** The iptables backend's part of a captured kernel state. */
export function netfilterOf(kernel: KernelState): IptablesObserved {
  return { netfilter: kernel.netfilter, netfilter6: kernel.netfilter6, sets: kernel.sets };
}

export const labConfig: Config = parseConfig(readFileSync(new URL('../../pools/lab.yaml', import.meta.url), 'utf8'), 'pools/lab.yaml', {
  state: '/tmp/state',
  socket: '/tmp/sock',
});

/** The gateway's kernel state as captured from a running lab. */
export function capturedKernel(): KernelState {
  return {
    netfilter: parseIptablesSave(fixture('iptables-save.txt')),
    netfilter6: [],
    sets: parseIpsetSave(fixture('ipset-save.txt')),
    rules: parseIpRules(fixture('ip-rule.json')),
    routes: parseIpRoutes(fixture('ip-route.json')),
    links: parseIpAddr(fixture('ip-addr.json')),
    ipv6: { rules: [], routes: [] },
    sysctls: { 'net.ipv4.ip_forward': '1', 'net.ipv4.conf.ppp0.rp_filter': '2', 'net.ipv4.conf.ppp1.rp_filter': '2', 'net.ipv4.conf.wan0.rp_filter': '2' },
  };
}

/** A gateway that has its links and addresses but nothing of the dispatcher yet. */
export function pristineKernel(): KernelState {
  const captured = capturedKernel();
  return {
    netfilter: [],
    netfilter6: [],
    sets: { sets: [], entries: [] },
    rules: captured.rules.filter((r) => r.priority === 0 || r.priority >= 32766),
    routes: captured.routes.filter((r) => !/^3[0-9]{3}$/.test(r.table)),
    links: captured.links,
    ipv6: { rules: [], routes: [] },
    sysctls: { 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.ppp0.rp_filter': '0', 'net.ipv4.conf.ppp1.rp_filter': '0', 'net.ipv4.conf.wan0.rp_filter': '0' },
  };
}

/** The captured lab's assignments, read back from its ipset (pool mark n → uplink n). */
export function capturedAssignments(): Map<string, ClientRecord> {
  const byMark: Record<string, string> = { '0x1000000/0xf000000': 'isp1', '0x2000000/0xf000000': 'isp2', '0x3000000/0xf000000': 'isp3' };
  return new Map(parseIpsetSave(fixture('ipset-save.txt')).entries.map((e) => [e.member, { uplink: byMark[e.options.skbmark as string] as string, mac: '', interface: 'lan0', pinned: false, firstSeen: 0 }]));
}

export function labUplinks(kernel: KernelState = capturedKernel()): UplinkView[] {
  return viewUplinks(labConfig, kernel.links, kernel.routes);
}

const CAPTURED_SYSCTLS = 'net.ipv4.ip_forward = 1\nnet.ipv4.conf.ppp0.rp_filter = 2\nnet.ipv4.conf.ppp1.rp_filter = 2\nnet.ipv4.conf.wan0.rp_filter = 2\n';

/** A fake runner that answers every read as the captured lab gateway did; `arp` can change between calls. */
export function capturedGatewayRunner(arp: () => string = () => fixture('ip-neigh.txt')): FakeRunner {
  return new FakeRunner()
    .answer('iptables-save', fixture('iptables-save.txt'))
    .answer('ipset list -n', 'dispatcher-clients\n')
    .answer('ipset save dispatcher-clients', fixture('ipset-save.txt'))
    .answer('ip -j rule show', fixture('ip-rule.json'))
    .answer('ip -4 -j route show table all', fixture('ip-route.json'))
    .answer('ip -j addr show', fixture('ip-addr.json'))
    .answer('sysctl -e', CAPTURED_SYSCTLS)
    .answer('ip -4 neigh show', () => arp());
}

/** The same links, but nothing of the dispatcher yet (sysctls at their kernel defaults). */
export function pristineGatewayRunner(): FakeRunner {
  return capturedGatewayRunner()
    .answer('iptables-save', '')
    .answer('ipset list -n', '')
    .answer('ip -j rule show', '[{"priority":0,"src":"all","table":"local"},{"priority":32766,"src":"all","table":"main"},{"priority":32767,"src":"all","table":"default"}]')
    .answer('ip -4 -j route show table all', '[]')
    .answer('sysctl -e', CAPTURED_SYSCTLS.replace(/= [12]/g, '= 0'));
}

/** Doctor's facts on the lab's gateway when everything is well (tests override what they judge). */
export function healthyDoctorFacts(overrides: Partial<DoctorFacts> = {}): DoctorFacts {
  const kernel = capturedKernel();
  const tools = Object.fromEntries(['ip', 'iptables', 'iptables-save', 'iptables-restore', 'ip6tables-save', 'ip6tables-restore', 'ipset', 'conntrack', 'ping', 'sysctl'].map((t) => [t, `/usr/sbin/${t}`]));
  return {
    config: labConfig,
    tools,
    iptablesVersion: 'iptables v1.8.9 (nf_tables)\n',
    features: { 'multipath routes': null },
    sysctls: {
      'net.ipv4.ip_forward': '1',
      'net.ipv4.conf.all.rp_filter': '0',
      'net.ipv4.conf.ppp0.rp_filter': '2',
      'net.ipv4.conf.ppp1.rp_filter': '2',
      'net.ipv4.conf.wan0.rp_filter': '2',
      'net.ipv4.neigh.default.gc_thresh3': '131072',
    },
    kernel,
    netfilterCollisions: backend.collisions(labConfig, netfilterOf(kernel)),
    uplinks: labUplinks(kernel),
    gatewayAnswers: { isp1: true, isp2: true, isp3: true },
    groupsInRange: [],
    daemonRunning: true,
    fighters: NO_FIGHTERS,
    repairs: null,
    // The lab gateway's firewall: iptables-nft with nothing loaded.
    firewall: ruleSets({ iptablesSave: fixture('iptables-save.txt'), iptablesError: null, iptablesKind: 'nf_tables', nftRuleset: null, nftError: null }),
    ha: null,
    ...overrides,
  };
}

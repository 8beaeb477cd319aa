// `dispatcher doctor`, the gathering part: which tools are installed, what the
// kernel can do (tried for real in a scratch network namespace that is always
// deleted again, so the gateway itself is never changed), sysctls, the
// kernel's current objects, the uplinks and whether their gateways answer,
// the software known to undo our objects (fighters.ts) and what the running
// daemon repaired; one of a pair, its keepalived and conntrackd (ha-doctor.ts).
// core/doctor.ts judges it all.

import { readFile } from 'node:fs/promises';
import { BACKEND_TOOLS, configTools, TOOLS, type DoctorFacts } from '../core/doctor.js';
import { uplinkGroup } from '../core/contract.js';
import { familySysctls } from '../core/family.js';
import { runName } from '../core/run-names.js';
import type { BackendName, Config } from '../model/config.js';
import { whatItSaid, type Runner } from './exec.js';
import type { ConfigProblem } from '../model/errors.js';
import { observeRouting, readSysctls } from './kernel.js';
import { discoverUplinks } from './leases.js';
import type { RepairStatus } from '../schema/control.js';
import { gatherFighters } from './fighters.js';
import { findTool } from './tools.js';
import { gatherHaFacts, type HaDoctorInput } from './ha-doctor.js';
import { readFirewall } from './firewall.js';

async function findTools(names: readonly string[]): Promise<Record<string, string | null>> {
  return Object.fromEntries(await Promise.all(names.map(async (name) => [name, await findTool(name)] as const)));
}

async function tryRun(run: () => Promise<unknown>): Promise<string | null> {
  try {
    await run();
    return null;
  } catch (error) {
    return whatItSaid(error);
  }
}

/** What the nftables backend's table needs of the kernel, in one small table of the same kinds of rules. */
const NFT_FEATURES = `table inet doctor {
  map m {
    type ipv4_addr : verdict
    counter
    elements = { 192.0.2.9 : jump p }
  }
  chain p {
    meta mark set meta mark and 0xf0ffffff or 0x01000000
  }
  chain pre {
    type filter hook prerouting priority mangle; policy accept;
    ip saddr vmap @m
    ct mark and 0xf0000000 == 0x0 ct mark set ct mark and 0x0fffffff or 0x10000000
  }
  chain out {
    type route hook output priority mangle; policy accept;
    meta skgid 64100 meta mark set meta mark and 0x0fffffff or 0x10000000
  }
  chain nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "a" masquerade
  }
}
`;

/** What IPv6 nat mode needs of nftables: prefix translation (NPTv6) and the gateway's inbound address. */
const NFT_FEATURES6 = `table inet doctor6 {
  chain nat {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "a" ip6 saddr fd00:18::/64 snat ip6 prefix to 2001:db8:1:100::/64
  }
  chain inbound {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "a" ip6 daddr 2001:db8:1:100::1 dnat ip6 to fd00:18::1
  }
}
`;

/** Each feature the dispatcher relies on with this backend (and IPv6 nat mode), tried in a namespace of its own; deleted pass or fail. */
export async function tryKernelFeatures(runner: Runner, backend: BackendName = 'iptables', ipv6 = false): Promise<Record<string, string | null>> {
  // Named for this process (core/run-names.ts): a later lab removes it if doctor dies mid-check.
  const ns = `${runName('doctor', process.pid, 1)}check`;
  const inNs = (argv: readonly string[]): string[] => ['ip', 'netns', 'exec', ns, ...argv];
  const restore = (text: string): Promise<unknown> => runner.run(inNs(['iptables-restore', '--noflush']), { input: text });
  const features: Record<string, string | null> = {};
  const created = await tryRun(() => runner.run(['ip', 'netns', 'add', ns]));
  if (created) return { 'network namespaces': created };
  try {
    const setup = await tryRun(() =>
      runner.run(['ip', '-n', ns, '-batch', '-'], { input: ['link set dev lo up', 'link add name a type veth peer name b', 'addr add 192.0.2.1/24 dev a', 'link set dev a up', 'link set dev b up', ''].join('\n') }),
    );
    if (setup) return { 'veth links': setup };
    features['policy routing (fwmark rules, extra tables)'] = await tryRun(async () => {
      await runner.run(['ip', '-n', ns, 'route', 'add', 'default', 'via', '192.0.2.2', 'dev', 'a', 'onlink', 'table', '3101']);
      await runner.run(['ip', '-n', ns, 'rule', 'add', 'fwmark', '0x10000000/0xf0000000', 'lookup', '3101', 'priority', '4101']);
    });
    features['multipath routes'] = await tryRun(() =>
      runner.run(['ip', '-n', ns, 'route', 'add', 'default', 'table', '3100', 'nexthop', 'via', '192.0.2.2', 'dev', 'a', 'weight', '2', 'onlink', 'nexthop', 'via', '192.0.2.3', 'dev', 'a', 'weight', '1', 'onlink']),
    );
    if (backend === 'nftables') {
      features['nftables: verdict map with counters, mark and conntrack mark, socket group, masquerade'] = await tryRun(() => runner.run(inNs(['nft', '-f', '-']), { input: NFT_FEATURES }));
      if (ipv6) features['nftables: IPv6 prefix translation (snat ip6 prefix to) and dnat'] = await tryRun(() => runner.run(inNs(['nft', '-f', '-']), { input: NFT_FEATURES6 }));
      features.conntrack = await tryRun(() => runner.run(inNs(['conntrack', '-L']), { okExitCodes: [0] }));
      return features;
    }
    features['ipset hash:ip with counters and skbinfo'] = await tryRun(async () => {
      await runner.run(inNs(['ipset', 'create', 'doctor', 'hash:ip', 'family', 'inet', 'counters', 'skbinfo']));
      await runner.run(inNs(['ipset', 'add', 'doctor', '192.0.2.9', 'skbmark', '0x1000000/0xf000000']));
    });
    features['SET --map-mark target'] = await tryRun(() => restore('*mangle\n:DOCTOR-SET - [0:0]\n-A DOCTOR-SET -j SET --map-set doctor src --map-mark\nCOMMIT\n'));
    features['CONNMARK target'] = await tryRun(() => restore('*mangle\n:DOCTOR-CT - [0:0]\n-A DOCTOR-CT -m connmark ! --mark 0x0/0xf0000000 -j CONNMARK --restore-mark --nfmask 0xf0000000 --ctmask 0xf0000000\nCOMMIT\n'));
    features['owner match (dispatcher exec)'] = await tryRun(() => restore('*mangle\n:DOCTOR-OWN - [0:0]\n-A DOCTOR-OWN -m owner --gid-owner 64100 -j MARK --set-xmark 0x10000000/0xf0000000\nCOMMIT\n'));
    features.MASQUERADE = await tryRun(() => restore('*nat\n:DOCTOR-NAT - [0:0]\n-A DOCTOR-NAT -o a -j MASQUERADE\nCOMMIT\n'));
    if (ipv6) {
      features['ipset hash:ip family inet6 with counters and skbinfo'] = await tryRun(async () => {
        await runner.run(inNs(['ipset', 'create', 'doctor6', 'hash:ip', 'family', 'inet6', 'counters', 'skbinfo']));
        await runner.run(inNs(['ipset', 'add', 'doctor6', 'fd00:18::10', 'skbmark', '0x1000000/0xf000000']));
      });
      features['ip6tables: SET, NETMAP and DNAT targets'] = await tryRun(() =>
        runner.run(inNs(['ip6tables-restore', '--noflush']), {
          input:
            '*mangle\n:DOCTOR-SET6 - [0:0]\n-A DOCTOR-SET6 -j SET --map-set doctor6 src --map-mark\nCOMMIT\n*nat\n:DOCTOR-NAT6 - [0:0]\n:DOCTOR-DNAT6 - [0:0]\n-A DOCTOR-NAT6 -s fd00:18::/64 -o a -j NETMAP --to 2001:db8:1:100::/64\n-A DOCTOR-DNAT6 -d 2001:db8:1:100::1/128 -j DNAT --to-destination fd00:18::1\n-A POSTROUTING -j DOCTOR-NAT6\n-A PREROUTING -j DOCTOR-DNAT6\nCOMMIT\n',
        }),
      );
    }
    features.conntrack = await tryRun(() => runner.run(inNs(['conntrack', '-L']), { okExitCodes: [0] }));
    return features;
  } finally {
    await runner.run(['ip', 'netns', 'delete', ns], { okExitCodes: [0, 1, 2] });
  }
}

/** Groups in /etc/group whose id falls in our block. */
async function groupsInRange(config: Config): Promise<{ name: string; gid: number }[]> {
  const text = await readFile('/etc/group', 'utf8').catch(() => '');
  const first = uplinkGroup(config, 0);
  const last = uplinkGroup(config, config.uplinks.length - 1);
  return text.split('\n').flatMap((line) => {
    const [name, , gid] = line.split(':');
    const id = Number(gid);
    return name && Number.isInteger(id) && id >= first && id <= last ? [{ name, gid: id }] : [];
  });
}

export async function hostFacts(runner: Runner, backend: BackendName, extraTools: readonly string[] = [], ipv6 = false): Promise<Pick<DoctorFacts, 'tools' | 'iptablesVersion' | 'features'>> {
  const [tools, version, features] = await Promise.all([
    // Every backend's tools: what is installed says which backend could work here.
    findTools([...Object.keys(TOOLS), ...Object.values(BACKEND_TOOLS).flatMap((t) => Object.keys(t)), ...extraTools]),
    runner.run(['iptables', '--version']).then(
      (r) => r.stdout,
      () => null,
    ),
    tryKernelFeatures(runner, backend, ipv6),
  ]);
  return { tools, iptablesVersion: version, features };
}

/**
 * `netfilterCollisions`: what the backend found in the way (the caller holds the backend; adapters know none);
 * `repairs`: the running daemon's repair record from its status (null without a daemon);
 * `pair`: one of a pair, what its checks need beside the config (system/ha-doctor.ts); null alone;
 * `root`: where the host's filesystem starts, for the fighters' files (a test's directory).
 */
export async function gatherFacts(
  runner: Runner,
  config: Config,
  daemonRunning: boolean,
  netfilterCollisions: readonly ConfigProblem[],
  repairs: RepairStatus | null,
  pair: Omit<HaDoctorInput, 'conntrackdInstalled'> | null,
  root = '/',
): Promise<DoctorFacts> {
  const ipv6 = config.lan.ipv6.mode !== 'off';
  const host = await hostFacts(runner, config.netfilter.backend, Object.keys(configTools(config)), ipv6);
  const kernel = await observeRouting(runner, config);
  const sysctls = await readSysctls(runner, [
    'net.ipv4.ip_forward',
    'net.ipv4.conf.all.rp_filter',
    ...config.uplinks.map((u) => `net.ipv4.conf.${u.interface}.rp_filter`),
    'net.ipv4.neigh.default.gc_thresh1',
    'net.ipv4.neigh.default.gc_thresh2',
    'net.ipv4.neigh.default.gc_thresh3',
    ...(ipv6
      ? Object.keys(
          familySysctls(
            config.uplinks.map((u) => u.interface),
            'ipv6',
          ),
        )
      : []),
  ]);
  const uplinks = await discoverUplinks(config, kernel, Date.now());
  const answers = await Promise.all(
    uplinks.map(async (u) => {
      if (!u.present || !u.gateway) return [u.name, null] as const;
      const ping = await runner.run(['ping', '-n', '-q', '-c', '1', '-W', '1', '-I', u.interface, u.gateway], { okExitCodes: [0, 1, 2] });
      return [u.name, ping.exitCode === 0] as const;
    }),
  );
  return {
    ...host,
    config,
    sysctls,
    kernel,
    netfilterCollisions,
    uplinks,
    gatewayAnswers: Object.fromEntries(answers),
    groupsInRange: await groupsInRange(config),
    daemonRunning,
    fighters: await gatherFighters(root),
    repairs,
    firewall: await readFirewall(runner),
    ha: pair ? await gatherHaFacts(runner, config, kernel.links, { ...pair, conntrackdInstalled: Boolean(host.tools.conntrackd) }) : null,
  };
}

// The gateway's firewall judged for what the dispatcher needs (pure): new
// connections from each LAN interface out of each uplink, their replies back,
// and on input the answers to the dispatcher's own probes, DDNS updates and
// public-address requests. A drop is a failure with the fix for the tool that
// owns the rule (ufw, firewalld, iptables, nftables); a rule that cannot be
// judged is `info`, never a false ok.

import type { Config } from '../../model/config.js';
import type { Finding, Severity } from '../finding.js';
import { cidrRange, parseIpv4 } from '../ipv4.js';
import { type ChainVerdict, type HookVerdict, judgeFlow } from './judge.js';
import { ANYWHERE, type AddressRange, type Flow, type RuleSets } from './model.js';

/** The three kinds of traffic judged; each is a check of its own. */
type Direction = 'new' | 'reply' | 'input';

interface Judged {
  readonly direction: Direction;
  readonly lan?: string;
  readonly uplink: { readonly name: string; readonly interface: string };
  readonly flow: Flow;
  readonly result: HookVerdict;
}

/** What the findings need besides the rule sets: where the LAN is and the uplinks' addresses. */
export interface FirewallScope {
  readonly config: Config;
  /** Where the clients are (doctor: the configured subnets, else the LAN interfaces' prefixes). */
  readonly lan: readonly string[];
  /** Uplink name → its IPv4 address, when known. */
  readonly uplinkAddresses: Readonly<Record<string, string | undefined>>;
}

function lanRanges(scope: FirewallScope): readonly AddressRange[] {
  const ranges = scope.lan.map(cidrRange).filter((r): r is AddressRange => r !== null);
  return ranges.length > 0 ? ranges : ANYWHERE;
}

/** A new connection from a client: TCP to port 443, the one every client opens first. */
export function newConnection(lan: string, uplink: string, sources: readonly AddressRange[], who: string): Flow {
  return { hook: 'forward', iif: lan, oif: uplink, saddr: sources, daddr: ANYWHERE, protocol: 'tcp', sport: null, dport: 443, state: 'new', description: `a new connection (TCP port 443) from ${who} on ${lan} out of ${uplink}` };
}

function flowsOf(scope: FirewallScope): Omit<Judged, 'result'>[] {
  const { config } = scope;
  const lan = lanRanges(scope);
  const flows: Omit<Judged, 'result'>[] = [];
  for (const uplink of config.uplinks) {
    for (const iface of config.lan.interfaces) {
      flows.push({ direction: 'new', lan: iface, uplink, flow: newConnection(iface, uplink.interface, lan, 'a client') });
      flows.push({
        direction: 'reply',
        lan: iface,
        uplink,
        flow: {
          hook: 'forward',
          iif: uplink.interface,
          oif: iface,
          saddr: ANYWHERE,
          daddr: lan,
          protocol: 'tcp',
          sport: 443,
          dport: null,
          state: 'established',
          description: `replies from ${uplink.interface} to a client's connection on ${iface}`,
        },
      });
    }
    const own = parseIpv4(scope.uplinkAddresses[uplink.name] ?? '');
    const local: readonly AddressRange[] = own === null ? ANYWHERE : [[own, own]];
    const input = (what: string, protocol: Flow['protocol'], sport: number | null): Omit<Judged, 'result'> => ({
      direction: 'input',
      uplink,
      flow: {
        hook: 'input',
        iif: uplink.interface,
        saddr: ANYWHERE,
        daddr: local,
        protocol,
        sport,
        dport: null,
        state: 'established',
        description: `${what} on ${uplink.interface}`,
        ...(protocol === 'icmp' ? { icmpType: 'echo-reply' as const } : {}),
      },
    });
    flows.push(input('answers to the health probes (ICMP echo replies)', 'icmp', null));
    if (config.ddns) flows.push(input('answers to DDNS updates (DNS over UDP)', 'udp', 53));
    if (uplink.publicAddress) flows.push(input('answers to the public-address request (HTTP)', 'tcp', uplink.publicAddress.url.startsWith('https:') ? 443 : 80));
  }
  return flows;
}

const quote = (name: string): string => `"${name}"`;
const nftSet = (names: readonly string[]): string => (names.length === 1 ? quote(names[0] as string) : `{ ${names.map(quote).join(', ')} }`);
// ufw and firewalld keep what their commands add; plain rules must also be written where the boot loads them.
const KEEP_IPTABLES = ' (then save it where your rules are loaded from at boot, e.g. netfilter-persistent save)';
const KEEP_NFT = ' (and add it to /etc/nftables.conf)';

/** The fix for one chain that drops the flows of `judged` (all of one direction), for the tool that owns it. */
function fixFor(chain: ChainVerdict, judged: readonly Judged[]): string {
  const direction = (judged[0] as Judged).direction;
  const pairs = judged.map((j) => ({ lan: j.lan ?? '', uplink: j.uplink.interface }));
  const uplinks = [...new Set(pairs.map((p) => p.uplink))];
  const lans = [...new Set(pairs.map((p) => p.lan))];
  const { owner, family, name } = chain.table;
  if (owner === 'ufw') {
    if (direction === 'new') return `${pairs.map((p) => `ufw route allow in on ${p.lan} out on ${p.uplink}`).join(' && ')} (or allow all routed traffic: ufw default allow routed)`;
    const hook = direction === 'reply' ? 'forward' : 'input';
    return `ufw accepts established connections in ufw-before-${hook} (/etc/ufw/before.rules): put back "-A ufw-before-${hook} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" there, then ufw reload`;
  }
  if (owner === 'firewalld') {
    if (direction === 'new') {
      const steps = [
        ...lans.map((l) => `firewall-cmd --permanent --zone=internal --add-interface=${l}`),
        ...uplinks.map((u) => `firewall-cmd --permanent --zone=external --add-interface=${u}`),
        'firewall-cmd --permanent --new-policy dispatcher-out',
        'firewall-cmd --permanent --policy dispatcher-out --add-ingress-zone internal',
        'firewall-cmd --permanent --policy dispatcher-out --add-egress-zone external',
        'firewall-cmd --permanent --policy dispatcher-out --set-target ACCEPT',
        'firewall-cmd --reload',
      ];
      return steps.join(' && ');
    }
    return `firewalld accepts established connections first in its ${chain.chain} chain; something changed its table: firewall-cmd --reload`;
  }
  if (owner === 'iptables') {
    const rules =
      direction === 'new'
        ? pairs.map((p) => `iptables -I ${chain.chain} -i ${p.lan} -o ${p.uplink} -j ACCEPT`)
        : direction === 'reply'
          ? pairs.map((p) => `iptables -I ${chain.chain} -i ${p.uplink} -o ${p.lan} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)
          : uplinks.map((u) => `iptables -I ${chain.chain} -i ${u} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`);
    return `${[...new Set(rules)].join(' && ')}${KEEP_IPTABLES}`;
  }
  const where = `nft insert rule ${family} ${name} ${chain.chain}`;
  const rule =
    direction === 'new'
      ? lans.map((l) => `${where} iifname ${quote(l)} oifname ${nftSet(uplinks)} accept`)
      : direction === 'reply'
        ? lans.map((l) => `${where} iifname ${nftSet(uplinks)} oifname ${quote(l)} ct state established,related accept`)
        : [`${where} iifname ${nftSet(uplinks)} ct state established,related accept`];
  // The shell sees the rule's quotes: wrap each command's nft arguments in single quotes.
  return `${rule.map((r) => r.replace(/^(nft insert rule \S+ \S+ \S+) (.*)$/, "$1 '$2'")).join(' && ')}${KEEP_NFT}`;
}

const CHECK: Record<Direction, string> = { new: 'firewall:forward', reply: 'firewall:forward-replies', input: 'firewall:input' };
const WHAT: Record<Direction, string> = { new: 'new connections', reply: 'replies to clients', input: "answers to the dispatcher's own requests" };

function pairText(group: readonly Judged[]): string {
  const direction = (group[0] as Judged).direction;
  if (direction === 'input') return `on ${[...new Set(group.map((j) => j.uplink.interface))].join(', ')}`;
  const byLan = new Map<string, string[]>();
  for (const j of group) byLan.set(j.lan ?? '', [...(byLan.get(j.lan ?? '') ?? []), j.uplink.interface]);
  const arrow = direction === 'new' ? (lan: string, up: string[]) => `${lan} → ${up.join(', ')}` : (lan: string, up: string[]) => `${up.join(', ')} → ${lan}`;
  return [...byLan].map(([lan, up]) => arrow(lan, [...new Set(up)])).join('; ');
}

function exceptionsText(chains: readonly ChainVerdict[]): string {
  const notes = chains.flatMap((c) => c.exceptions.filter((e) => e.verdict !== 'opaque').map((e) => `${e.verdict === 'accept' ? 'accepted' : 'dropped'} when ${e.when.map((b) => b.rule).join(' and ')}`));
  return notes.length === 0 ? '' : ` (some connections differ: ${[...new Set(notes)].slice(0, 3).join('; ')})`;
}

function groupFinding(group: readonly Judged[]): Finding {
  const first = group[0] as Judged;
  const check = CHECK[first.direction];
  const pairs = pairText(group);
  const what =
    first.direction === 'input'
      ? group
          .map((j) => j.flow.description.replace(/ on \S+$/, ''))
          .filter((d, i, all) => all.indexOf(d) === i)
          .join(', ')
      : WHAT[first.direction];
  const { result } = first;
  if (result.chains.length === 0) return { check, severity: 'ok', summary: `${what} ${pairs}: no firewall rules on the ${first.flow.hook} path` };
  if (result.verdict === 'accept') {
    const by = result.chains.map((c) => c.by).join('; ');
    return { check, severity: 'ok', summary: `${what} ${pairs} pass the firewall (${by})${exceptionsText(result.chains)}` };
  }
  const severity: Severity = result.verdict === 'drop' ? 'fail' : 'info';
  const deciding = result.chains.filter((c) => c.verdict === result.verdict);
  if (result.verdict === 'drop') {
    const by = deciding.map((c) => c.by).join('; ');
    const only = exceptionsText(deciding);
    return { check, severity, summary: `${what} ${pairs} are dropped by the firewall: ${by}${only}`, fix: deciding.map((c) => fixFor(c, group)).join('; then ') };
  }
  const by = deciding.map((c) => c.by).join('; ');
  return {
    check,
    severity,
    summary: `${what} ${pairs}: the firewall's verdict cannot be judged from its rules (${by})`,
    fix: `if clients or probes cannot get through, add: ${deciding.map((c) => fixFor(c, group)).join('; then ')}`,
  };
}

/** A key that groups flows with the same outcome for the same reason. */
function outcomeKey(j: Judged): string {
  return `${j.direction}|${j.result.verdict}|${j.result.chains.map((c) => `${c.table.label}/${c.chain}/${c.verdict}/${c.by}`).join('|')}`;
}

export function firewallFindings(sets: RuleSets, scope: FirewallScope): Finding[] {
  if (sets.unread.length > 0)
    return [{ check: 'firewall:read', severity: 'info', summary: `the firewall could not be read, so it is not judged: ${sets.unread.join('; ')}`, fix: 'run doctor as root with iptables and nft installed' }];
  const judged: Judged[] = flowsOf(scope).map((j) => ({ ...j, result: judgeFlow(sets.tables, j.flow.hook, j.flow) }));
  const groups = new Map<string, Judged[]>();
  for (const j of judged) groups.set(outcomeKey(j), [...(groups.get(outcomeKey(j)) ?? []), j]);
  return [...groups.values()].map(groupFinding);
}

/** `explain`: what the firewall does with a client's new connections out of the uplinks it can leave by, one line each. */
export function firewallForClient(sets: RuleSets, ip: string, lan: string, uplinks: readonly string[]): string[] {
  if (sets.unread.length > 0) return [`firewall: not judged (${sets.unread.join('; ')})`];
  const address = parseIpv4(ip) as number;
  return uplinks.map((uplink) => {
    const flow = newConnection(lan, uplink, [[address, address]], ip);
    const result = judgeFlow(sets.tables, 'forward', flow);
    if (result.chains.length === 0) return `firewall: no rules on the forward path; ${flow.description} passes`;
    const chains = result.chains.filter((c) => c.verdict === result.verdict);
    const by = chains.map((c) => c.by).join('; ');
    const verdict = result.verdict === 'accept' ? 'accepted' : result.verdict === 'drop' ? 'DROPPED' : 'cannot be judged';
    return `firewall: ${flow.description} is ${verdict} (${by})${exceptionsText(chains)}`;
  });
}

// iptables' filter table (read by our iptables-save parser) in the firewall
// judge's model (core/firewall/model.ts). ufw writes its rules here too: its chains are named ufw-….

import type { IptRule, IptTable, RuleSpec } from '../../model/kernel.js';
import { cidrRange } from '../../core/ipv4.js';
import type { Action, AddressRange, Condition, FwRule, FwTable, Hook } from '../../core/firewall/model.js';
import { joinArgs } from '../iptables-save.js';

const HOOKS: Readonly<Record<string, Hook>> = { FORWARD: 'forward', INPUT: 'input' };
const PROTOCOLS: Readonly<Record<string, string>> = { '1': 'icmp', '6': 'tcp', '17': 'udp', '0': 'all' };
const ICMP_TYPES: Readonly<Record<string, string>> = { '0': 'echo-reply', '8': 'echo-request', 'echo-reply': 'echo-reply', 'echo-request': 'echo-request', pong: 'echo-reply', ping: 'echo-request' };
/** Targets that let the packet go on to the next rule. */
const GOES_ON = new Set(['LOG', 'NFLOG', 'ULOG', 'MARK', 'CONNMARK', 'TCPMSS', 'CLASSIFY', 'CT', 'AUDIT', 'TRACE', 'DSCP', 'TOS', 'SECMARK', 'CONNSECMARK', 'TTL', 'IDLETIMER', 'LED', 'CHECKSUM']);

/** An option list with "!" in front of the option it negates: the value after `name`, and whether negated. */
function option(options: readonly string[], ...names: string[]): { value: string; negated: boolean } | null {
  const at = options.findIndex((o) => names.includes(o));
  if (at < 0) return null;
  return { value: options[at + 1] ?? '', negated: options[at - 1] === '!' };
}

function portRanges(text: string): [number, number][] {
  return text.split(',').map((part) => {
    const [low, high] = part.split(':');
    return [Number(low || 0), Number(high === undefined ? low : high || 65535)];
  });
}

function matchConditions(module: string, options: readonly string[], protocol: string | undefined, whole: string): Condition[] {
  const opaque = (): Condition[] => [{ kind: 'opaque', text: whole }];
  switch (module) {
    case 'comment':
      return [];
    case 'conntrack':
    case 'state': {
      const states = option(options, '--ctstate', '--state');
      // Other conntrack options (--ctstatus, --ctorigdst …) are not judged.
      if (!states || options.some((o) => o.startsWith('--') && o !== '--ctstate' && o !== '--state')) return opaque();
      return [{ kind: 'state', states: states.value.toLowerCase().split(','), negated: states.negated }];
    }
    case 'tcp':
    case 'udp': {
      const conditions: Condition[] = [];
      for (const [name, kind] of [
        ['--dport', 'dport'],
        ['--sport', 'sport'],
      ] as const) {
        const port = option(options, name, name === '--dport' ? '--destination-port' : '--source-port');
        if (port) conditions.push({ kind, ranges: portRanges(port.value), negated: port.negated, protocol: module });
      }
      // Flags (--syn, --tcp-flags) hold for a connection's first packet or not: not judged.
      return options.some((o) => o.startsWith('--') && !/^--(dport|sport|destination-port|source-port)$/.test(o)) ? [...conditions, ...opaque()] : conditions;
    }
    case 'multiport': {
      const ports = option(options, '--dports', '--destination-ports', '--sports', '--source-ports', '--ports');
      if (!ports || options.includes('--ports')) return opaque();
      const kind = options.some((o) => o === '--sports' || o === '--source-ports') ? 'sport' : 'dport';
      return [{ kind, ranges: portRanges(ports.value), negated: ports.negated, ...(protocol ? { protocol } : {}) }];
    }
    case 'icmp': {
      const type = option(options, '--icmp-type');
      if (!type) return opaque();
      // A type the map does not name ("3", "11/0") is never one of the flows' echo types.
      const name = type.value === 'any' ? 'any' : (ICMP_TYPES[type.value] ?? `type ${type.value}`);
      return [{ kind: 'icmp-type', types: [name], negated: type.negated }];
    }
    case 'addrtype': {
      const dst = option(options, '--dst-type');
      if (!dst || options.includes('--src-type') || options.includes('--limit-iface-in') || options.includes('--limit-iface-out')) return opaque();
      // The flows judged go to a unicast address: a remote one when forwarded, the gateway's own on input.
      const types = dst.value.split(',');
      if (types.includes('UNICAST')) return dst.negated ? [{ kind: 'fixed', holds: false }] : [];
      const local = types.includes('LOCAL');
      return [dst.negated ? { kind: 'local-destination', local: !local } : local ? { kind: 'local-destination', local: true } : { kind: 'fixed', holds: false }];
    }
    case 'pkttype': {
      const type = option(options, '--pkt-type');
      if (!type) return opaque();
      return [{ kind: 'fixed', holds: (type.value === 'unicast') !== type.negated }];
    }
    case 'limit':
    case 'hashlimit':
    case 'time':
    case 'statistic':
      return [{ kind: 'some', text: whole }];
    default:
      return opaque();
  }
}

function ruleConditions(spec: RuleSpec, whole: string): Condition[] | null {
  const conditions: Condition[] = [];
  for (const [field, kind] of [
    ['inInterface', 'iif'],
    ['outInterface', 'oif'],
  ] as const) {
    const value = spec[field];
    if (value) conditions.push({ kind, names: [value.value.replace(/\+$/, '*')], negated: value.negated });
  }
  for (const [field, kind] of [
    ['source', 'saddr'],
    ['destination', 'daddr'],
  ] as const) {
    const value = spec[field];
    if (!value) continue;
    const ranges = value.value.split(',').map(cidrRange);
    if (ranges.some((r) => r === null)) return null;
    conditions.push({ kind, ranges: ranges as AddressRange[], negated: value.negated });
  }
  const protocol = spec.protocol ? (PROTOCOLS[spec.protocol.value] ?? spec.protocol.value.toLowerCase()) : undefined;
  if (spec.protocol && protocol) conditions.push({ kind: 'protocol', protocols: [protocol], negated: spec.protocol.negated });
  for (const match of spec.matches) conditions.push(...matchConditions(match.module, match.options, spec.protocol?.negated ? undefined : protocol, whole));
  return conditions;
}

function ruleAction(spec: RuleSpec, chains: ReadonlySet<string>, whole: string): Action {
  if (spec.goto) return { kind: 'goto', chain: spec.goto };
  const target = spec.jump;
  if (target === undefined) return { kind: 'continue' };
  if (chains.has(target)) return { kind: 'jump', chain: target };
  if (target === 'ACCEPT') return { kind: 'accept' };
  if (target === 'DROP') return { kind: 'drop', how: 'dropped' };
  if (target === 'REJECT') return { kind: 'drop', how: 'rejected' };
  if (target === 'RETURN') return { kind: 'return' };
  if (GOES_ON.has(target)) return { kind: 'continue' };
  return { kind: 'opaque', text: whole };
}

function toRule(rule: IptRule, chains: ReadonlySet<string>, label: string): FwRule {
  const text = `${label}: -A ${rule.chain} ${joinArgs(rule.args)}`;
  const conditions = ruleConditions(rule.spec, text) ?? [{ kind: 'opaque', text } as const];
  return { conditions, action: ruleAction(rule.spec, chains, text), text };
}

/** The filter table's FORWARD and INPUT paths. `label` says which iptables it came from. */
export function iptablesFilter(table: IptTable, label = 'iptables filter'): FwTable {
  const userChains = new Set(table.chains.filter((c) => c.policy === null).map((c) => c.name));
  const chains = new Map<string, FwRule[]>(table.chains.map((c) => [c.name, []]));
  for (const rule of table.rules) chains.get(rule.chain)?.push(toRule(rule, userChains, label));
  const baseChains = table.chains.flatMap((c) => {
    const hook = HOOKS[c.name];
    return hook && c.policy ? [{ chain: c.name, hook, policy: c.policy === 'ACCEPT' ? ('accept' as const) : ('drop' as const), priority: 0 }] : [];
  });
  const owner = table.chains.some((c) => c.name.startsWith('ufw-')) ? 'ufw' : 'iptables';
  return { label, family: 'iptables', name: table.name, owner, chains, baseChains };
}

// Pure verification of a parsed config document (VyOS's "verify" step): every
// problem is collected with its field and the fix, so the operator sees all of
// them at once, and nothing touches the kernel until the whole config passes.

import { MAX_UPLINKS, RANGE_SIZE } from '../core/contract.js';
import { parseDurationMs } from '../core/duration.js';
import { cidrContains, cidrsOverlap, formatCidr, isUnicastHost, parseCidr, parseIpv4, type Cidr } from '../core/ipv4.js';
import { hex, markLayout, parseMark } from '../core/marks.js';
import { isInterfaceName, isUplinkName } from '../core/names.js';
import type { Config, UplinkConfig } from '../model/config.js';
import { ConfigError, type ConfigProblem } from '../model/errors.js';

export const DEFAULTS = {
  schedule: '*/30 * * * * *',
  state: '/var/lib/dispatcher',
  socket: '/run/dispatcher/dispatcher.sock',
  markMask: 0xff000000,
  tableBase: 3100,
  rulePriority: 4100,
  clientExpire: '7d',
  clientMax: 65536,
} as const;

const RESERVED_TABLES = [0, 253, 254, 255];
const MAX_RULE_PRIORITY = 32765; // 32766/32767 are the kernel's main/default rules

export interface VerifyOptions {
  /** Checks a cron expression; injected so this module stays free of the cron package. */
  readonly validateSchedule?: (expression: string) => string | null;
}

type Doc = Record<string, unknown>;

class Problems {
  readonly list: ConfigProblem[] = [];
  add(field: string, problem: string, fix: string): void {
    this.list.push({ field, problem, fix });
  }
}

function isObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  if (typeof value === 'object') return 'a mapping';
  return String(value);
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

function unknownKeys(problems: Problems, doc: Doc, path: string, known: readonly string[]): void {
  for (const key of Object.keys(doc)) {
    if (known.includes(key)) continue;
    const close = known.find((k) => editDistance(k, key) <= 2);
    const field = path ? `${path}.${key}` : key;
    problems.add(
      field,
      'unknown key',
      close ? `did you mean "${close}"?` : `remove it; the keys allowed here are: ${known.join(', ')}`,
    );
  }
}

function section(problems: Problems, doc: Doc, key: string, known: readonly string[]): Doc {
  const value = doc[key];
  if (value === undefined || value === null) return {};
  if (!isObject(value)) {
    problems.add(key, `must be a mapping, not ${describe(value)}`, `write it as "${key}: { … }" or leave it out`);
    return {};
  }
  unknownKeys(problems, value, key, known);
  return value;
}

function stringList(problems: Problems, value: unknown, field: string, fix: string): string[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add(field, `must be a list, not ${describe(value)}`, fix);
    return [];
  }
  return value.flatMap((item, i) => {
    if (typeof item === 'string') return [item];
    problems.add(`${field}[${i}]`, `must be text, not ${describe(item)}`, fix);
    return [];
  });
}

function integerIn(problems: Problems, value: unknown, field: string, min: number, max: number, fallback: number, what: string): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    problems.add(field, `must be a whole number from ${min} to ${max}, not ${describe(value)}`, what);
    return fallback;
  }
  return value;
}

function absolutePath(problems: Problems, value: unknown, field: string, fallback: string): string {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || !value.startsWith('/') || value.includes('\0') || value.includes('\n')) {
    problems.add(field, `must be an absolute path, not ${describe(value)}`, `write a path such as ${fallback}`);
    return fallback;
  }
  return value;
}

function verifyLan(problems: Problems, doc: Doc): { interfaces: string[]; subnets: string[]; cidrs: Cidr[] } {
  if (doc.lan === undefined || doc.lan === null) {
    problems.add('lan', 'is missing', 'add "lan: { interfaces: [lan0] }" naming the interfaces your clients are on');
  }
  const lan = section(problems, doc, 'lan', ['interfaces', 'subnets']);
  const interfaces = stringList(problems, lan.interfaces, 'lan.interfaces', 'list interface names, e.g. [lan0]');
  if (doc.lan !== undefined && doc.lan !== null && interfaces.length === 0 && Array.isArray(lan.interfaces)) {
    problems.add('lan.interfaces', 'is empty', 'name at least one interface your clients are on');
  } else if (isObject(doc.lan) && lan.interfaces === undefined) {
    problems.add('lan.interfaces', 'is missing', 'name the interfaces your clients are on, e.g. [lan0]');
  }
  const seen = new Set<string>();
  interfaces.forEach((name, i) => {
    if (!isInterfaceName(name)) {
      problems.add(`lan.interfaces[${i}]`, `"${name}" is not a valid interface name`, 'use the exact kernel name: 1–15 letters, digits, "_", "-" or "." (no "+" wildcards)');
    } else if (seen.has(name)) {
      problems.add(`lan.interfaces[${i}]`, `"${name}" is listed twice`, 'list each interface once');
    }
    seen.add(name);
  });
  const subnetTexts = stringList(problems, lan.subnets, 'lan.subnets', 'list networks in CIDR form, e.g. [198.18.0.0/16]');
  const cidrs: Cidr[] = [];
  subnetTexts.forEach((text, i) => {
    const cidr = parseCidr(text);
    if (!cidr) {
      problems.add(`lan.subnets[${i}]`, `"${text}" is not an IPv4 network in CIDR form with zero host bits`, 'write it like 198.18.0.0/16');
      return;
    }
    const clash = cidrs.find((other) => cidrsOverlap(other, cidr));
    if (clash) {
      problems.add(`lan.subnets[${i}]`, `${text} overlaps ${formatCidr(clash)}`, 'list non-overlapping networks (keep the larger one)');
      return;
    }
    cidrs.push(cidr);
  });
  return { interfaces, subnets: cidrs.map(formatCidr), cidrs };
}

function verifyProbe(problems: Problems, value: unknown, field: string): { targets: string[] } {
  if (value === undefined || value === null) return { targets: [] };
  if (!isObject(value)) {
    problems.add(field, `must be a mapping, not ${describe(value)}`, 'write it as "probe: { targets: [203.0.113.100] }"');
    return { targets: [] };
  }
  unknownKeys(problems, value, field, ['targets']);
  const targets = stringList(problems, value.targets, `${field}.targets`, 'list IPv4 addresses beyond the uplink, e.g. [203.0.113.100]');
  targets.forEach((target, i) => {
    const address = parseIpv4(target);
    if (address === null || !isUnicastHost(address)) {
      problems.add(`${field}.targets[${i}]`, `"${target}" is not a unicast IPv4 address`, 'write an address such as 203.0.113.100');
    } else if (targets.indexOf(target) !== i) {
      problems.add(`${field}.targets[${i}]`, `${target} is listed twice`, 'list each target once');
    }
  });
  return { targets };
}

function verifyUplink(problems: Problems, value: unknown, i: number): UplinkConfig | null {
  const field = `uplinks[${i}]`;
  if (!isObject(value)) {
    problems.add(field, `must be a mapping, not ${describe(value)}`, 'write it as "- { name: isp1, interface: ppp0 }"');
    return null;
  }
  unknownKeys(problems, value, field, ['name', 'interface', 'gateway', 'weight', 'probe']);
  let ok = true;
  const { name, interface: iface, gateway, weight } = value;
  if (name === undefined) {
    problems.add(`${field}.name`, 'is missing', 'give the uplink a stable name such as isp1');
    ok = false;
  } else if (typeof name !== 'string' || !isUplinkName(name)) {
    problems.add(`${field}.name`, `${describe(name)} is not a valid name`, 'start with a letter; use letters, digits, "_" or "-", at most 32');
    ok = false;
  }
  if (iface === undefined) {
    problems.add(`${field}.interface`, 'is missing', 'name the interface the uplink uses, e.g. ppp0');
    ok = false;
  } else if (typeof iface !== 'string' || !isInterfaceName(iface)) {
    problems.add(`${field}.interface`, `${describe(iface)} is not a valid interface name`, 'use the exact kernel name: 1–15 letters, digits, "_", "-" or "." (no "+" wildcards)');
    ok = false;
  }
  let gatewayText: string | undefined;
  if (gateway !== undefined && gateway !== null) {
    const address = typeof gateway === 'string' ? parseIpv4(gateway) : null;
    if (address === null || !isUnicastHost(address)) {
      problems.add(`${field}.gateway`, `${describe(gateway)} is not a unicast IPv4 address`, 'write the next hop such as 198.51.100.1, or leave it out to discover it');
      ok = false;
    } else {
      gatewayText = gateway as string;
    }
  }
  let weightValue = 1;
  if (weight !== undefined && weight !== null) {
    if (typeof weight !== 'number' || !Number.isInteger(weight) || weight < 1 || weight > 256) {
      problems.add(`${field}.weight`, `must be a whole number from 1 to 256, not ${describe(weight)}`, 'use a positive integer (it is also the multipath route weight); 1 is the default');
      ok = false;
    } else {
      weightValue = weight;
    }
  }
  const probe = verifyProbe(problems, value.probe, `${field}.probe`);
  if (!ok) return null;
  return { name: name as string, interface: iface as string, ...(gatewayText ? { gateway: gatewayText } : {}), weight: weightValue, probe };
}

function verifyUplinks(problems: Problems, doc: Doc, lanInterfaces: readonly string[], lanCidrs: readonly Cidr[]): UplinkConfig[] {
  const value = doc.uplinks;
  if (value === undefined || value === null) {
    problems.add('uplinks', 'is missing', 'list at least one uplink: "uplinks: [{ name: isp1, interface: ppp0 }]"');
    return [];
  }
  if (!Array.isArray(value)) {
    problems.add('uplinks', `must be a list, not ${describe(value)}`, 'write each uplink as a "- name: …" item');
    return [];
  }
  if (value.length === 0) {
    problems.add('uplinks', 'is empty', 'list at least one uplink');
    return [];
  }
  if (value.length > MAX_UPLINKS) {
    problems.add('uplinks', `has ${value.length} entries`, `at most ${MAX_UPLINKS} uplinks are supported`);
  }
  const uplinks: UplinkConfig[] = [];
  value.forEach((item, i) => {
    const uplink = verifyUplink(problems, item, i);
    if (!uplink) return;
    const field = `uplinks[${i}]`;
    const sameName = uplinks.findIndex((u) => u.name === uplink.name);
    const sameInterface = uplinks.findIndex((u) => u.interface === uplink.interface);
    if (sameName >= 0) {
      problems.add(`${field}.name`, `"${uplink.name}" is already used by uplinks[${sameName}]`, 'give every uplink its own name');
    }
    if (sameInterface >= 0) {
      problems.add(`${field}.interface`, `${uplink.interface} is already used by uplinks[${sameInterface}]`, 'give every uplink its own interface');
    }
    if (lanInterfaces.includes(uplink.interface)) {
      problems.add(`${field}.interface`, `${uplink.interface} is also a LAN interface`, 'an interface is either in lan.interfaces or an uplink, not both');
    }
    const gatewayAddress = uplink.gateway === undefined ? null : parseIpv4(uplink.gateway);
    const inLan = gatewayAddress === null ? undefined : lanCidrs.find((c) => cidrContains(c, gatewayAddress));
    if (inLan) {
      problems.add(`${field}.gateway`, `${uplink.gateway} lies inside LAN subnet ${formatCidr(inLan)}`, 'use the next hop on the uplink side');
    }
    if (sameName < 0 && sameInterface < 0) uplinks.push(uplink);
  });
  return uplinks;
}

function verifyMarks(problems: Problems, doc: Doc, uplinkCount: number): number {
  const marks = section(problems, doc, 'marks', ['mask']);
  if (marks.mask === undefined || marks.mask === null) {
    if (uplinkCount > markLayout(DEFAULTS.markMask).capacity) {
      problems.add('marks.mask', `the default mask ${hex(DEFAULTS.markMask)} holds ${markLayout(DEFAULTS.markMask).capacity} uplinks, not ${uplinkCount}`, 'set marks.mask to 10 bits no other software here uses: 0xffc00000 when Tailscale (0xff0000) is not installed, or 0xff000003 when nothing uses the low bits');
    }
    return DEFAULTS.markMask;
  }
  const mask = typeof marks.mask === 'number' ? (Number.isInteger(marks.mask) && marks.mask >= 0 && marks.mask <= 0xffffffff ? marks.mask : null) : typeof marks.mask === 'string' ? parseMark(marks.mask) : null;
  if (mask === null || mask === 0) {
    problems.add('marks.mask', `${describe(marks.mask)} is not a non-zero 32-bit mask`, 'write it in hex, e.g. "0xff000000"');
    return DEFAULTS.markMask;
  }
  const layout = markLayout(mask);
  if (layout.capacity < Math.max(1, uplinkCount)) {
    problems.add('marks.mask', `${hex(mask)} holds ${layout.capacity} uplinks, fewer than the ${uplinkCount} configured`, 'widen the mask: each of its two fields needs enough bits for every uplink plus one');
  }
  return mask;
}

function verifyRanges(problems: Problems, doc: Doc): { tableBase: number; rulePriority: number } {
  const tables = section(problems, doc, 'tables', ['base']);
  const rules = section(problems, doc, 'rules', ['priority']);
  let tableBase = integerIn(problems, tables.base, 'tables.base', 1, 0x7fffffff - RANGE_SIZE, DEFAULTS.tableBase, `pick a free block of ${RANGE_SIZE} table ids, e.g. ${DEFAULTS.tableBase}`);
  const reserved = RESERVED_TABLES.find((t) => t >= tableBase && t < tableBase + RANGE_SIZE);
  if (reserved !== undefined) {
    problems.add('tables.base', `the block ${tableBase}–${tableBase + RANGE_SIZE - 1} contains the kernel's reserved table ${reserved}`, `use a base of 256 or more, e.g. ${DEFAULTS.tableBase}`);
    tableBase = DEFAULTS.tableBase;
  }
  const rulePriority = integerIn(problems, rules.priority, 'rules.priority', 1, MAX_RULE_PRIORITY - RANGE_SIZE + 1, DEFAULTS.rulePriority, `pick a free block of ${RANGE_SIZE} priorities below 32766, e.g. ${DEFAULTS.rulePriority}`);
  return { tableBase, rulePriority };
}

function verifyClients(problems: Problems, doc: Doc): { expireSeconds: number; max: number } {
  const clients = section(problems, doc, 'clients', ['expire', 'max']);
  let expireSeconds = (parseDurationMs(DEFAULTS.clientExpire) as number) / 1000;
  if (clients.expire !== undefined && clients.expire !== null) {
    const ms = typeof clients.expire === 'string' ? parseDurationMs(clients.expire) : clients.expire === 0 ? 0 : null;
    if (ms === null || (ms > 0 && ms < 60_000)) {
      problems.add('clients.expire', `${describe(clients.expire)} is not a duration of a minute or more`, 'write e.g. "7d", "12h", or 0 to keep assignments forever');
    } else {
      expireSeconds = Math.round(ms / 1000);
    }
  }
  const max = integerIn(problems, clients.max, 'clients.max', 1, 1_000_000, DEFAULTS.clientMax, 'set the most clients the gateway should assign, e.g. 65536');
  return { expireSeconds, max };
}

/** Verifies a parsed YAML document; throws ConfigError listing every problem. */
export function verifyConfig(doc: unknown, options: VerifyOptions = {}, source?: string): Config {
  const problems = new Problems();
  if (!isObject(doc)) {
    problems.add('(top level)', `must be a mapping, not ${describe(doc)}`, 'start from pools/example.yaml');
    throw new ConfigError(problems.list, source);
  }
  unknownKeys(problems, doc, '', ['lan', 'uplinks', 'scan', 'state', 'socket', 'marks', 'tables', 'rules', 'clients']);
  const lan = verifyLan(problems, doc);
  const uplinks = verifyUplinks(problems, doc, lan.interfaces, lan.cidrs);
  const scan = section(problems, doc, 'scan', ['schedule']);
  let schedule: string = DEFAULTS.schedule;
  if (scan.schedule !== undefined && scan.schedule !== null) {
    const error = typeof scan.schedule !== 'string' ? 'is not text' : options.validateSchedule?.(scan.schedule) ?? null;
    if (error) {
      problems.add('scan.schedule', `${describe(scan.schedule)} ${error}`, 'write a cron expression with an optional seconds field, e.g. "*/30 * * * * *"');
    } else {
      schedule = scan.schedule as string;
    }
  }
  const mask = verifyMarks(problems, doc, uplinks.length);
  const { tableBase, rulePriority } = verifyRanges(problems, doc);
  const clients = verifyClients(problems, doc);
  const state = absolutePath(problems, doc.state, 'state', DEFAULTS.state);
  const socket = absolutePath(problems, doc.socket, 'socket', DEFAULTS.socket);
  if (problems.list.length > 0) throw new ConfigError(problems.list, source);
  return {
    lan: { interfaces: lan.interfaces, subnets: lan.subnets },
    uplinks,
    scan: { schedule },
    state,
    socket,
    marks: { mask },
    tables: { base: tableBase },
    rules: { priority: rulePriority },
    clients,
  };
}

// Pure verification of a parsed config document (VyOS's "verify" step): every
// problem is collected with its field and the fix, so the operator sees all of
// them at once, and nothing touches the kernel until the whole config passes.

import { MAX_UPLINKS, RANGE_SIZE } from '../core/contract.js';
import { formatDurationMs, parseDurationMs } from '../core/duration.js';
import { cidrContains, cidrsOverlap, formatCidr, isUnicastHost, parseCidr, parseIpv4, type Cidr } from '../core/ipv4.js';
import { hex, markLayout, parseMark } from '../core/marks.js';
import { excerpt, isInterfaceName, isUplinkName } from '../core/names.js';
import type { Config, DampingConfig, DdnsConfig, EmailConfig, HealthSettings, NotifyConfig, PublicAddressConfig, StaticRoute, UplinkConfig } from '../model/config.js';
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
  /** A router or proxy-ARP host behind one MAC gets this many; a host answering for a whole subnet gets no more. */
  clientsPerMac: 64,
  /** High enough to stay clear of the groups of people and packages (Debian hands those out below 60000). */
  groupBase: 64100,
} as const;

/**
 * Health defaults: a silently dead line is declared dead after at most
 * down × interval + timeout = 8 × 100 ms + 500 ms = 1.3 s; a line losing 10 %
 * of its packets (19 % of round trips) stays up: eight losses in a row happen
 * with probability 0.19^8 ≈ 2e-6 per probe, and the 50 %-of-50 loss rule sits
 * more than five standard deviations away.
 */
export const HEALTH_DEFAULTS: HealthSettings = {
  intervalMs: 100,
  timeoutMs: 500,
  down: 8,
  up: 10,
  lossPercent: 50,
  window: 50,
  latencyMs: 0,
  reliability: 1,
  holdMs: 0,
};

/** Penalties halve every 30 s: three falls within about a minute reach 2.5 and hold the line down. */
export const DAMPING_DEFAULTS: DampingConfig = { halfLifeMs: 30_000, suppress: 2.5, reuse: 1 };

const HEALTH_KEYS = ['interval', 'timeout', 'down', 'up', 'loss', 'window', 'latency', 'reliability', 'hold'] as const;

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
    const close = key.length <= 64 ? known.find((k) => editDistance(k, key) <= 2) : undefined;
    // A key that is not a plain word (empty, control characters, very long) is shown quoted and cut.
    const shown = /^[A-Za-z0-9_-]{1,64}$/.test(key) ? key : excerpt(key);
    const field = path ? `${path}.${shown}` : shown;
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

function duration(problems: Problems, value: unknown, field: string, minMs: number, maxMs: number, fallback: number, fix: string): number {
  if (value === undefined || value === null) return fallback;
  const ms = typeof value === 'string' ? parseDurationMs(value) : value === 0 ? 0 : null;
  if (ms === null || ms < minMs || ms > maxMs) {
    problems.add(field, `${describe(value)} is not a duration from ${formatDurationMs(minMs)} to ${formatDurationMs(maxMs)}`, fix);
    return fallback;
  }
  return ms;
}

function percent(problems: Problems, value: unknown, field: string, fallback: number): number {
  if (value === undefined || value === null) return fallback;
  const match = typeof value === 'string' ? /^([0-9]+(?:\.[0-9]+)?)%$/.exec(value) : null;
  const number = match ? Number(match[1]) : typeof value === 'number' ? value : NaN;
  if (!(number > 0 && number <= 100)) {
    problems.add(field, `${describe(value)} is not a percentage above 0 and up to 100`, 'write it like "50%"');
    return fallback;
  }
  return number;
}

/** Health keys (global `health` or an uplink's `probe` overrides) on top of the given base. */
function verifyHealth(problems: Problems, doc: Doc, path: string, base: HealthSettings): HealthSettings {
  const at = (key: string): string => `${path}.${key}`;
  const interval = duration(problems, doc.interval, at('interval'), 20, 60_000, base.intervalMs, 'probe every 20ms to 60s, e.g. "100ms"');
  const down = integerIn(problems, doc.down, at('down'), 1, 100, base.down, 'consecutive lost probes that make a target dead, e.g. 8');
  return {
    intervalMs: interval,
    timeoutMs: duration(problems, doc.timeout, at('timeout'), 10, 60_000, base.timeoutMs, 'wait this long for a reply, e.g. "500ms"'),
    down,
    up: integerIn(problems, doc.up, at('up'), 1, 100, base.up, 'consecutive answered probes that revive a target, e.g. 10'),
    lossPercent: percent(problems, doc.loss, at('loss'), base.lossPercent),
    window: integerIn(problems, doc.window, at('window'), 5, 1000, base.window, 'how many recent probes the loss share is taken over, e.g. 50'),
    latencyMs: duration(problems, doc.latency, at('latency'), 0, 60_000, base.latencyMs, 'replies slower than this count as lost, e.g. "800ms", or 0 to disable'),
    reliability: integerIn(problems, doc.reliability, at('reliability'), 1, 16, base.reliability, 'how many targets must answer, at most the number of targets'),
    holdMs: duration(problems, doc.hold, at('hold'), 0, 86_400_000, base.holdMs, 'minimum time down before failing back, e.g. "10s", or 0'),
  };
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

function verifyProbe(problems: Problems, value: unknown, field: string, health: HealthSettings): UplinkConfig['probe'] {
  if (value !== undefined && value !== null && !isObject(value)) {
    problems.add(field, `must be a mapping, not ${describe(value)}`, 'write it as "probe: { targets: [203.0.113.100] }"');
  }
  const doc = isObject(value) ? value : {};
  unknownKeys(problems, doc, field, ['targets', ...HEALTH_KEYS]);
  const targets = stringList(problems, doc.targets, `${field}.targets`, 'list IPv4 addresses beyond the uplink, e.g. [203.0.113.100]');
  targets.forEach((target, i) => {
    const address = parseIpv4(target);
    if (address === null || !isUnicastHost(address)) {
      problems.add(`${field}.targets[${i}]`, `"${target}" is not a unicast IPv4 address`, 'write an address such as 203.0.113.100');
    } else if (targets.indexOf(target) !== i) {
      problems.add(`${field}.targets[${i}]`, `${target} is listed twice`, 'list each target once');
    }
  });
  const settings = verifyHealth(problems, doc, field, health);
  const count = Math.max(1, targets.length);
  if (settings.reliability > count) {
    problems.add(`${field}.reliability`, `needs ${settings.reliability} targets to answer but ${count === 1 && targets.length === 0 ? 'only the gateway is probed' : `only ${count} are listed`}`, 'list more targets or lower reliability');
  }
  return { targets, ...settings };
}

function verifyUplink(problems: Problems, value: unknown, i: number, health: HealthSettings): UplinkConfig | null {
  const field = `uplinks[${i}]`;
  if (!isObject(value)) {
    problems.add(field, `must be a mapping, not ${describe(value)}`, 'write it as "- { name: isp1, interface: ppp0 }"');
    return null;
  }
  unknownKeys(problems, value, field, ['name', 'interface', 'gateway', 'weight', 'probe', 'ipparam', 'lease', 'public_address']);
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
  const probe = verifyProbe(problems, value.probe, `${field}.probe`, health);
  let ipparam = typeof name === 'string' ? name : '';
  if (value.ipparam !== undefined && value.ipparam !== null) {
    if (typeof value.ipparam !== 'string' || !/^[A-Za-z0-9_.:-]{1,64}$/.test(value.ipparam)) {
      problems.add(`${field}.ipparam`, `${describe(value.ipparam)} is not a usable ipparam`, 'use the text given to pppd\'s "ipparam" option: letters, digits, "_", ".", ":" or "-"');
      ok = false;
    } else {
      ipparam = value.ipparam;
    }
  }
  const lease = value.lease === undefined ? undefined : absolutePath(problems, value.lease, `${field}.lease`, '/var/lib/dhcp/dhclient.leases');
  const publicAddress = verifyPublicAddress(problems, value.public_address, `${field}.public_address`);
  if (!ok) return null;
  return {
    name: name as string,
    interface: iface as string,
    ...(gatewayText ? { gateway: gatewayText } : {}),
    weight: weightValue,
    probe,
    ipparam,
    ...(lease ? { leaseFile: lease } : {}),
    ...(publicAddress ? { publicAddress } : {}),
  };
}

function verifyPublicAddress(problems: Problems, value: unknown, field: string): PublicAddressConfig | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    problems.add(field, `must be a mapping, not ${describe(value)}`, 'write it as "public_address: { url: http://ip.example.test/ }"');
    return undefined;
  }
  unknownKeys(problems, value, field, ['url', 'field', 'every', 'timeout']);
  const url = typeof value.url === 'string' ? parseHttpUrl(value.url) : null;
  if (!url) problems.add(`${field}.url`, value.url === undefined ? 'is missing' : `${describe(value.url)} is not an http:// or https:// URL`, 'give a URL that answers with the address it sees, e.g. http://ip.example.test/');
  if (value.field !== undefined && (typeof value.field !== 'string' || !/^[A-Za-z0-9_.-]{1,64}$/.test(value.field))) {
    problems.add(`${field}.field`, `${describe(value.field)} is not a JSON key`, 'name the key of the JSON answer that holds the address, e.g. ip; leave it out when the body is the address');
  }
  const everyMs = duration(problems, value.every, `${field}.every`, 10_000, 86_400_000, 300_000, 'ask again this often, e.g. "5m"');
  const timeoutMs = duration(problems, value.timeout, `${field}.timeout`, 500, 60_000, 5_000, 'give up on one fetch after this, e.g. "5s"');
  if (!url) return undefined;
  return { url, ...(typeof value.field === 'string' ? { field: value.field } : {}), everyMs, timeoutMs };
}

function parseHttpUrl(text: string): string | null {
  if (text.length > 2000 || /[\s\0]/.test(text)) return null;
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$/;

/** A DNS name in lower case without its final dot, or null. */
function dnsName(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const name = value.toLowerCase().replace(/\.$/, '');
  return DNS_NAME.test(name) ? name : null;
}

function verifyDdns(problems: Problems, doc: Doc, uplinkNames: readonly string[]): DdnsConfig | undefined {
  if (doc.ddns === undefined || doc.ddns === null) return undefined;
  const ddns = section(problems, doc, 'ddns', ['server', 'port', 'zone', 'name', 'key', 'ttl', 'exclude', 'every', 'timeout']);
  if (!isObject(doc.ddns)) return undefined;
  const server = typeof ddns.server === 'string' && (parseIpv4(ddns.server) !== null ? isUnicastHost(parseIpv4(ddns.server) as number) : dnsName(ddns.server) !== null) ? ddns.server : null;
  if (!server) problems.add('ddns.server', ddns.server === undefined ? 'is missing' : `${describe(ddns.server)} is not a host name or unicast IPv4 address`, 'name the primary server that accepts updates for the zone, e.g. ns1.example.test');
  const port = integerIn(problems, ddns.port, 'ddns.port', 1, 65535, 53, 'the server\'s DNS port; 53 is the default');
  const zone = dnsName(ddns.zone);
  if (!zone) problems.add('ddns.zone', ddns.zone === undefined ? 'is missing' : `${describe(ddns.zone)} is not a DNS name`, 'name the dynamic zone, e.g. example.test');
  const name = dnsName(ddns.name);
  if (!name) problems.add('ddns.name', ddns.name === undefined ? 'is missing' : `${describe(ddns.name)} is not a DNS name`, 'name the record to keep, e.g. gw.example.test');
  else if (zone && name !== zone && !name.endsWith(`.${zone}`)) problems.add('ddns.name', `${name} is not inside the zone ${zone}`, `use a name ending in .${zone}, or correct ddns.zone`);
  const keyFile = ddns.key === undefined ? null : absolutePath(problems, ddns.key, 'ddns.key', '/etc/dispatcher/ddns.key');
  if (ddns.key === undefined) problems.add('ddns.key', 'is missing', 'give the TSIG key file the server trusts, e.g. /etc/dispatcher/ddns.key (made by tsig-keygen)');
  const ttl = integerIn(problems, ddns.ttl, 'ddns.ttl', 1, 86_400, 60, 'seconds resolvers may keep the records; short (60) so a dead line\'s address is soon forgotten');
  const exclude = stringList(problems, ddns.exclude, 'ddns.exclude', 'list uplink names, e.g. [isp3]');
  exclude.forEach((uplink, i) => {
    if (!uplinkNames.includes(uplink)) problems.add(`ddns.exclude[${i}]`, `"${uplink}" is not an uplink`, `use one of: ${uplinkNames.join(', ')}`);
  });
  const everyMs = duration(problems, ddns.every, 'ddns.every', 10_000, 86_400_000, 300_000, 'compare with the server this often, e.g. "5m"');
  const timeoutMs = duration(problems, ddns.timeout, 'ddns.timeout', 500, 60_000, 5_000, 'give up on one query or update after this, e.g. "5s"');
  if (!server || !zone || !name || !keyFile) return undefined;
  return { server, port, zone, name, keyFile, ttl, exclude, everyMs, timeoutMs };
}

function verifyUplinks(problems: Problems, doc: Doc, lanInterfaces: readonly string[], lanCidrs: readonly Cidr[], health: HealthSettings): UplinkConfig[] {
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
    const uplink = verifyUplink(problems, item, i, health);
    if (!uplink) return;
    const field = `uplinks[${i}]`;
    const sameIpparam = uplinks.findIndex((u) => u.ipparam === uplink.ipparam);
    if (sameIpparam >= 0) {
      problems.add(`${field}.ipparam`, `"${uplink.ipparam}" already identifies uplinks[${sameIpparam}]`, 'give each ppp uplink its own ipparam');
    }
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

function verifyMetrics(problems: Problems, doc: Doc): Config['metrics'] {
  const metrics = section(problems, doc, 'metrics', ['listen']);
  if (metrics.listen === undefined || metrics.listen === null) return undefined;
  const match = typeof metrics.listen === 'string' ? /^([0-9.]+):([0-9]{1,5})$/.exec(metrics.listen) : null;
  const host = match ? parseIpv4(match[1] as string) : null;
  const port = match ? Number(match[2]) : 0;
  if (!match || host === null || port < 1 || port > 65535) {
    problems.add('metrics.listen', `${describe(metrics.listen)} is not address:port`, 'write e.g. "127.0.0.1:9108" (loopback, or an address only your monitoring reaches)');
    return undefined;
  }
  return { host: match[1] as string, port };
}

function verifyGroups(problems: Problems, doc: Doc): number {
  const groups = section(problems, doc, 'groups', ['base']);
  return integerIn(problems, groups.base, 'groups.base', 1, 0x7fffffff - MAX_UPLINKS, DEFAULTS.groupBase, `pick ${MAX_UPLINKS} group ids no account or package uses, e.g. ${DEFAULTS.groupBase}`);
}

function verifyClients(problems: Problems, doc: Doc): { expireSeconds: number; max: number; perMac: number } {
  const clients = section(problems, doc, 'clients', ['expire', 'max', 'per_mac']);
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
  const perMac = integerIn(problems, clients.per_mac, 'clients.per_mac', 1, 1_000_000, DEFAULTS.clientsPerMac, 'set how many addresses one MAC may have assigned, e.g. 64');
  return { expireSeconds, max, perMac };
}

function verifyDamping(problems: Problems, health: Doc): DampingConfig {
  const value = health.damping;
  if (value === undefined || value === null) return DAMPING_DEFAULTS;
  if (!isObject(value)) {
    problems.add('health.damping', `must be a mapping, not ${describe(value)}`, 'write it as "damping: { half_life: 30s, suppress: 3, reuse: 1 }"');
    return DAMPING_DEFAULTS;
  }
  unknownKeys(problems, value, 'health.damping', ['half_life', 'suppress', 'reuse']);
  const halfLifeMs = duration(problems, value.half_life, 'health.damping.half_life', 1000, 86_400_000, DAMPING_DEFAULTS.halfLifeMs, 'how fast flap penalties fade, e.g. "30s"');
  const number = (key: 'suppress' | 'reuse'): number => {
    const v = value[key];
    if (v === undefined || v === null) return DAMPING_DEFAULTS[key];
    if (typeof v !== 'number' || !(v > 0) || v > 1000) {
      problems.add(`health.damping.${key}`, `${describe(v)} is not a positive number of flaps`, key === 'suppress' ? 'hold a line down from this many recent falls on, e.g. 3' : 'release it once the penalty fades below this, e.g. 1');
      return DAMPING_DEFAULTS[key];
    }
    return v;
  };
  const suppress = number('suppress');
  const reuse = number('reuse');
  if (reuse >= suppress) problems.add('health.damping.reuse', `${reuse} is not below suppress (${suppress})`, 'set reuse lower than suppress, e.g. suppress 3, reuse 1');
  return { halfLifeMs, suppress, reuse };
}

function verifyStaticRoutes(problems: Problems, doc: Doc, uplinkNames: readonly string[]): StaticRoute[] {
  const value = doc.static_routes;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) {
    problems.add('static_routes', `must be a list, not ${describe(value)}`, 'write each route as "- { destination: 203.0.113.64/26, via: [isp2, isp1] }"');
    return [];
  }
  const routes: StaticRoute[] = [];
  value.forEach((item, i) => {
    const field = `static_routes[${i}]`;
    if (!isObject(item)) {
      problems.add(field, `must be a mapping, not ${describe(item)}`, 'write it as "{ destination: 203.0.113.64/26, via: [isp2, isp1] }"');
      return;
    }
    unknownKeys(problems, item, field, ['destination', 'via']);
    const cidr = typeof item.destination === 'string' ? parseCidr(item.destination) : null;
    if (!cidr || cidr.prefix === 0) {
      problems.add(`${field}.destination`, `${describe(item.destination)} is not a network in CIDR form (other than 0.0.0.0/0)`, 'write it like 203.0.113.64/26; the default route is shared by weight');
    } else if (routes.some((r) => r.destination === formatCidr(cidr))) {
      problems.add(`${field}.destination`, `${formatCidr(cidr)} is listed twice`, 'give each destination one entry with all its uplinks in order');
    }
    const via = stringList(problems, item.via, `${field}.via`, 'list uplink names in order of preference');
    if (via.length === 0 && Array.isArray(item.via)) problems.add(`${field}.via`, 'is empty', 'list at least one uplink name');
    if (item.via === undefined) problems.add(`${field}.via`, 'is missing', 'list uplink names in order of preference, e.g. [isp2, isp1]');
    via.forEach((name, j) => {
      if (!uplinkNames.includes(name)) problems.add(`${field}.via[${j}]`, `no uplink is named "${name}"`, `use one of: ${uplinkNames.join(', ')}`);
      else if (via.indexOf(name) !== j) problems.add(`${field}.via[${j}]`, `"${name}" is listed twice`, 'list each uplink once');
    });
    if (cidr && cidr.prefix > 0) routes.push({ destination: formatCidr(cidr), via });
  });
  return routes;
}

const EMAIL = /^[^@\s<>]+@[^@\s<>]+$/;

function verifyEmail(problems: Problems, value: unknown): EmailConfig | undefined {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) {
    problems.add('notify.email', `must be a mapping, not ${describe(value)}`, 'write it as "email: { to: ops@example.test, from: gw@example.test }"');
    return undefined;
  }
  unknownKeys(problems, value, 'notify.email', ['to', 'from', 'smtp', 'every']);
  const to = typeof value.to === 'string' ? [value.to] : stringList(problems, value.to, 'notify.email.to', 'list addresses');
  if (to.length === 0) problems.add('notify.email.to', 'is missing', 'name who gets the mail, e.g. ops@example.test');
  to.forEach((address, i) => {
    if (!EMAIL.test(address)) problems.add(`notify.email.to${typeof value.to === 'string' ? '' : `[${i}]`}`, `"${address}" is not an e-mail address`, 'write it like ops@example.test');
  });
  const from = value.from;
  if (typeof from !== 'string' || !EMAIL.test(from)) problems.add('notify.email.from', `${describe(from)} is not an e-mail address`, 'write the sender like gateway@example.test');
  let smtp: EmailConfig['smtp'];
  if (value.smtp !== undefined && value.smtp !== null) {
    const match = typeof value.smtp === 'string' ? /^([A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(value.smtp) : null;
    if (!match || Number(match[2]) < 1 || Number(match[2]) > 65535) problems.add('notify.email.smtp', `${describe(value.smtp)} is not host:port`, 'write the relay like mail.example.test:25, or leave it out to use the local sendmail');
    else smtp = { host: match[1] as string, port: Number(match[2]) };
  }
  const everyMs = duration(problems, value.every, 'notify.email.every', 0, 86_400_000, 300_000, 'at most one mail per uplink this often, e.g. "5m"');
  return { to, from: typeof from === 'string' ? from : '', ...(smtp ? { smtp } : {}), everyMs };
}

function verifyNotify(problems: Problems, doc: Doc): NotifyConfig {
  const notify = section(problems, doc, 'notify', ['exec', 'timeout', 'email']);
  const exec = stringList(problems, notify.exec, 'notify.exec', 'list absolute paths of programs to run on each change');
  exec.forEach((path, i) => {
    if (!path.startsWith('/') || path.includes('\0') || path.includes('\n')) problems.add(`notify.exec[${i}]`, `"${path.slice(0, 60)}" is not an absolute path`, 'give the full path of an executable, e.g. /usr/local/bin/uplink-changed');
  });
  const timeoutMs = duration(problems, notify.timeout, 'notify.timeout', 100, 3_600_000, 10_000, 'kill a hook still running after this, e.g. "10s"');
  const email = verifyEmail(problems, notify.email);
  return { exec, timeoutMs, ...(email ? { email } : {}) };
}

/** Verifies a parsed YAML document; throws ConfigError listing every problem. */
export function verifyConfig(doc: unknown, options: VerifyOptions = {}, source?: string): Config {
  const problems = new Problems();
  if (!isObject(doc)) {
    problems.add('(top level)', `must be a mapping, not ${describe(doc)}`, 'start from pools/example.yaml');
    throw new ConfigError(problems.list, source);
  }
  unknownKeys(problems, doc, '', ['lan', 'uplinks', 'scan', 'state', 'socket', 'marks', 'tables', 'rules', 'clients', 'health', 'static_routes', 'notify', 'groups', 'ddns', 'metrics']);
  const lan = verifyLan(problems, doc);
  const healthDoc = section(problems, doc, 'health', [...HEALTH_KEYS, 'damping']);
  const health = verifyHealth(problems, healthDoc, 'health', HEALTH_DEFAULTS);
  const damping = verifyDamping(problems, healthDoc);
  const uplinks = verifyUplinks(problems, doc, lan.interfaces, lan.cidrs, health);
  const staticRoutes = verifyStaticRoutes(problems, doc, uplinks.map((u) => u.name));
  const notify = verifyNotify(problems, doc);
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
  const groupBase = verifyGroups(problems, doc);
  const ddns = verifyDdns(problems, doc, uplinks.map((u) => u.name));
  const metrics = verifyMetrics(problems, doc);
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
    groups: { base: groupBase },
    clients,
    damping,
    staticRoutes,
    notify,
    ...(ddns ? { ddns } : {}),
    ...(metrics ? { metrics } : {}),
  };
}

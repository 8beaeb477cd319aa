// The configuration's one definition: the YAML document the operator writes
// (snake_case keys, durations as text, marks in hex), its defaults, and the
// normalised Config the rest of the program reads (camelCase, milliseconds,
// numbers). The types in src/model/config.ts, pools/config.schema.json and the
// check of pools/README.md's tables all come from here. What needs more than
// one section (collisions, names used elsewhere, capacity, the cron syntax)
// is checked by plain functions in src/config/checks.ts.

import { z } from 'zod';
import { MAX_UPLINKS, RANGE_SIZE } from '../core/contract.js';
import { type Cidr, cidrsOverlap, formatCidr, isLoopback, isUnicastHost, parseCidr, parseIpv4 } from '../core/ipv4.js';
import { parseMark } from '../core/marks.js';
import { formatIpv6Network, ipv6PrefixProblem, isMulticast6, isRoutable6, isUnicast6, parseIpv6Network } from '../core/ipv6.js';
import { formatIpv6, parseIpv6 } from '../core/address.js';
import { UPLINK_NAME } from '../core/names.js';
import { type ProbeTargetConfig, targetId } from '../core/probe-targets.js';
import { covers, POLICY_PROTOCOLS, type PolicyMatch, PORTED_PROTOCOLS } from '../core/balance/policy-match.js';
import { absolutePath, describe, duration, fails, heard, interfaceName, list, listText, mapping, noRepeats, percent, say, text, wholeNumber } from './fields.js';
import { DEFAULT_SOCKET, DEFAULT_STATE } from './paths.js';

const TABLE_BASE = 3100;
const RULE_PRIORITY = 4100;
/** High enough to stay clear of the groups of people and packages (Debian hands those out below 60000). */
const GROUP_BASE = 64100;
const MARK_MASK = '0xff000000';
const RESERVED_TABLES = [0, 253, 254, 255];
const MAX_RULE_PRIORITY = 32765; // 32766/32767 are the kernel's main/default rules

const isUnicast = (value: string): boolean => {
  const address = parseIpv4(value);
  return address !== null && isUnicastHost(address);
};
const cidrOf = (value: string): Cidr => parseCidr(value) as Cidr;

/** "198.18.0.1/16": a unicast host address and the prefix length of its network (an interface address as `ip addr` takes it). */
export function hostPrefix(value: string): { address: string; prefix: number } | null {
  const match = /^([0-9.]+)\/([0-9]{1,2})$/.exec(value);
  const prefix = Number(match?.[2]);
  if (!match || !isUnicast(match[1] as string) || prefix < 8 || prefix > 32) return null;
  const address = parseIpv4(match[1] as string) as number;
  const host = prefix >= 31 ? 0 : address & (2 ** (32 - prefix) - 1);
  // Not the network's own address nor its broadcast (a /31 or /32 has neither).
  if (prefix < 31 && (host === 0 || host === 2 ** (32 - prefix) - 1)) return null;
  return { address: match[1] as string, prefix };
}
const addressWithPrefix = (fix: string) =>
  text(
    (value) => hostPrefix(value) !== null,
    (input) => `${describe(input)} is not a host address with its prefix length`,
    fix,
  );

// ---- IPv6 (lan.ipv6 and uplinks[].ipv6)

/** The longest LAN prefix: hosts autoconfigure (SLAAC) only inside a /64. */
const LONGEST_LAN_PREFIX = 64;
const IPV6_MODES = ['off', 'nat', 'prefix'] as const;

/** An IPv6 prefix a LAN or uplink can use, normalised (inet_ntop text, zero host bits). */
const ipv6Prefix = (longest: number, fix: string) =>
  text(
    (value) => ipv6PrefixProblem(value, longest) === null,
    (input) => (typeof input === 'string' ? (ipv6PrefixProblem(input, longest) ?? '') : `${describe(input)} is not an IPv6 network`),
    fix,
  ).transform((value) => formatIpv6Network(parseIpv6Network(value) as NonNullable<ReturnType<typeof parseIpv6Network>>));

const lanIpv6 = mapping(
  {
    mode: z
      .enum(
        IPV6_MODES,
        fails((input) => `${describe(input)} is not an IPv6 mode`, "write off (IPv6 is left alone), nat (the LAN keeps lan.ipv6.prefix, translated to each line's prefix) or prefix"),
      )
      .prefault('off')
      .meta({
        description:
          "off: IPv6 is left alone; nat: the LAN keeps its own prefix, translated per line (NPTv6, or masquerade where a line has no routed prefix); prefix: each line's /64 announced on the LAN (radvd), deprecated while its line is down.",
      }),
    prefix: ipv6Prefix(LONGEST_LAN_PREFIX, "write the LAN's own prefix, e.g. fd00:18::/64 (unique local) or a static global /64")
      .optional()
      .meta({ description: "nat mode: the LAN's own prefix (unique local or a static global one), at most /64." }),
  },
  'write it as "ipv6: { mode: nat, prefix: fd00:18::/64 }"',
).superRefine((doc, ctx) => {
  if (doc.mode === 'nat' && doc.prefix === undefined)
    ctx.addIssue({ code: 'custom', path: ['prefix'], message: say("is missing (nat mode translates the LAN's own prefix)", "give the LAN's prefix, e.g. prefix: fd00:18::/64"), input: undefined });
  if (doc.mode === 'prefix' && doc.prefix !== undefined)
    ctx.addIssue({ code: 'custom', path: ['prefix'], message: say("is nat mode's: prefix mode announces each line's own prefix (uplinks[].ipv6.prefix) on the LAN", 'remove lan.ipv6.prefix, or use mode: nat'), input: doc.prefix });
});

const ipv6Gateway = text(
  (value) => {
    const address = parseIpv6(value);
    return address !== null && isUnicast6(address);
  },
  (input) => {
    const address = typeof input === 'string' ? parseIpv6(input) : null;
    if (address === null) return `${describe(input)} is not an IPv6 address`;
    return isMulticast6(address) ? `${describe(input)} is multicast` : `${describe(input)} is not a unicast address`;
  },
  "write the line's IPv6 next hop, e.g. fe80::1 (its router's link-local address), or leave it out to take it from the router's advertisements",
).transform((value) => formatIpv6(parseIpv6(value) as bigint));

/** An IPv6 probe target: an address beyond the line, asked with ICMPv6 echo. */
const ipv6ProbeTarget = text(
  (value) => {
    const address = parseIpv6(value);
    return address !== null && isRoutable6(address);
  },
  (input) => {
    const address = typeof input === 'string' ? parseIpv6(input) : null;
    return address === null ? `${describe(input)} is not an IPv6 address` : `${describe(input)} is not a global or unique-local unicast address (a probe must go beyond the line's link)`;
  },
  'write an IPv6 address beyond the line, e.g. 2001:db8:ffff::100',
).transform((value) => formatIpv6(parseIpv6(value) as bigint));

const ipv6Probe = mapping(
  {
    targets: list(ipv6ProbeTarget, 'list IPv6 addresses beyond the line, e.g. [2001:db8:ffff::100]', { empty: 'list at least one target, or leave probe out (IPv6 then follows the IPv4 verdict)' }).superRefine(
      noRepeats((target) => `${target} is listed twice`, 'list each target once'),
    ),
  },
  'write it as "probe: { targets: [2001:db8:ffff::100] }"',
);

const uplinkIpv6 = mapping(
  {
    gateway: ipv6Gateway.optional().meta({ description: "Fixed IPv6 next hop (link-local is usual); absent: the uplink's IPv6 default route (from router advertisements)." }),
    probe: ipv6Probe.optional().meta({ description: "IPv6 targets probed through this line (ICMPv6 echo), with the line's health settings: its IPv6 then has its own verdict; absent: IPv6 follows the IPv4 verdict." }),
    prefix: ipv6Prefix(LONGEST_LAN_PREFIX, 'write the prefix your provider routes to you over this line, e.g. 2001:db8:1:100::/64 (nat mode: or leave it out to masquerade)')
      .optional()
      .meta({ description: "The prefix routed to you over this line: nat mode translates the LAN's prefix onto it (NPTv6; absent: IPv6 masquerades to the line's address); prefix mode announces it on the LAN (a global /64)." }),
  },
  'write it as "ipv6: { prefix: 2001:db8:1:100::/64 }"',
).transform((doc) => ({
  /** Fixed IPv6 next hop; null: the uplink's IPv6 default route. */
  gateway: doc.gateway ?? null,
  /** The prefix routed to us over this line (NPTv6 target); null: masquerade. */
  prefix: doc.prefix ?? null,
  /** IPv6 targets probed through the line (its IPv6's own verdict); empty: IPv6 follows the IPv4 verdict. */
  targets: doc.probe?.targets ?? [],
}));

// ---- lan

const lan = mapping(
  {
    interfaces: list(interfaceName('name the interfaces your clients are on, e.g. [lan0]'), 'list interface names, e.g. [lan0]', {
      missing: 'name the interfaces your clients are on, e.g. [lan0]',
      empty: 'name at least one interface your clients are on',
    }).superRefine(noRepeats((name) => `"${name}" is listed twice`, 'list each interface once')),
    subnets: list(
      text(
        (value) => parseCidr(value) !== null,
        (input) => `${describe(input)} is not an IPv4 network in CIDR form with zero host bits`,
        'write it like 198.18.0.0/16',
      ),
      'list networks in CIDR form, e.g. [198.18.0.0/16]',
    )
      .superRefine((texts, ctx) => {
        const kept: Cidr[] = [];
        texts.forEach((value, i) => {
          const cidr = parseCidr(value);
          if (!cidr) return;
          const clash = kept.find((other) => cidrsOverlap(other, cidr));
          if (clash) ctx.addIssue({ code: 'custom', path: [i], message: say(`${value} overlaps ${formatCidr(clash)}`, 'list non-overlapping networks (keep the larger one)'), input: value });
          else kept.push(cidr);
        });
      })
      .optional()
      .meta({ description: 'Only addresses inside these networks become clients; absent: every unicast address.' }),
    ipv6: lanIpv6.prefault({}).meta({ description: "The LAN's IPv6: off, nat (its own prefix translated per line) or prefix (the lines' prefixes announced)." }),
  },
  'write it as "lan: { interfaces: [lan0] }"',
  'add "lan: { interfaces: [lan0] }" naming the interfaces your clients are on',
).transform((doc) => ({
  interfaces: doc.interfaces,
  /** Normalised CIDR text; empty means every unicast address on the LAN interfaces. */
  subnets: (doc.subnets ?? []).map((value) => formatCidr(cidrOf(value))),
  /** IPv6: off (left alone), or nat with the LAN's own prefix (null when off). */
  ipv6: { mode: doc.ipv6.mode, prefix: doc.ipv6.prefix ?? null },
}));

// ---- health: global under `health`, per uplink under `probe`

/** Each health setting; the global section gives them defaults, an uplink's probe overrides them. */
const HEALTH = {
  interval: duration(20, 60_000, 'probe every 20ms to 60s, e.g. "100ms"'),
  standby_interval: duration(20, 60_000, 'probe a standing-by line every 20ms to 60s, e.g. "1s"'),
  timeout: duration(10, 60_000, 'wait this long for a reply, e.g. "500ms"'),
  down: wholeNumber(1, 100, 'consecutive lost probes that make a target dead, e.g. 8'),
  up: wholeNumber(1, 100, 'consecutive answered probes that revive a target, e.g. 10'),
  loss: percent(),
  window: wholeNumber(5, 1000, 'how many recent probes the loss share is taken over, e.g. 50'),
  latency: duration(0, 60_000, 'replies slower than this count as lost, e.g. "800ms", or 0 to disable'),
  reliability: wholeNumber(1, 16, 'how many targets must answer, at most the number of targets'),
  hold: duration(0, 86_400_000, 'minimum time down before failing back, e.g. "10s", or 0'),
};
type HealthDoc = { [K in keyof typeof HEALTH]: z.output<(typeof HEALTH)[K]> };

/**
 * Health defaults: a silently dead line is declared dead after at most
 * down × interval + timeout = 8 × 100 ms + 500 ms = 1.3 s; a line losing 10 %
 * of its packets (19 % of round trips) stays up: eight losses in a row happen
 * with probability 0.19^8 ≈ 2e-6 per probe, and the 50 %-of-50 loss rule sits
 * more than five standard deviations away.
 */
const HEALTH_DEFAULT_INPUT = { interval: '100ms', standby_interval: '1s', timeout: '500ms', down: 8, up: 10, loss: '50%', window: 50, latency: 0, reliability: 1, hold: 0 } as const;

function healthSettings(doc: HealthDoc) {
  return {
    /** Time between probes to each target. */
    intervalMs: doc.interval,
    /** …while the line stands by (a lower tier carries): a metered backup line is not charged for fast probing. */
    standbyIntervalMs: doc.standby_interval,
    /** A reply later than this counts as lost. */
    timeoutMs: doc.timeout,
    /** Consecutive lost probes that make a target dead. */
    down: doc.down,
    /** Consecutive answered probes that make a dead target alive again. */
    up: doc.up,
    /** A target is also dead when more than this share of the last `window` probes was lost. */
    lossPercent: doc.loss,
    window: doc.window,
    /** Replies slower than this count as lost; 0 disables the check. */
    latencyMs: doc.latency,
    /** Targets that must be alive for the uplink to be up (k of n). */
    reliability: doc.reliability,
    /** Minimum time an uplink stays down before failing back. */
    holdMs: doc.hold,
  };
}

const positiveFlaps = (fix: string) => {
  const said = fails((input) => `${describe(input)} is not a positive number of flaps`, fix);
  return z.number(said).gt(0, said).max(1000, said);
};

/** Flap damping: each fall adds 1 to a penalty that halves every half life; penalties halve every 30 s by default, so three falls within about a minute reach 2.5 and hold the line down. */
const damping = mapping(
  {
    half_life: duration(1000, 86_400_000, 'how fast flap penalties fade, e.g. "30s"').prefault('30s'),
    suppress: positiveFlaps('hold a line down from this many recent falls on, e.g. 3').prefault(2.5),
    reuse: positiveFlaps('release it once the penalty fades below this, e.g. 1').prefault(1),
  },
  'write it as "damping: { half_life: 30s, suppress: 3, reuse: 1 }"',
)
  .superRefine((doc, ctx) => {
    const fine = (v: unknown): v is number => typeof v === 'number' && v > 0 && v <= 1000;
    if (fine(doc.suppress) && fine(doc.reuse) && doc.reuse >= doc.suppress) {
      ctx.addIssue({ code: 'custom', path: ['reuse'], message: say(`${doc.reuse} is not below suppress (${doc.suppress})`, 'set reuse lower than suppress, e.g. suppress 3, reuse 1'), input: doc.reuse });
    }
  })
  .transform((doc) => ({
    halfLifeMs: doc.half_life,
    /** At or above this penalty a fallen uplink is held down… */
    suppress: doc.suppress,
    /** …until its penalty has decayed below this. */
    reuse: doc.reuse,
  }));

/** A line that is up but poor: each limit is off when left out. */
const degraded = mapping(
  {
    loss: percent().optional(),
    latency: duration(1, 60_000, 'an average RTT above this makes the line degraded, e.g. "150ms"').optional(),
  },
  'write it as "degraded: { loss: 5%, latency: 150ms }"',
).transform((doc) => ({
  /** Up, but more than this share of its probes lost (over a full window): degraded; 0: not judged. */
  lossPercent: doc.loss ?? 0,
  /** Up, but answering slower than this on average: degraded; 0: not judged. */
  latencyMs: doc.latency ?? 0,
}));

/** The passive signal (core/stall.ts): a line that sent and heard nothing back for `stall` is asked at once by a burst of probes. */
const passive = mapping(
  {
    stall: duration(0, 10_000, 'sent with nothing back for this long asks the targets at once, e.g. "300ms", or 0 to turn it off').prefault('300ms'),
  },
  'write it as "passive: { stall: 300ms }" or "passive: { stall: 0 }" to turn it off',
).transform((doc) => ({
  /** Packets sent and none received for this long: a burst of probes decides at once; 0: off. */
  stallMs: doc.stall,
}));

const health = mapping(
  {
    interval: HEALTH.interval.prefault(HEALTH_DEFAULT_INPUT.interval),
    standby_interval: HEALTH.standby_interval.prefault(HEALTH_DEFAULT_INPUT.standby_interval),
    timeout: HEALTH.timeout.prefault(HEALTH_DEFAULT_INPUT.timeout),
    down: HEALTH.down.prefault(HEALTH_DEFAULT_INPUT.down),
    up: HEALTH.up.prefault(HEALTH_DEFAULT_INPUT.up),
    loss: HEALTH.loss.prefault(HEALTH_DEFAULT_INPUT.loss),
    window: HEALTH.window.prefault(HEALTH_DEFAULT_INPUT.window),
    latency: HEALTH.latency.prefault(HEALTH_DEFAULT_INPUT.latency),
    reliability: HEALTH.reliability.prefault(HEALTH_DEFAULT_INPUT.reliability),
    hold: HEALTH.hold.prefault(HEALTH_DEFAULT_INPUT.hold),
    damping: damping.prefault({}),
    degraded: degraded.prefault({}),
    passive: passive.prefault({}),
  },
  'write it as "health: { … }" or leave it out',
);

// ---- uplinks

const DNS_NAME = /^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$/;

/** A DNS name in lower case without its final dot, or null. */
function dnsName(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const name = value.toLowerCase().replace(/\.$/, '');
  return DNS_NAME.test(name) ? name : null;
}

const dnsNameText = (fix: string) =>
  text(
    (value) => dnsName(value) !== null,
    (input) => `${describe(input)} is not a DNS name`,
    fix,
  ).transform((value) => dnsName(value) as string);

const PROBE_TARGET_FIX = 'write an address (ICMP echo), or { method: tcp, address: 203.0.113.101, port: 443 }, { method: http, url: "http://203.0.113.102/health" } or { method: dns, server: 203.0.113.53, query: example.test }';
const probeAddress = (fix: string) => text(isUnicast, (input) => `${describe(input)} is not a unicast IPv4 address`, fix);

/**
 * What is wrong with a target neither form accepts: the problems of the form it was written in (text: an
 * address; a mapping: its method's keys), each at its own key; else that it is no target at all.
 */
function probeTargetProblem(issue: { readonly input?: unknown; readonly errors?: readonly (readonly z.core.$ZodIssue[])[] }): string {
  const form = typeof issue.input === 'string' ? 0 : typeof issue.input === 'object' && issue.input !== null && !Array.isArray(issue.input) ? 1 : null;
  const said = (form === null ? [] : (issue.errors?.[form] ?? [])).flatMap((inner) =>
    (heard(inner.message) ?? []).map((s) => {
      const key = [...inner.path.map(String), ...(s.key === undefined ? [] : [s.key])].join('.');
      return key === '' ? { problem: s.problem, fix: s.fix } : { key, problem: s.problem, fix: s.fix };
    }),
  );
  if (said.length > 0) return JSON.stringify(said);
  if (issue.input === undefined) return say('is missing', PROBE_TARGET_FIX);
  return say(`${describe(issue.input)} is not a probe target (a method must be icmp, tcp, http, https or dns)`, PROBE_TARGET_FIX);
}

/** One probe target: a plain address is pinged; a mapping names its method. */
const probeTargetEntry = z
  .union(
    [
      probeAddress('write an address such as 203.0.113.100').transform((address) => ({ method: 'icmp' as const, address })),
      z.discriminatedUnion('method', [
        mapping({ method: z.literal('icmp'), address: probeAddress('write an address such as 203.0.113.100') }, 'write it as "{ method: icmp, address: 203.0.113.100 }"'),
        mapping(
          { method: z.literal('tcp'), address: probeAddress('write an address such as 203.0.113.101'), port: wholeNumber(1, 65535, 'give the port a connection is opened to, e.g. 443') },
          'write it as "{ method: tcp, address: 203.0.113.101, port: 443 }"',
        ),
        mapping(
          {
            method: z.enum(['http', 'https']),
            url: text(
              (value) => httpUrl(value) !== null,
              (input) => `${describe(input)} is not an http:// or https:// URL with an IPv4 address or name`,
              'give the URL to fetch, e.g. http://203.0.113.102/health',
            ),
            expect: wholeNumber(100, 599, 'give the HTTP status that counts as answered, e.g. 200, or leave it out for any 2xx').optional(),
            contains: text(/^.{1,200}$/, (input) => `${describe(input)} is not text of 1 to 200 characters`, 'give text the body must contain, or leave it out').optional(),
            insecure: z.boolean(fails((input) => `must be true or false, not ${describe(input)}`, 'true accepts a self-signed certificate (https only)')).prefault(false),
          },
          'write it as "{ method: http, url: http://203.0.113.102/health, expect: 200 }"',
        ),
        mapping(
          {
            method: z.literal('dns'),
            server: probeAddress('give the address of a DNS server that answers through this uplink, e.g. 203.0.113.53'),
            query: dnsNameText('give a name the server must resolve, e.g. example.test'),
            type: z
              .enum(
                ['A', 'AAAA', 'NS', 'SOA', 'MX', 'TXT', 'CNAME'],
                fails((input) => `${describe(input)} is not a record type the probe asks for`, 'use A, AAAA, NS, SOA, MX, TXT or CNAME, or leave it out (A)'),
              )
              .prefault('A'),
          },
          'write it as "{ method: dns, server: 203.0.113.53, query: example.test }"',
        ),
      ]),
    ],
    { error: probeTargetProblem },
  )
  .transform((entry, ctx): ProbeTargetConfig => {
    if (!('url' in entry)) return entry;
    const url = httpUrl(entry.url) as string;
    if (!url.startsWith(`${entry.method}:`))
      ctx.addIssue({ code: 'custom', path: ['url'], message: say(`${url} does not start with ${entry.method}://`, `use an ${entry.method}:// URL, or method: ${url.split(':')[0]}`), input: entry.url });
    return { method: 'http', url, expect: entry.expect ?? null, ...(entry.contains !== undefined ? { contains: entry.contains } : {}), insecure: entry.insecure };
  });

const probe = mapping(
  {
    targets: list(probeTargetEntry, 'list targets beyond the uplink, e.g. [203.0.113.100, { method: tcp, address: 203.0.113.101, port: 443 }]')
      .superRefine(noRepeats((target) => `${targetId(target)} is listed twice`, 'list each target once', targetId))
      .optional()
      .meta({ description: 'Targets probed through this uplink (addresses for ICMP echo, or tcp/http/dns mappings); absent: its gateway.' }),
    interval: HEALTH.interval.optional(),
    standby_interval: HEALTH.standby_interval.optional(),
    timeout: HEALTH.timeout.optional(),
    down: HEALTH.down.optional(),
    up: HEALTH.up.optional(),
    loss: HEALTH.loss.optional(),
    window: HEALTH.window.optional(),
    latency: HEALTH.latency.optional(),
    reliability: HEALTH.reliability.optional(),
    hold: HEALTH.hold.optional(),
  },
  'write it as "probe: { targets: [203.0.113.100] }"',
);

function httpUrl(value: string): string | null {
  if (value.length > 2000 || /[\s\0]/.test(value)) return null;
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:' ? url.href : null;
  } catch {
    return null;
  }
}

/** An "what is my address" URL, fetched through the uplink itself. */
const publicAddress = mapping(
  {
    url: text(
      (value) => httpUrl(value) !== null,
      (input) => `${describe(input)} is not an http:// or https:// URL`,
      'give a URL that answers with the address it sees, e.g. http://ip.example.test/',
    ).transform((value) => httpUrl(value) as string),
    field: text(/^[A-Za-z0-9_.-]{1,64}$/, (input) => `${describe(input)} is not a JSON key`, 'name the key of the JSON answer that holds the address, e.g. ip; leave it out when the body is the address').optional(),
    every: duration(10_000, 86_400_000, 'ask again this often, e.g. "5m"').prefault('5m'),
    timeout: duration(500, 60_000, 'give up on one fetch after this, e.g. "5s"').prefault('5s'),
  },
  'write it as "public_address: { url: http://ip.example.test/ }"',
).transform((doc) => ({
  /** http:// or https:// URL whose body is the address… */
  url: doc.url,
  /** …or whose JSON body holds it under this key. */
  ...(doc.field !== undefined ? { field: doc.field } : {}),
  /** Fetched again this often (and whenever the uplink comes up or its address changes). */
  everyMs: doc.every,
  /** A fetch still running after this is abandoned. */
  timeoutMs: doc.timeout,
}));

/** Tiers of lines: 1 (main) to MAX_TIER. */
const MAX_TIER = 4;
const FAILBACKS = ['keep', 'move'] as const;

/**
 * A program and its arguments, run without a shell (ha_connect, ha_disconnect):
 * the program by its absolute path, each argument as written.
 */
function commandLine(fix: string) {
  return list(
    text(/^[^\0\n]+$/, (input) => `${describe(input)} is not a usable argument`, fix),
    fix,
    { empty: fix },
  ).refine((argv) => argv[0]?.startsWith('/') === true, {
    error: (issue) => say(`starts with ${describe((issue.input as string[])[0])}, not an absolute path`, fix),
  });
}

export const uplinkSchema = mapping(
  {
    name: text(UPLINK_NAME, (input) => `${describe(input)} is not a valid name`, 'start with a letter; use letters, digits, "_" or "-", at most 32', 'give the uplink a stable name such as isp1'),
    interface: interfaceName('name the interface the uplink uses, e.g. ppp0'),
    gateway: text(isUnicast, (input) => `${describe(input)} is not a unicast IPv4 address`, 'write the next hop such as 198.51.100.1, or leave it out to discover it')
      .optional()
      .meta({ description: 'Fixed next hop; absent: discovered (ppp peer, current routes, DHCP lease).' }),
    weight: wholeNumber(1, 256, 'use a positive integer (it is also the multipath route weight); 1 is the default').prefault(1),
    tier: wholeNumber(1, MAX_TIER, `use 1 (the default) for main lines, 2 for a backup line, up to ${MAX_TIER}`)
      .prefault(1)
      .meta({ description: 'A line of a higher tier carries nothing while a line of a lower tier is up (backup, metered lines).' }),
    failback: z
      .enum(
        FAILBACKS,
        fails((input) => `${describe(input)} is not a failback policy`, 'write keep (connections on the line finish there) or move (they are forgotten when a lower tier is back)'),
      )
      .prefault('keep')
      .meta({ description: 'When a lower tier comes back and this line stops carrying: keep its connections until they end, or move them at once.' }),
    probe: probe.prefault({}),
    ipparam: text(/^[A-Za-z0-9_.:-]{1,64}$/, (input) => `${describe(input)} is not a usable ipparam`, 'use the text given to pppd\'s "ipparam" option: letters, digits, "_", ".", ":" or "-"')
      .optional()
      .meta({ description: "pppd's ipparam that identifies this uplink in ip-up/ip-down hooks; absent: its name." }),
    lease: absolutePath('/var/lib/dhcp/dhclient.leases').optional(),
    public_address: publicAddress.optional(),
    ipv6: uplinkIpv6.optional().meta({ description: "The line's IPv6 (lan.ipv6.mode nat or prefix): its next hop and the prefix routed to you; absent: discovered next hop, masquerade (nat), no prefix announced (prefix)." }),
    ha_address: addressWithPrefix("write the line's address both gateways of a pair share, with its prefix, e.g. 198.51.100.10/26")
      .optional()
      .meta({ description: 'With ha: the address on this line the master holds (keepalived moves it); its connections are translated to it, so they survive a takeover.' }),
    ha_connect: commandLine('write the program and its arguments as a list, the program by its full path, e.g. [/usr/bin/pon, dsl-provider]')
      .optional()
      .meta({ description: "With ha: the line's session is the master's alone (PPPoE, a provider that leases one address): the command that brings it up, run when this gateway becomes master." }),
    ha_disconnect: commandLine('write the program and its arguments as a list, the program by its full path, e.g. [/usr/bin/poff, dsl-provider]')
      .optional()
      .meta({ description: 'With ha_connect: the command that takes the session down, run when this gateway stops being master (backup, fault).' }),
  },
  'write it as "- { name: isp1, interface: ppp0 }"',
).transform((doc) => ({
  /** Stable identity used by the CLI, JSON output and the store. */
  name: doc.name,
  interface: doc.interface,
  /** Fixed next hop; absent when it is discovered (ppp peer, current routes). */
  ...(doc.gateway !== undefined ? { gateway: doc.gateway } : {}),
  weight: doc.weight,
  /** Lines of the lowest tier with a live line carry everything; higher tiers stand by. */
  tier: doc.tier,
  /** keep: connections on the line finish there when it stops carrying; move: they are forgotten at once. */
  failback: doc.failback,
  /** Per-uplink health overrides (merged with the global health settings by the whole config). */
  probe: doc.probe,
  /** pppd's ipparam that identifies this uplink in ip-up/ip-down hooks (default: its name). */
  ipparam: doc.ipparam ?? doc.name,
  /** A dhclient lease file to discover the gateway from (default: the usual Debian paths). */
  ...(doc.lease !== undefined ? { leaseFile: doc.lease } : {}),
  /** Where to learn the uplink's public address when another NAT sits in front of it. */
  ...(doc.public_address !== undefined ? { publicAddress: doc.public_address } : {}),
  /** Its IPv6 next hop and routed prefix, as written (lan.ipv6.mode nat). */
  ...(doc.ipv6 !== undefined ? { ipv6: doc.ipv6 } : {}),
  /** In a pair: the line's shared address, held by the master, the one its connections are translated to. */
  ...(doc.ha_address !== undefined ? { haAddress: hostPrefix(doc.ha_address) as { address: string; prefix: number } } : {}),
  /** In a pair: a line only the master holds (its session), the commands that connect and disconnect it. */
  ...(doc.ha_connect !== undefined || doc.ha_disconnect !== undefined ? { haSession: { connect: doc.ha_connect ?? null, disconnect: doc.ha_disconnect ?? null } } : {}),
}));

const uplinks = z
  .array(
    uplinkSchema,
    fails((input) => `must be a list, not ${describe(input)}`, 'write each uplink as a "- name: …" item', 'list at least one uplink: "uplinks: [{ name: isp1, interface: ppp0 }]"'),
  )
  .min(1, { error: () => say('is empty', 'list at least one uplink') })
  .max(MAX_UPLINKS, { error: (issue) => say(`has ${(issue.input as unknown[]).length} entries`, `at most ${MAX_UPLINKS} uplinks are supported`) });

// ---- static routes

const destination = (value: string): Cidr | null => {
  const cidr = parseCidr(value);
  return cidr && cidr.prefix > 0 ? cidr : null;
};

export const staticRouteSchema = mapping(
  {
    destination: text(
      (value) => destination(value) !== null,
      (input) => `${describe(input)} is not a network in CIDR form (other than 0.0.0.0/0)`,
      'write it like 203.0.113.64/26; the default route is shared by weight',
    ).transform((value) => formatCidr(destination(value) as Cidr)),
    /** Uplink names in order of preference: the first live one carries the route. */
    via: list(listText('list uplink names in order of preference'), 'list uplink names in order of preference', {
      missing: 'list uplink names in order of preference, e.g. [isp2, isp1]',
      empty: 'list at least one uplink name',
    }).superRefine(noRepeats((name) => `"${name}" is listed twice`, 'list each uplink once')),
  },
  'write it as "{ destination: 203.0.113.64/26, via: [isp2, isp1] }"',
);

const staticRoutes = z
  .array(
    staticRouteSchema,
    fails((input) => `must be a list, not ${describe(input)}`, 'write each route as "- { destination: 203.0.113.64/26, via: [isp2, isp1] }"'),
  )
  .superRefine((routes, ctx) => {
    const seen = new Set<string>();
    routes.forEach((route, i) => {
      const cidr = typeof route?.destination === 'string' ? destination(route.destination) : null;
      if (!cidr) return;
      const key = formatCidr(cidr);
      if (seen.has(key)) ctx.addIssue({ code: 'custom', path: [i, 'destination'], message: say(`${key} is listed twice`, 'give each destination one entry with all its uplinks in order'), input: route.destination });
      seen.add(key);
    });
  });

// ---- policies

const BALANCE_MODES = ['host', 'destination', 'connection'] as const;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i;
/** iptables' multiport match takes 15 ports, a range counting as two: one limit for both backends keeps a config portable. */
const PORT_SLOTS = 15;
const SOURCE_FIX = 'list addresses, networks or MAC addresses, e.g. [198.18.5.0/24, 02:00:00:00:00:01]';
const DESTINATION_FIX = 'list addresses or networks, e.g. [203.0.113.0/24]; leave destination out to match every destination';

/** Each entry once, in the order written (a repeat would make a set differ from its list on every run). */
const unique = (items: readonly string[]): string[] => [...new Set(items)];

const policyPort = z
  .union(
    [z.number().int().min(1).max(65535), z.string().regex(/^[0-9]{1,5}-[0-9]{1,5}$/)],
    fails((input) => `${describe(input)} is not a port or a range of ports`, 'write a port such as 443 or a range such as "8000-8080"'),
  )
  .transform((value, ctx) => {
    const [from, to] = typeof value === 'number' ? [value, value] : value.split('-').map(Number);
    if (!(from !== undefined && to !== undefined && from >= 1 && (from < to || typeof value === 'number') && to <= 65535)) {
      ctx.issues.push({ code: 'custom', message: say(`${describe(value)} is not a range of ports`, 'write the lower port first, both from 1 to 65535, e.g. "8000-8080"'), input: value });
      return z.NEVER;
    }
    return { from, to };
  });

const policyMatch = mapping(
  {
    source: list(
      text(
        (value) => MAC.test(value) || destination(value) !== null,
        (input) => `${describe(input)} is not an address, a network or a MAC address`,
        SOURCE_FIX,
      ),
      SOURCE_FIX,
      { empty: SOURCE_FIX },
    ).optional(),
    destination: list(
      text(
        (value) => destination(value) !== null,
        (input) => `${describe(input)} is not an address or a network (other than 0.0.0.0/0)`,
        DESTINATION_FIX,
      ),
      DESTINATION_FIX,
      { empty: DESTINATION_FIX },
    ).optional(),
    protocol: z
      .enum(
        POLICY_PROTOCOLS,
        fails((input) => `${describe(input)} is not a protocol a policy matches`, `write one of ${POLICY_PROTOCOLS.join(', ')}`),
      )
      .optional(),
    port: list(policyPort, 'list ports or ranges, e.g. [443, "8000-8080"]', { empty: 'list at least one port, or leave port out' }).optional(),
    dscp: list(wholeNumber(0, 63, 'write DSCP values from 0 to 63, e.g. 46 (EF, voice)'), 'list DSCP values, e.g. [46]', { empty: 'list at least one DSCP value, or leave dscp out' }).optional(),
  },
  'write it as "match: { destination: [203.0.113.0/24], protocol: tcp, port: [443] }"',
)
  .superRefine((doc, ctx) => {
    if (doc.port === undefined) return;
    if (doc.protocol !== undefined && !PORTED_PROTOCOLS.includes(doc.protocol)) {
      ctx.addIssue({ code: 'custom', path: ['port'], message: say(`${doc.protocol} has no ports`, `match ports with ${PORTED_PROTOCOLS.join(', ')}, or leave protocol out (tcp and udp)`), input: doc.port });
    }
    const slots = doc.port.reduce((n, r) => n + (r.from === r.to ? 1 : 2), 0);
    if (slots > PORT_SLOTS) {
      ctx.addIssue({
        code: 'custom',
        path: ['port'],
        message: say(`takes ${slots} port slots (a range takes two)`, `list at most ${PORT_SLOTS} slots in one policy; split the ports over two policies with the same action`),
        input: doc.port,
      });
    }
  })
  .transform(
    (doc): PolicyMatch => ({
      sources: unique((doc.source ?? []).filter((s) => !MAC.test(s)).map((s) => formatCidr(destination(s) as Cidr))),
      macs: unique((doc.source ?? []).filter((s) => MAC.test(s)).map((s) => s.toLowerCase())),
      destinations: unique((doc.destination ?? []).map((s) => formatCidr(destination(s) as Cidr))),
      // Ports without a protocol: tcp and udp, the two that carry almost every service.
      protocols: doc.protocol !== undefined ? [doc.protocol] : doc.port !== undefined ? ['tcp', 'udp'] : [],
      ports: doc.port ?? [],
      dscp: doc.dscp ?? [],
    }),
  );

const VIA_FIX = 'list uplink names in order of preference, e.g. [isp2, isp1]';
/** A policy's `via`: read on its own by the config check too (names, how many pools the lists take). */
export const policyVia = list(listText(VIA_FIX), VIA_FIX, { empty: 'list at least one uplink name' }).superRefine(noRepeats((name) => `"${name}" is listed twice`, 'list each uplink once'));
const policySchema = mapping(
  {
    name: text(UPLINK_NAME, (input) => `${describe(input)} is not a valid name`, 'start with a letter; use letters, digits, "_" or "-", at most 32').optional(),
    match: policyMatch,
    via: policyVia.optional(),
    balance: z
      .enum(
        BALANCE_MODES,
        fails((input) => `${describe(input)} is not a balancing mode`, 'write host, destination or connection'),
      )
      .optional(),
  },
  'write it as "- { match: { destination: [203.0.113.0/24] }, via: [isp2, isp1] }"',
)
  .superRefine((doc, ctx) => {
    if ((doc.via === undefined) === (doc.balance === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: [],
        message: say(doc.via === undefined ? 'says neither via nor balance' : 'says both via and balance', 'give a policy one action: via: [lines in order] or balance: host | destination | connection'),
        input: doc,
      });
    }
  })
  .transform((doc) => ({
    ...(doc.name !== undefined ? { name: doc.name } : {}),
    match: doc.match,
    /** via: the first live line of the list; balance: the mode that spreads these connections. */
    action: doc.via !== undefined ? { kind: 'via' as const, via: doc.via } : { kind: 'balance' as const, mode: doc.balance ?? 'host' },
  }));

const policies = z
  .array(
    policySchema,
    fails((input) => `must be a list, not ${describe(input)}`, 'write each policy as "- { match: { … }, via: [isp2, isp1] }"'),
  )
  .superRefine((list, ctx) => {
    const names = new Map<string, number>();
    list.forEach((policy, i) => {
      if (policy?.name === undefined) return;
      const earlier = names.get(policy.name);
      if (earlier !== undefined) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: say(`"${policy.name}" already names policies[${earlier}]`, 'give each policy its own name'), input: policy.name });
      else names.set(policy.name, i);
    });
    // First match wins: a policy whose every packet an earlier one already takes would never match.
    // zod runs this even when some policy failed its own checks: only matches that parsed are compared.
    const parsed = (policy: (typeof list)[number] | undefined): PolicyMatch | null => {
      const match = policy?.match as Partial<Record<keyof PolicyMatch, unknown>> | undefined;
      const shaped = match !== undefined && (['sources', 'macs', 'destinations', 'protocols', 'ports', 'dscp'] as const).every((key) => Array.isArray(match[key]));
      return shaped ? (match as PolicyMatch) : null;
    };
    list.forEach((policy, i) => {
      const later = parsed(policy);
      const earlier = later === null ? -1 : list.findIndex((e, j) => j < i && parsed(e) !== null && covers(parsed(e) as PolicyMatch, later));
      if (earlier >= 0) {
        ctx.addIssue({
          code: 'custom',
          path: [i, 'match'],
          message: say(`can never match: policies[${earlier}] comes first and takes all of its connections`, `put it before policies[${earlier}], narrow policies[${earlier}], or remove it`),
          input: policy?.match,
        });
      }
    });
  })
  .transform((list) => list.map((policy, i) => ({ ...policy, name: policy.name ?? String(i + 1) })));

// ---- notify

const EMAIL = /^[^@\s<>]+@[^@\s<>]+$/;
const emailAddress = (fix: string) => {
  // A missing sender is shown as "nothing is not an e-mail address": the fix is the same.
  const said = { error: (issue: { input?: unknown }) => say(`${describe(issue.input)} is not an e-mail address`, fix) };
  return z.string(said).regex(EMAIL, said);
};

const email = mapping(
  {
    to: z.union(
      [emailAddress('write it like ops@example.test'), list(emailAddress('write it like ops@example.test'), 'list addresses', { empty: 'name who gets the mail, e.g. ops@example.test' })],
      fails((input) => `${describe(input)} is not an e-mail address or a list of them`, 'name who gets the mail, e.g. ops@example.test'),
    ),
    from: emailAddress('write the sender like gateway@example.test'),
    smtp: text(
      (value) => {
        const match = /^([A-Za-z0-9.-]+):([0-9]{1,5})$/.exec(value);
        return match !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65535;
      },
      (input) => `${describe(input)} is not host:port`,
      'write the relay like mail.example.test:25, or leave it out to use the local sendmail',
    )
      .optional()
      .meta({ description: 'host:port of an SMTP relay; absent: the local sendmail.' }),
    every: duration(0, 86_400_000, 'at most one mail per uplink this often, e.g. "5m"').prefault('5m'),
  },
  'write it as "email: { to: ops@example.test, from: gw@example.test }"',
).transform((doc) => ({
  to: typeof doc.to === 'string' ? [doc.to] : doc.to,
  from: doc.from,
  /** SMTP relay; absent means the local sendmail. */
  ...(doc.smtp !== undefined ? { smtp: { host: doc.smtp.replace(/:[0-9]+$/, ''), port: Number(doc.smtp.replace(/^.*:/, '')) } } : {}),
  /** At most one mail per uplink this often; later changes are summed up in the next one. */
  everyMs: doc.every,
}));

const notify = mapping(
  {
    exec: list(
      text(
        /^\/[^\0\n]*$/,
        (input) => (typeof input === 'string' ? `"${input.slice(0, 60)}" is not an absolute path` : `must be text, not ${describe(input)}`),
        'give the full path of an executable, e.g. /usr/local/bin/uplink-changed',
      ),
      'list absolute paths of programs to run on each change',
    ).prefault([]),
    timeout: duration(100, 3_600_000, 'kill a hook still running after this, e.g. "10s"').prefault('10s'),
    email: email.optional(),
  },
  'write it as "notify: { … }" or leave it out',
).transform((doc) => ({
  /** Programs run on every state change, with the change in their environment. */
  exec: doc.exec,
  /** A hook program still running after this is killed. */
  timeoutMs: doc.timeout,
  ...(doc.email !== undefined ? { email: doc.email } : {}),
}));

// ---- dynamic DNS

/** Dynamic DNS (RFC 2136 with TSIG, sent by nsupdate): one A record per live uplink. */
const ddns = mapping(
  {
    server: text(
      (value) => (parseIpv4(value) !== null ? isUnicast(value) : dnsName(value) !== null),
      (input) => `${describe(input)} is not a host name or unicast IPv4 address`,
      'name the primary server that accepts updates for the zone, e.g. ns1.example.test',
    ),
    port: wholeNumber(1, 65535, "the server's DNS port; 53 is the default").prefault(53),
    zone: dnsNameText('name the dynamic zone, e.g. example.test'),
    name: dnsNameText('name the record to keep, e.g. gw.example.test'),
    key: absolutePath('/etc/dispatcher/ddns.key', 'give the TSIG key file the server trusts, e.g. /etc/dispatcher/ddns.key (made by tsig-keygen)'),
    ttl: wholeNumber(1, 86_400, "seconds resolvers may keep the records; short (60) so a dead line's address is soon forgotten").prefault(60),
    exclude: list(listText('list uplink names, e.g. [isp3]'), 'list uplink names, e.g. [isp3]').prefault([]),
    every: duration(10_000, 86_400_000, 'compare with the server this often, e.g. "5m"').prefault('5m'),
    timeout: duration(500, 60_000, 'give up on one query or update after this, e.g. "5s"').prefault('5s'),
  },
  'write it as "ddns: { … }" or leave it out',
)
  .superRefine((doc, ctx) => {
    const zone = dnsName(doc.zone);
    const name = dnsName(doc.name);
    if (zone && name && name !== zone && !name.endsWith(`.${zone}`)) {
      ctx.addIssue({ code: 'custom', path: ['name'], message: say(`${name} is not inside the zone ${zone}`, `use a name ending in .${zone}, or correct ddns.zone`), input: doc.name });
    }
  })
  .transform((doc) => ({
    /** Name or address of the primary server that accepts updates. */
    server: doc.server,
    port: doc.port,
    zone: doc.zone,
    /** The name whose A records are kept equal to the live uplinks' public addresses. */
    name: doc.name,
    /** TSIG key file as BIND writes it (tsig-keygen, ddns-confgen). */
    keyFile: doc.key,
    ttl: doc.ttl,
    /** Uplinks whose address is never published. */
    exclude: doc.exclude,
    /** The server's records are compared with ours this often even when nothing changed here. */
    everyMs: doc.every,
    /** One query or update still unanswered after this has failed. */
    timeoutMs: doc.timeout,
  }));

// ---- what the dispatcher owns, and the rest

const maskSaid = fails((input) => `${describe(input)} is not a non-zero 32-bit mask`, 'write it in hex, e.g. "0xff000000"');
const marks = mapping(
  {
    mask: z
      .union([z.string(maskSaid).regex(/^(0[xX][0-9a-fA-F]{1,8}|[0-9]{1,10})$/, maskSaid), z.number(maskSaid).int(maskSaid).min(1, maskSaid).max(0xffffffff, maskSaid)], maskSaid)
      .transform((value, ctx) => {
        const mask = typeof value === 'number' ? value : parseMark(value);
        if (mask === null || mask === 0) {
          ctx.issues.push({ code: 'custom', message: say(`${describe(value)} is not a non-zero 32-bit mask`, 'write it in hex, e.g. "0xff000000"'), input: value });
          return z.NEVER;
        }
        return mask;
      })
      .prefault(MARK_MASK),
  },
  'write it as "marks: { … }" or leave it out',
);

const tables = mapping(
  {
    base: wholeNumber(1, 0x7fffffff - RANGE_SIZE, `pick a free block of ${RANGE_SIZE} table ids, e.g. ${TABLE_BASE}`)
      .refine((base) => !RESERVED_TABLES.some((t) => t >= base && t < base + RANGE_SIZE), {
        error: (issue) => {
          const base = issue.input as number;
          const reserved = RESERVED_TABLES.find((t) => t >= base && t < base + RANGE_SIZE);
          return say(`the block ${base}–${base + RANGE_SIZE - 1} contains the kernel's reserved table ${reserved}`, `use a base of 256 or more, e.g. ${TABLE_BASE}`);
        },
      })
      .prefault(TABLE_BASE),
  },
  'write it as "tables: { … }" or leave it out',
);

const rules = mapping(
  { priority: wholeNumber(1, MAX_RULE_PRIORITY - RANGE_SIZE + 1, `pick a free block of ${RANGE_SIZE} priorities below 32766, e.g. ${RULE_PRIORITY}`).prefault(RULE_PRIORITY) },
  'write it as "rules: { … }" or leave it out',
);

const groups = mapping({ base: wholeNumber(1, 0x7fffffff - MAX_UPLINKS, `pick ${MAX_UPLINKS} group ids no account or package uses, e.g. ${GROUP_BASE}`).prefault(GROUP_BASE) }, 'write it as "groups: { … }" or leave it out');

const clients = mapping(
  {
    expire: duration(0, Number.MAX_SAFE_INTEGER, 'write e.g. "7d", "12h", or 0 to keep assignments forever', {
      problem: (input) => `${describe(input)} is not a duration of a minute or more`,
      valid: (ms) => ms === 0 || ms >= 60_000,
    }).prefault('7d'),
    max: wholeNumber(1, 1_000_000, 'set the most clients the gateway should assign, e.g. 65536').prefault(65536),
    /** A router or proxy-ARP host behind one MAC gets this many; a host answering for a whole subnet gets no more. */
    per_mac: wholeNumber(1, 1_000_000, 'set how many addresses one MAC may have assigned, e.g. 64').prefault(64),
  },
  'write it as "clients: { … }" or leave it out',
).transform((doc) => ({
  /** Seconds a client may be absent from the neighbour table before its assignment is dropped; 0 keeps it forever. */
  expireSeconds: Math.round(doc.expire / 1000),
  /** Upper bound on assigned clients; also the ipset's maxelem. */
  max: doc.max,
  /** Upper bound on addresses assigned for one MAC (a host claiming a whole subnet fills no pool). */
  perMac: doc.per_mac,
}));

// ---- balance

const ASSIGNS = ['count', 'traffic'] as const;
const balance = mapping(
  {
    mode: z
      .enum(
        BALANCE_MODES,
        fails((input) => `${describe(input)} is not a balancing mode`, "write host (each client leaves by its pool's line), destination (each client–destination pair by one line) or connection (each connection by its own line)"),
      )
      .prefault('host')
      .meta({ description: 'How traffic is spread over the lines: per client (host), per client and destination address, or per connection.' }),
    assign: z
      .enum(
        ASSIGNS,
        fails((input) => `${describe(input)} is not an assignment measure`, 'write count (new clients join the line with the fewest clients ÷ weight) or traffic (the least bytes per second over the last minute ÷ weight)'),
      )
      .prefault('count')
      .meta({ description: 'What "least loaded" means when a new client joins a pool: clients ÷ weight, or measured traffic ÷ weight.' }),
    // The cron syntax itself is checked by src/config/checks.ts, as scan.schedule's.
    rebalance: z
      .string(fails((input) => `${describe(input)} is not text`, 'write a cron expression, e.g. "0 */15 * * * *" (every 15 minutes), or leave it out'))
      .optional()
      .meta({ description: 'When to run `dispatcher rebalance` by itself (a cron expression); absent: only when asked.' }),
  },
  'write it as "balance: { mode: destination }" or leave it out',
).superRefine((doc, ctx) => {
  // The pool counters count a client's bytes under its own pool; in the hashing modes its connections do not follow it.
  if (doc.assign === 'traffic' && doc.mode !== 'host') {
    ctx.addIssue({
      code: 'custom',
      path: ['assign'],
      message: say(`traffic weighs clients by their pools' bytes, but in ${doc.mode} mode a client's connections are spread by a hash, not by its pool`, 'use assign: count with this mode, or mode: host with assign: traffic'),
      input: doc.assign,
    });
  }
});

const scan = mapping(
  {
    // The cron syntax itself is checked by src/config/checks.ts with the cron package (injected: this stays pure).
    schedule: z.string(fails((input) => `${describe(input)} is not text`, 'write a cron expression with an optional seconds field, e.g. "*/30 * * * * *"')).prefault('*/30 * * * * *'),
  },
  'write it as "scan: { … }" or leave it out',
);

/** An IPv4 address and a port the daemon listens on (an HTTP endpoint of its own). */
function listenAddress(fix: string) {
  return text(
    (value) => {
      const match = /^([0-9.]+):([0-9]{1,5})$/.exec(value);
      return match !== null && parseIpv4(match[1] as string) !== null && Number(match[2]) >= 1 && Number(match[2]) <= 65535;
    },
    (input) => `${describe(input)} is not address:port`,
    fix,
  );
}

const metrics = mapping(
  {
    listen: listenAddress('write e.g. "127.0.0.1:9108" (loopback, or an address only your monitoring reaches)').optional(),
  },
  'write it as "metrics: { … }" or leave it out',
);

const web = mapping(
  {
    listen: listenAddress('write e.g. "127.0.0.1:8080" (loopback; any other address also needs token_file)').optional(),
    token_file: absolutePath('/etc/dispatcher/web.token').optional(),
  },
  'write it as "web: { listen: 127.0.0.1:8080 }" or leave it out',
).superRefine((doc, ctx) => {
  // The page shows every client and its line: off the host, only to whoever holds the token.
  if (doc.listen !== undefined && !isLoopback(doc.listen.slice(0, doc.listen.lastIndexOf(':'))) && doc.token_file === undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['token_file'],
      message: say(
        `the dashboard listens on ${doc.listen}, beyond this host, with no token`,
        'set token_file to a file only root reads holding a long random token (umask 077; openssl rand -hex 32 > FILE), or listen on 127.0.0.1',
      ),
      input: doc.token_file,
    });
  }
});

// ---- high availability: a pair of gateways; keepalived moves the shared addresses, conntrackd the connections

const ha = mapping(
  {
    peer: text(isUnicast, (input) => `${describe(input)} is not a unicast IPv4 address`, "write the other gateway's address on the sync link, e.g. 198.19.255.2"),
    interface: interfaceName('name the link to the other gateway, e.g. sync0 (conntrackd and the state channel use it)'),
    key: absolutePath('/etc/dispatcher/ha.key', 'name the file of the secret both gateways share, e.g. /etc/dispatcher/ha.key (openssl rand -hex 32)'),
    lan_address: addressWithPrefix('write the address the clients use as their gateway, with its prefix, e.g. 198.18.0.1/16'),
    priority: wholeNumber(1, 254, 'give each gateway its own VRRP priority from 1 to 254: the higher one is master while both are up'),
    router_id: wholeNumber(1, 255, 'pick a VRRP router id (1–255) no other VRRP router on the LAN uses; both gateways the same')
      .prefault(51)
      .meta({ description: "VRRP's virtual router id on the LAN: the same on both gateways of the pair." }),
    preempt: z
      .boolean(fails((input) => `must be true or false, not ${describe(input)}`, 'true: the gateway of higher priority takes over again when it comes back; false: the master keeps the role until it fails'))
      .prefault(false)
      .meta({ description: 'Whether the gateway of higher priority takes the role back when it returns (false: a takeover lasts until the new master fails).' }),
    port: wholeNumber(1024, 65535, 'pick a TCP port on the sync link for the state channel, e.g. 7790').prefault(7790),
  },
  'write it as "ha: { peer: 198.19.255.2, interface: sync0, key: /etc/dispatcher/ha.key, lan_address: 198.18.0.1/16, priority: 150 }" or leave it out',
).transform((doc) => ({
  /** The other gateway's address on the sync link. */
  peer: doc.peer,
  /** The sync link: conntrackd's FTFW and our state channel. */
  interface: doc.interface,
  /** The file of the secret both gateways share (the state channel's authentication). */
  keyFile: doc.key,
  /** The clients' gateway address, held by the master. */
  lanAddress: hostPrefix(doc.lan_address) as { address: string; prefix: number },
  priority: doc.priority,
  routerId: doc.router_id,
  preempt: doc.preempt,
  /** The state channel's TCP port on the sync link. */
  port: doc.port,
}));

const BACKENDS = ['iptables', 'nftables'] as const;
const netfilter = mapping(
  {
    backend: z
      .enum(
        BACKENDS,
        fails((input) => `${describe(input)} is not a netfilter backend`, `write ${BACKENDS.join(' or ')} (nftables needs only nft: no iptables, no ipset)`),
      )
      .prefault('iptables'),
  },
  'write it as "netfilter: { backend: nftables }" or leave it out',
);

/** Each top-level key of the document and its schema, so verify can also read them one by one. */
export const SECTIONS = {
  lan: lan.meta({ description: 'The LAN side: neighbours on these interfaces (and inside these subnets) are clients.' }),
  uplinks: uplinks.meta({ description: 'One entry per internet line; their order breaks ties and numbers marks and tables.' }),
  scan: scan.prefault({}).meta({ description: 'The full neighbour-table read (new clients are picked up at once from events).' }),
  state: absolutePath(DEFAULT_STATE).prefault(DEFAULT_STATE).meta({ description: 'Directory of the store (assignments, what flush puts back).' }),
  socket: absolutePath(DEFAULT_SOCKET).prefault(DEFAULT_SOCKET).meta({ description: 'Control socket of the daemon.' }),
  marks: marks.prefault({}).meta({ description: 'Mark bits of ours (a pool field and a connection field). Change only on a clash.' }),
  tables: tables.prefault({}).meta({ description: 'Routing tables base … base+99 are ours. Change only on a clash.' }),
  rules: rules.prefault({}).meta({ description: 'ip rule priorities priority … priority+99 are ours. Change only on a clash.' }),
  clients: clients.prefault({}).meta({ description: 'Expiry and caps of client assignments.' }),
  health: health.prefault({}).meta({ description: 'When a line is dead and when it is back; each uplink may override these under probe.' }),
  balance: balance.prefault({}).meta({ description: 'How traffic is spread over the lines that carry.' }),
  static_routes: staticRoutes.prefault([]).meta({ description: 'Destinations that must use given lines, in order of preference.' }),
  policies: policies.prefault([]).meta({ description: 'Rules for new LAN connections by source, destination, protocol, port or DSCP, first match wins: a line list in order, or a balancing mode.' }),
  notify: notify.prefault({}).meta({ description: 'Programs and mail told of every uplink state change.' }),
  groups: groups.prefault({}).meta({ description: 'Group ids of `dispatcher exec --uplink`: base + uplink index.' }),
  ddns: ddns.optional().meta({ description: 'Dynamic DNS: one A record per live uplink (RFC 2136 with TSIG, by nsupdate).' }),
  metrics: metrics.prefault({}).meta({ description: 'The Prometheus endpoint (GET /metrics); absent: none.' }),
  web: web.prefault({}).meta({ description: 'The web dashboard (live lines, clients, events); absent: none.' }),
  netfilter: netfilter.prefault({}).meta({ description: 'How packets are classified and NATed: iptables + ipset, or a table of our own in nftables.' }),
  ha: ha.optional().meta({ description: 'A pair of gateways (keepalived and conntrackd; `dispatcher ha render`); absent: this gateway stands alone.' }),
};

const document = mapping(SECTIONS, 'start from pools/example.yaml');
type Sections = z.output<typeof document>;

/** Global health settings, then an uplink's own probe settings on top. */
function probeSettings(global: Sections['health'], own: z.output<typeof probe>) {
  const defined = Object.fromEntries(Object.entries(own).filter(([key, value]) => key !== 'targets' && value !== undefined));
  const { damping: _, degraded: __, passive: ___, ...base } = global;
  return {
    /** Targets probed through this uplink; empty means its gateway (ICMP). */
    targets: own.targets ?? [],
    ...healthSettings({ ...base, ...defined } as HealthDoc),
  };
}

function assemble(doc: Sections) {
  return {
    lan: doc.lan,
    uplinks: doc.uplinks.map((uplink) => ({ ...uplink, probe: probeSettings(doc.health, uplink.probe) })),
    scan: doc.scan,
    /** Directory of the lowdb store. */
    state: doc.state,
    /** Control socket of the daemon. */
    socket: doc.socket,
    marks: doc.marks,
    /** Routing table ids used: base .. base + 99 (iptables/README.md). */
    tables: doc.tables,
    /** ip rule priorities used: priority .. priority + 99. */
    rules: doc.rules,
    /** Group ids whose sockets leave by one uplink (`dispatcher exec`): base + uplink index. */
    groups: doc.groups,
    /** The netfilter backend (src/backends/): iptables + ipset, or nftables. */
    netfilter: doc.netfilter,
    clients: doc.clients,
    /** host: a client's pool line; destination / connection: a hash of the client–destination pair or of the connection picks the line (core/balance/spread.ts). */
    balance: doc.balance,
    damping: doc.health.damping,
    /** When an up line counts as degraded (a smaller share of new clients). */
    degraded: doc.health.degraded,
    /** When a line that sends and hears nothing is asked at once (the passive signal). */
    passive: doc.health.passive,
    staticRoutes: doc.static_routes,
    /** First match wins; each policy sends its connections by the first live line of its list, or balances them by its mode (core/balance/policies.ts). */
    policies: doc.policies,
    notify: doc.notify,
    ...(doc.ddns !== undefined ? { ddns: doc.ddns } : {}),
    /** Where the Prometheus endpoint listens (GET /metrics); absent: no endpoint. */
    ...(doc.metrics.listen !== undefined ? { metrics: hostPort(doc.metrics.listen) } : {}),
    /** Where the web dashboard listens, and the file of the token its actions (and, off loopback, its reads) need; absent: no dashboard. */
    ...(doc.web.listen !== undefined ? { web: { ...hostPort(doc.web.listen), tokenFile: doc.web.token_file ?? null } } : {}),
    /** One of a pair of gateways; absent: alone. */
    ...(doc.ha !== undefined ? { ha: doc.ha } : {}),
  };
}

function hostPort(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':');
  return { host: listen.slice(0, at), port: Number(listen.slice(at + 1)) };
}

/** The whole document: YAML in, Config out. */
export const configSchema = document.transform(assemble).meta({ title: 'dispatcher configuration', description: 'The YAML file the dispatcher reads (--config); every key is documented in pools/README.md.' });

export type ConfigOutput = z.output<typeof configSchema>;
export type SectionsOutput = Sections;
export type ProbeDoc = z.output<typeof probe>;

/** The health settings every uplink gets unless its probe says otherwise. */
export const HEALTH_DEFAULTS = (() => {
  const { damping: _, degraded: __, passive: ___, ...settings } = health.parse({});
  return healthSettings(settings);
})();
export const DAMPING_DEFAULTS = damping.parse({});

const defaults = configSchema.parse({ lan: { interfaces: ['lan0'] }, uplinks: [{ name: 'a', interface: 'a' }] });
/** Defaults other code needs before (or without) a config: read from the schema above, never restated. */
export const DEFAULTS = {
  schedule: defaults.scan.schedule,
  state: defaults.state,
  socket: defaults.socket,
  markMask: defaults.marks.mask,
  tableBase: defaults.tables.base,
  rulePriority: defaults.rules.priority,
  groupBase: defaults.groups.base,
  clientMax: defaults.clients.max,
  clientsPerMac: defaults.clients.perMac,
} as const;

/** JSON Schema of the YAML the operator writes (its input side), for editors (pools/config.schema.json). */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** The file's exact text: `dispatcher config schema` prints it, and a unit test holds the committed copy to it. */
export function configJsonSchemaText(): string {
  return `${JSON.stringify(configJsonSchema(), null, 2)}\n`;
}

// The fake's policy routing: ip rules and the routes of every table, changed
// by `ip -batch -` (the lines src/render/payloads.ts writes) and printed as
// `ip -j rule show` and `ip -4 -j route show table all`.
//
// Semantics measured on Linux 6.18 / iproute2 6.1:
// - `ip -batch` runs line by line and stops at the first failure (exit 1,
//   "Command failed -:N"); the lines before it stay applied;
// - `rule add` of a rule identical in every attribute, protocol included, is
//   refused ("File exists"); the same rule with another protocol is allowed;
// - `rule del` matches on the attributes given only (from all, or no
//   protocol, match any) and deletes the first match; none: "No such file";
// - `route replace` replaces the route with the same table, destination and
//   metric (whatever its next hops), or adds it; `route del` without a table
//   means main, without a metric the lowest; a table never used does not exist;
// - a next hop needs an existing device that is up, and a gateway on one of its
//   subnets unless `onlink`; a hop over a link without carrier prints `linkdown`.

import { contains, hexOf, ipv4, parseNumber, prefix, ToolFailure } from './failure.js';
import type { Link } from './links.js';

export interface Rule {
  readonly priority: number;
  /** "all" or an address (with srclen). */
  readonly src: string;
  readonly srclen: number;
  readonly iif?: string;
  readonly oif?: string;
  readonly fwmark?: number;
  readonly fwmask?: number;
  readonly table: string;
  readonly suppressPrefixlength?: number;
  readonly protocol?: string;
}

export interface Hop {
  readonly gateway?: string;
  readonly dev: string;
  readonly weight: number;
  readonly onlink: boolean;
}

export interface Route {
  readonly table: string;
  /** "default" or CIDR ("192.0.2.1/32" for a host). */
  readonly dst: string;
  readonly type: string;
  readonly protocol: string;
  readonly scope?: string;
  readonly prefsrc?: string;
  readonly metric?: number;
  readonly hops: readonly Hop[];
}

const TABLE_NAMES: Record<string, string> = { '253': 'default', '254': 'main', '255': 'local' };
const TABLE_IDS: Record<string, number> = { default: 253, main: 254, local: 255 };
const ROUTE_TYPES = new Set(['unicast', 'local', 'broadcast', 'blackhole', 'unreachable', 'prohibit', 'throw']);

/** A table as ip prints it ("main", "3101"). */
export function tableName(text: string): string {
  return TABLE_NAMES[text] ?? text;
}

function tableId(name: string): number {
  return TABLE_IDS[name] ?? Number(name);
}

function sameRule(a: Rule, b: Rule): boolean {
  return (
    a.priority === b.priority &&
    a.src === b.src &&
    a.srclen === b.srclen &&
    a.iif === b.iif &&
    a.oif === b.oif &&
    a.fwmark === b.fwmark &&
    (a.fwmark === undefined || a.fwmask === b.fwmask) &&
    a.table === b.table &&
    a.suppressPrefixlength === b.suppressPrefixlength &&
    a.protocol === b.protocol
  );
}

/** The host-order key ip sorts a table's routes by: destination address, then prefix length. */
function dstKey(dst: string): [number, number] {
  return prefix(dst) ?? [0, 0];
}

export function routeOrder(a: Route, b: Route): number {
  // The kernel dumps tables in hash-bucket order (id mod 256), each in trie order.
  const ta = tableId(a.table);
  const tb = tableId(b.table);
  const [da, la] = dstKey(a.dst);
  const [db, lb] = dstKey(b.dst);
  return (ta % 256) - (tb % 256) || ta - tb || da - db || la - lb || (a.metric ?? 0) - (b.metric ?? 0);
}

function canonicalDst(text: string): string {
  if (text === 'default' || text === '0.0.0.0/0') return 'default';
  return text.includes('/') ? text : `${text}/32`;
}

export class Routing {
  rules: Rule[] = [];
  routes: Route[] = [];

  constructor(private readonly links: () => readonly Link[]) {}

  clone(links: () => readonly Link[]): Routing {
    const copy = new Routing(links);
    copy.rules = [...this.rules];
    copy.routes = [...this.routes];
    return copy;
  }

  /** The rules a fresh kernel has. */
  defaultRules(): void {
    this.rules = [
      { priority: 0, src: 'all', srclen: 0, table: 'local' },
      { priority: 32766, src: 'all', srclen: 0, table: 'main' },
      { priority: 32767, src: 'all', srclen: 0, table: 'default' },
    ];
  }

  addRule(rule: Rule): void {
    if (this.rules.some((r) => sameRule(r, rule))) throw new ToolFailure(2, 'RTNETLINK answers: File exists\n');
    // A new rule goes after the existing ones of the same priority.
    const at = this.rules.findIndex((r) => r.priority > rule.priority);
    this.rules.splice(at < 0 ? this.rules.length : at, 0, rule);
  }

  addRoute(route: Route, replace: boolean): void {
    for (const hop of route.hops) this.checkHop(hop);
    const at = this.routes.findIndex((r) => r.table === route.table && r.dst === route.dst && (r.metric ?? 0) === (route.metric ?? 0));
    if (at >= 0 && !replace) throw new ToolFailure(2, 'RTNETLINK answers: File exists\n');
    if (at >= 0) this.routes[at] = route;
    else this.routes.push(route);
  }

  private checkHop(hop: Hop): void {
    const link = this.links().find((l) => l.name === hop.dev);
    if (!link) throw new ToolFailure(1, `Cannot find device "${hop.dev}"\n`);
    if (!link.up) throw new ToolFailure(2, 'Error: Nexthop device is not up.\n');
    if (hop.gateway !== undefined && !hop.onlink) {
      const onSubnet = link.addresses.some((a) => a.peer === hop.gateway || (a.peer === undefined && contains(`${a.local}/${a.prefixlen}`, hop.gateway as string)));
      if (!onSubnet) throw new ToolFailure(2, 'Error: Nexthop has invalid gateway.\n');
    }
  }

  /** `ip -batch -` input; lines about links and addresses go to `other`. */
  batch(input: string, other: (tokens: readonly string[]) => void = (tokens) => this.command(tokens)): void {
    const lines = input.split('\n');
    for (let index = 0; index < lines.length; index++) {
      const line = (lines[index] as string).trim();
      if (line === '' || line.startsWith('#')) continue;
      try {
        const tokens = line.split(/\s+/);
        if (tokens[0] === 'rule' || tokens[0] === 'route') this.command(tokens);
        else other(tokens);
      } catch (error) {
        if (!(error instanceof ToolFailure)) throw error;
        throw new ToolFailure(1, `${error.stderr}Command failed -:${index + 1}\n`);
      }
    }
  }

  /** One `ip rule …` / `ip route …` command, without the leading `ip`. */
  command(tokens: readonly string[]): void {
    const [object, verb] = tokens;
    const args = tokens.slice(2);
    if (object === 'rule' && verb === 'add') this.addRule(this.parseRule(args, true) as Rule);
    else if (object === 'rule' && (verb === 'del' || verb === 'delete')) this.deleteRule(this.parseRule(args, false));
    else if (object === 'route' && (verb === 'replace' || verb === 'add')) this.addRoute(this.parseRoute(args), verb === 'replace');
    else if (object === 'route' && (verb === 'del' || verb === 'delete')) this.deleteRoute(args);
    // Anything else is a line the fake was never taught: refuse loudly.
    else throw new Error(`fake kernel: ip -batch line it does not know: "${tokens.join(' ')}"`);
  }

  private parseRule(args: readonly string[], adding: boolean): Partial<Rule> {
    const rule: { -readonly [K in keyof Rule]?: Rule[K] } = {};
    for (let i = 0; i < args.length; i++) {
      const key = args[i] as string;
      const value = args[++i];
      if (value === undefined) throw new ToolFailure(1, `Error: argument "${key}" needs a value.\n`);
      const number = (): number =>
        parseNumber(value) ??
        (() => {
          throw new ToolFailure(1, `Error: argument "${value}" is wrong: ${key}\n`);
        })();
      if (key === 'priority' || key === 'pref' || key === 'preference') rule.priority = number();
      else if (key === 'from') {
        const p = value === 'all' ? null : prefix(value);
        if (value !== 'all' && !p) throw new ToolFailure(1, `Error: an inet prefix is expected rather than "${value}".\n`);
        rule.src = value === 'all' ? 'all' : (value.split('/')[0] as string);
        rule.srclen = p ? p[1] : 0;
      } else if (key === 'iif') rule.iif = value;
      else if (key === 'oif') rule.oif = value;
      else if (key === 'fwmark') {
        const [mark, mask] = value.split('/');
        rule.fwmark = parseNumber(mark ?? '') ?? undefined;
        rule.fwmask = mask === undefined ? 0xffffffff : (parseNumber(mask) ?? undefined);
        if (rule.fwmark === undefined || rule.fwmask === undefined) throw new ToolFailure(1, `Error: argument "${value}" is wrong: fwmark value is invalid\n`);
      } else if (key === 'lookup' || key === 'table') rule.table = tableName(value);
      else if (key === 'suppress_prefixlength') rule.suppressPrefixlength = number();
      else if (key === 'protocol' || key === 'proto') rule.protocol = value;
      else throw new Error(`fake kernel: ip rule selector it does not know: "${key}"`);
    }
    if (!adding) return rule;
    if (rule.table === undefined) throw new ToolFailure(2, 'Error: Rule has no target table.\n');
    const priority = rule.priority ?? Math.max(0, (this.rules.find((r) => r.priority > 0)?.priority ?? 32766) - 1);
    return { ...rule, priority, src: rule.src ?? 'all', srclen: rule.srclen ?? 0, table: rule.table };
  }

  private deleteRule(selector: Partial<Rule>): void {
    const at = this.rules.findIndex(
      (r) =>
        (selector.priority === undefined || r.priority === selector.priority) &&
        (selector.src === undefined || selector.src === 'all' || (r.src === selector.src && r.srclen === selector.srclen)) &&
        (selector.iif === undefined || r.iif === selector.iif) &&
        (selector.oif === undefined || r.oif === selector.oif) &&
        (selector.fwmark === undefined || (r.fwmark === selector.fwmark && r.fwmask === selector.fwmask)) &&
        (selector.table === undefined || r.table === selector.table) &&
        (selector.suppressPrefixlength === undefined || r.suppressPrefixlength === selector.suppressPrefixlength) &&
        (selector.protocol === undefined || r.protocol === selector.protocol),
    );
    if (at < 0) throw new ToolFailure(2, 'RTNETLINK answers: No such file or directory\n');
    this.rules.splice(at, 1);
  }

  private parseRoute(args: readonly string[]): Route {
    let table = 'main';
    let type = 'unicast';
    let dst: string | undefined;
    let protocol = 'boot';
    let metric: number | undefined;
    const hops: { gateway?: string; dev?: string; weight: number; onlink: boolean }[] = [];
    let hop: (typeof hops)[number] | null = null;
    // Options before any `nexthop` describe the route's single next hop.
    const current = (): (typeof hops)[number] => {
      if (hop === null) {
        hop = { weight: 1, onlink: false };
        hops.push(hop);
      }
      return hop;
    };
    for (let i = 0; i < args.length; i++) {
      const key = args[i] as string;
      if (key === 'nexthop') {
        hop = { weight: 1, onlink: false };
        hops.push(hop);
      } else if (key === 'onlink') current().onlink = true;
      else if (key === 'via') current().gateway = args[++i];
      else if (key === 'dev') current().dev = args[++i];
      else if (key === 'weight') current().weight = Number(args[++i]);
      else if (key === 'table') table = tableName(args[++i] ?? '');
      else if (key === 'proto' || key === 'protocol') protocol = args[++i] ?? '';
      else if (key === 'metric' || key === 'priority') metric = Number(args[++i]);
      else if (ROUTE_TYPES.has(key) && dst === undefined) type = key;
      else if (dst === undefined && (key === 'default' || prefix(key))) dst = canonicalDst(key);
      else throw new Error(`fake kernel: ip route argument it does not know: "${key}" in "${args.join(' ')}"`);
    }
    if (dst === undefined) throw new ToolFailure(1, 'Error: destination is missing.\n');
    const complete = hops.map((h) => {
      if (h.dev === undefined) throw new Error(`fake kernel: a next hop without a device is not modelled: "${args.join(' ')}"`);
      if (h.gateway !== undefined && ipv4(h.gateway) === null) throw new ToolFailure(1, `Error: inet address is expected rather than "${h.gateway}".\n`);
      return { ...(h.gateway !== undefined ? { gateway: h.gateway } : {}), dev: h.dev, weight: h.weight, onlink: h.onlink };
    });
    return { table, dst, type, protocol, ...(metric !== undefined ? { metric } : {}), hops: complete };
  }

  private deleteRoute(args: readonly string[]): void {
    let table = 'main';
    let type: string | undefined;
    let dst: string | undefined;
    let metric: number | undefined;
    for (let i = 0; i < args.length; i++) {
      const key = args[i] as string;
      if (key === 'table') table = tableName(args[++i] ?? '');
      else if (key === 'metric' || key === 'priority') metric = Number(args[++i]);
      else if (ROUTE_TYPES.has(key) && dst === undefined) type = key;
      else if (dst === undefined && (key === 'default' || prefix(key))) dst = canonicalDst(key);
      else throw new Error(`fake kernel: ip route del argument it does not know: "${key}"`);
    }
    if (!this.routes.some((r) => r.table === table)) throw new ToolFailure(2, 'Error: FIB table does not exist.\n');
    const candidates = this.routes.filter((r) => r.table === table && r.dst === dst && (type === undefined || r.type === type) && (metric === undefined || (r.metric ?? 0) === metric));
    const lowest = candidates.sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
    if (!lowest) throw new ToolFailure(2, 'RTNETLINK answers: No such process\n');
    this.routes.splice(this.routes.indexOf(lowest), 1);
  }

  /** `ip -j rule show` */
  rulesJson(): string {
    return `${JSON.stringify(
      this.rules.map((r) => ({
        priority: r.priority,
        src: r.src,
        ...(r.src !== 'all' && r.srclen !== 32 ? { srclen: r.srclen } : {}),
        ...(r.iif !== undefined ? { iif: r.iif } : {}),
        ...(r.oif !== undefined ? { oif: r.oif } : {}),
        ...(r.fwmark !== undefined ? { fwmark: hexOf(r.fwmark) } : {}),
        ...(r.fwmark !== undefined && r.fwmask !== 0xffffffff ? { fwmask: hexOf(r.fwmask ?? 0xffffffff) } : {}),
        table: r.table,
        ...(r.suppressPrefixlength !== undefined ? { suppress_prefixlen: r.suppressPrefixlength } : {}),
        ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
      })),
    )}\n`;
  }

  private hopFlags(hop: Hop): string[] {
    const link = this.links().find((l) => l.name === hop.dev);
    return [...(link && !link.up ? ['dead'] : []), ...(hop.onlink ? ['onlink'] : []), ...(link && (!link.up || !link.carrier) ? ['linkdown'] : [])];
  }

  /** `ip -4 -j route show table all`: main's routes carry no "table". */
  routesJson(): string {
    const sorted = [...this.routes].sort(routeOrder);
    return `${JSON.stringify(
      sorted.map((r) => {
        const [only] = r.hops;
        const single = r.hops.length === 1 && only !== undefined;
        return {
          ...(r.type !== 'unicast' ? { type: r.type } : {}),
          dst: r.dst === 'default' ? 'default' : r.dst.replace(/\/32$/, ''),
          ...(single && only.gateway !== undefined ? { gateway: only.gateway } : {}),
          ...(single ? { dev: only.dev } : {}),
          ...(r.table !== 'main' ? { table: r.table } : {}),
          ...(r.protocol !== 'boot' ? { protocol: r.protocol } : {}),
          ...(r.scope !== undefined ? { scope: r.scope } : {}),
          ...(r.prefsrc !== undefined ? { prefsrc: r.prefsrc } : {}),
          ...(r.metric !== undefined ? { metric: r.metric } : {}),
          flags: single ? this.hopFlags(only) : [],
          ...(single ? {} : { nexthops: r.hops.map((h) => ({ ...(h.gateway !== undefined ? { gateway: h.gateway } : {}), dev: h.dev, weight: h.weight, flags: this.hopFlags(h) })) }),
        };
      }),
    )}\n`;
  }

  /** Rules and routes as text for golden files, in the order ip prints them. */
  dump(): { rules: string[]; routes: string[] } {
    const rules = this.rules.map((r) =>
      [
        `${r.priority}:`,
        `from ${r.src === 'all' ? 'all' : `${r.src}/${r.srclen}`}`,
        r.iif !== undefined ? `iif ${r.iif}` : '',
        r.oif !== undefined ? `oif ${r.oif}` : '',
        r.fwmark !== undefined ? `fwmark ${hexOf(r.fwmark)}/${hexOf(r.fwmask ?? 0xffffffff)}` : '',
        `lookup ${r.table}`,
        r.suppressPrefixlength !== undefined ? `suppress_prefixlength ${r.suppressPrefixlength}` : '',
        r.protocol !== undefined ? `proto ${r.protocol}` : '',
      ]
        .filter((part) => part !== '')
        .join(' '),
    );
    const routes = [...this.routes].sort(routeOrder).map((r) => {
      const hops = r.hops.map((h) => `${h.gateway !== undefined ? `via ${h.gateway} ` : ''}dev ${h.dev}${r.hops.length > 1 ? ` weight ${h.weight}` : ''}${h.onlink ? ' onlink' : ''}`);
      const head = `table ${r.table} ${r.type === 'unicast' ? '' : `${r.type} `}${r.dst}`;
      const tail = [`proto ${r.protocol}`, r.scope ? `scope ${r.scope}` : '', r.prefsrc ? `src ${r.prefsrc}` : '', r.metric !== undefined ? `metric ${r.metric}` : ''].filter((p) => p !== '');
      return [head, r.hops.length > 1 ? hops.map((h) => `nexthop ${h}`).join(' ') : (hops[0] ?? ''), ...tail].filter((p) => p !== '').join(' ');
    });
    return { rules, routes };
  }
}

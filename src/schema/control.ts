// The control protocol, defined once: every request the daemon takes on its
// socket and the result it answers with, as zod schemas. The daemon parses
// requests with them, the CLI, the lab and the bench get their types from
// them, and `pools/control.schema.json` (generated, checked by a test)
// documents `status --json` and `pools --json` from the same definitions.
//
// Wire format: one JSON object per line each way; an answer is
// { ok: true, result } or { ok: false, error: { kind, message } }.

import { z } from 'zod';
import { checkClientAddress, checkExplainAddress, checkHook } from '../core/requests.js';
import { isUplinkName } from '../core/names.js';
import { POLICY_PROTOCOLS } from '../core/balance/policy-match.js';
import { EVENT_KINDS } from '../core/timeline.js';
import { RequestError } from '../model/errors.js';

/** Requests larger than this are refused without being parsed. */
export const MAX_REQUEST_BYTES = 64 * 1024;

// ── results ────────────────────────────────────────────────────────────────

export const runReportSchema = z
  .object({
    at: z.string().describe('ISO time the run started'),
    durationMs: z.number(),
    ok: z.boolean(),
    error: z.string().optional().describe('why the run failed (the daemon retries with a full resync)'),
    reasons: z.array(z.string()).readonly().describe('the triggers this run carried'),
    drift: z.boolean().describe('nothing planned had changed, yet the kernel needed loading: other software had changed ours, and this run repaired it'),
    repaired: z.array(z.string()).readonly().describe('when drift: what this run put back, in words'),
    applied: z
      .record(z.string(), z.number())
      .readonly()
      .describe("payload lines loaded per command: the backend's (ipset, iptables today), ip and sysctl, 0 when the kernel already matched; empty when the run failed before planning"),
    added: z.number(),
    moved: z.number(),
    expired: z.number(),
    refused: z.number(),
    forgotten: z
      .record(z.string(), z.number())
      .readonly()
      .describe('uplinks that fell in this run, with the connections forgotten for each; "(unclassified)" counts the LAN connections started while our netfilter objects were gone'),
    phases: z.record(z.string(), z.number()).readonly().describe('milliseconds per phase (observe, plan, apply, forget, persist)'),
  })
  .readonly();
export type RunReport = z.infer<typeof runReportSchema>;

export const poolViewSchema = z
  .object({
    name: z.string(),
    interface: z.string(),
    state: z.enum(['up', 'down', 'unknown']),
    reason: z.string(),
    degraded: z.string().nullable().describe('why the line is degraded (up with a smaller share); null while it is not'),
    weight: z.number().describe('effective weight: the configured one, multiplied for healthy lines while another is degraded'),
    tier: z.number().describe('1: a main line; a higher tier carries nothing while a line of a lower tier is up'),
    role: z.enum(['carrying', 'standby', 'down']).describe('carrying traffic, standing by (up, a lower tier carries), or down'),
    address: z.string().nullable(),
    gateway: z.string().nullable(),
    gatewaySource: z.string().nullable(),
    uplinkTable: z.number().describe('routing table that always leaves by this uplink'),
    poolTable: z.number().describe("routing table of this uplink's pool"),
    poolMark: z.string(),
    connMark: z.string(),
    clients: z.array(z.string()).readonly(),
    clients6: z.array(z.string()).readonly().describe("the IPv6 addresses of this pool's hosts (lan.ipv6.mode nat): they leave by the same line as the host's IPv4"),
    pinned: z.array(z.string()).readonly(),
    buckets: z.number().nullable().describe("balance.mode destination or connection: this pool's share of the 64 hash buckets (core/balance/spread.ts); null in host mode"),
  })
  .readonly();
export type PoolView = z.infer<typeof poolViewSchema>;

const balanceModeSchema = z.enum(['host', 'destination', 'connection']).describe("balance.mode: by the client's pool, or a new connection's pool by a hash");

export const poolsReportSchema = z.object({ uplinks: z.array(poolViewSchema).readonly(), clients: z.number(), balance: balanceModeSchema }).readonly();
export type PoolsReport = z.infer<typeof poolsReportSchema>;

export const targetSnapshotSchema = z
  .object({
    target: z.string(),
    method: z.string().describe('icmp, tcp, http or dns'),
    alive: z.boolean().nullable().describe('null until the first verdict'),
    lastRttMs: z.number().nullable(),
    avgRttMs: z.number().nullable(),
    lossPercent: z.number().describe('share of the recent probes (since the last verdict change) that was lost'),
    probes: z.number(),
    lastLost: z.string().nullable().describe('why the latest lost probe was lost (a refused port, HTTP 500, REFUSED, no answer); null when none was'),
  })
  .readonly();
export type TargetSnapshot = z.infer<typeof targetSnapshotSchema>;

export const healthSnapshotSchema = z
  .object({
    state: z.enum(['unknown', 'up', 'down']),
    since: z.number(),
    reason: z.string(),
    transitions: z.number(),
    penalty: z.number(),
    suppressed: z.boolean(),
    degraded: z.string().nullable().describe('why the line is degraded (up, with a smaller share of new clients), null while it is not'),
    targets: z.array(targetSnapshotSchema).readonly(),
    intervalMs: z.number().describe('how often each target is probed now: probe.interval, or probe.standby_interval while the line stands by (a lower tier carries)'),
    detectionMs: z.number().describe('worst case from a silent failure to the verdict by the probes alone: down × interval + timeout, with half of down (rounded up) when two targets or more corroborate'),
    probeKbps: z.object({ out: z.number(), in: z.number() }).readonly().describe("what the uplink's probes put on the line, kbit/s each way (core/probe-cost.ts)"),
    failbackMs: z.number().describe('worst case from recovery to failback (without damping): up × interval + hold'),
    passive: z
      .object({
        stallMs: z.number(),
        detectionMs: z.number().describe('worst case from a silent failure to the verdict on a line that carries traffic: stall + one counter sample + the slowest burst'),
        answered: z.number().describe('stalls a burst answered: the line was only quiet'),
        silent: z.number().describe('stalls no burst answered: the line was dead'),
        last: z.string().nullable(),
      })
      .readonly()
      .nullable()
      .describe('the passive signal (health.passive); null when off'),
  })
  .readonly();
export type UplinkHealthSnapshot = z.infer<typeof healthSnapshotSchema>;

export const publicAddressSchema = z
  .object({
    address: z.string().nullable(),
    source: z.enum(['interface', 'url']).describe("interface: the uplink's own address; url: fetched through the uplink"),
    url: z.string().optional(),
    checkedAt: z.string().optional(),
    error: z.string().optional(),
    failures: z.number().optional(),
  })
  .readonly();
export type PublicAddressStatus = z.infer<typeof publicAddressSchema>;

export const ddnsStatusSchema = z
  .object({
    name: z.string(),
    server: z.string(),
    wanted: z.array(z.string()).readonly().describe('what the records should be now'),
    published: z.array(z.string()).readonly().nullable().describe('what the server held at the last successful check or update'),
    inSync: z.boolean(),
    checkedAt: z.string().nullable(),
    updatedAt: z.string().nullable(),
    updates: z.number(),
    checks: z.number(),
    error: z.string().nullable(),
    failures: z.number(),
    retryAt: z.string().nullable(),
  })
  .readonly();
export type DdnsStatus = z.infer<typeof ddnsStatusSchema>;

export const repairStatusSchema = z
  .object({
    total: z.number().describe('repairs since start: runs that put back what other software changed of ours'),
    last: z
      .object({
        at: z.string(),
        what: z.array(z.string()).readonly().describe('what the repair put back (the run says so from what it loaded)'),
        noticed: z.array(z.string()).readonly().describe('what the events or checks saw changed, and who changed it where the kernel says'),
        applied: z.record(z.string(), z.number()).readonly().describe('payload lines loaded per command to repair it'),
      })
      .readonly()
      .nullable(),
    fighting: z
      .object({
        since: z.string(),
        repairs: z.number().describe('repairs within the window that made this a repair loop'),
        by: z.array(z.string()).readonly().describe('the programs seen changing what is ours, where the kernel names them'),
        nextRepairAt: z.string().nullable().describe('repairs are backed off while the loop lasts'),
      })
      .readonly()
      .nullable()
      .describe('something keeps undoing our objects: repairs are backed off until it stops'),
  })
  .readonly();
export type RepairStatus = z.infer<typeof repairStatusSchema>;

const staticRouteSchema = z.object({ destination: z.string(), via: z.array(z.string()).readonly() }).readonly();

export const policyStatusSchema = z
  .object({
    name: z.string(),
    match: z.string().describe('the match in words'),
    action: z.string().describe('"via isp2, isp1" or "balance connection"'),
    pool: z.number().nullable().describe("a via list's pool number (its mark's pool field); null for a balance policy"),
    uplink: z.string().nullable().describe("a via list's first live line, which its new connections leave by; null when none is live (they go over the lines that carry, weighted) or for a balance policy"),
  })
  .readonly();
export type PolicyStatus = z.infer<typeof policyStatusSchema>;

/** One of a pair: whether its conntrackd answers `conntrackd -C CONF -s` (engine/conntrackd-health.ts), and what it said. */
const conntrackdHealthSchema = z
  .object({
    ok: z.boolean().describe('conntrackd answered; when it does not, connections are not synced and a takeover drops them'),
    problem: z.string().nullable().describe('why it did not answer: what conntrackd said (not running), or that `dispatcher ha render` never ran'),
    checkedAt: z.string().describe('when it was last asked'),
    caches: z
      .object({
        internal: z.number().describe("connections in its internal cache: this gateway's own, which it sends to the peer"),
        external: z.number().describe("connections in its external cache: the peer's, kept to be committed on a takeover"),
      })
      .nullable()
      .describe('null when it did not answer'),
    errors: z
      .object({
        send: z.number(),
        receive: z.number(),
        malformed: z.number().describe('messages received malformed'),
        lost: z.number().describe('messages found missing from the sequence (FT-FW sends them again)'),
      })
      .nullable()
      .describe("the sync link's errors since conntrackd started; null when it did not answer"),
  })
  .readonly();

export const statusSchema = z
  .object({
    running: z.literal(true),
    pid: z.number(),
    version: z.string(),
    startedAt: z.string(),
    uptimeSeconds: z.number(),
    config: z.string().describe('the config file the daemon runs with'),
    clients: z.number(),
    balance: balanceModeSchema,
    uplinks: z
      .array(
        poolViewSchema
          .unwrap()
          .omit({ clients: true, clients6: true, pinned: true })
          .extend({
            clients: z.number(),
            pinned: z.number(),
            health: healthSnapshotSchema.nullable(),
            publicAddress: publicAddressSchema.nullable(),
            ipv6: z
              .object({
                state: z.enum(['up', 'down', 'unknown']),
                reason: z.string(),
                address: z.string().nullable(),
                gateway: z.string().nullable(),
                health: healthSnapshotSchema.nullable().describe("the probes of the line's IPv6 (uplinks[].ipv6.probe); null: IPv6 follows the line's verdict"),
                announced: z
                  .object({ prefix: z.string(), preferred: z.boolean() })
                  .nullable()
                  .describe("prefix mode: the line's prefix as the LAN's router advertisements announce it, preferred or deprecated; null: not announced"),
              })
              .nullable()
              .describe('the line as IPv6 sees it (lan.ipv6.mode nat or prefix); null while IPv6 is off'),
          })
          .readonly(),
      )
      .readonly(),
    ddns: ddnsStatusSchema.nullable(),
    staticRoutes: z.array(staticRouteSchema).readonly(),
    policies: z.array(policyStatusSchema).readonly().describe('the policies in order (first match wins), each with where its new connections go now'),
    lastRun: runReportSchema.nullable(),
    runs: z.number().describe('reconcile runs since start'),
    repairs: repairStatusSchema,
    conflicts: z.array(z.string()).readonly().describe('rules of other software inside our ranges'),
    advertisements: z.string().nullable().describe("IPv6 prefix mode: why the LAN's router advertisements (radvd) failed at the last run; null: no failure"),
    ha: z
      .object({
        role: z.enum(['master', 'backup', 'fault', 'unknown']).describe('the role keepalived gave this gateway; unknown (fenced) until it says'),
        peer: z.string(),
        sending: z.boolean().describe('master: the state channel to the peer is up'),
        lagMs: z.number().nullable().describe("master: the newest message's time from send to the peer's ack"),
        problem: z.string().nullable().describe('master: why the channel is down (the peer unreachable, a refusal)'),
        hearing: z.boolean().describe("backup: the master's state channel to this gateway is up (heard within 3 s; its heartbeats come every second)"),
        lastReceived: z.string().nullable().describe("backup: when the master's last message was applied"),
        refused: z.object({ from: z.string(), why: z.string(), at: z.string() }).nullable().describe('the last connection this gateway refused (a wrong key)'),
        conntrackd: conntrackdHealthSchema.nullable().describe('conntrackd, which syncs the connection table (asked every 10 s); null before the first answer'),
      })
      .nullable()
      .describe('one of a pair (ha); null alone'),
    store: z
      .object({
        store: z.object({ problem: z.string(), movedTo: z.string().nullable(), backup: z.string() }).nullable().describe('the store was unusable at start: what was wrong and where it went'),
        adopted: z.number().describe('clients adopted from the kernel set at start (a crash between apply and save)'),
      })
      .readonly(),
  })
  .readonly();
export type Status = z.infer<typeof statusSchema>;

const poolBytesSchema = z.object({ sent: z.number(), received: z.number() }).readonly();
export const trafficSchema = z
  .object({
    at: z.number().describe('milliseconds since the epoch when the counters were read'),
    pools: z.record(z.string(), poolBytesSchema).readonly(),
    uplinks: z.record(z.string(), z.object({ interface: z.string(), rx: z.number(), tx: z.number() }).readonly().nullable()).readonly(),
  })
  .readonly();
export type Traffic = z.infer<typeof trafficSchema>;

export const explanationSchema = z
  .object({
    ip: z.string(),
    mark: z.number().nullable().describe('the mark the client set gives its packets (null when it has no pool)'),
    verdict: z.string().describe('"assigned", "not assigned" or "not a client"'),
    steps: z.array(z.string()).readonly().describe("one line per step of the packet's way, in order"),
    ifUplinkDies: z.string().nullable(),
    pool: z.string().nullable(),
    pinned: z.boolean(),
    to: z
      .object({
        address: z.string(),
        bucket: z.number().nullable().describe("destination mode: the bucket the kernel's hash of the two addresses falls in"),
        pool: z.string().nullable().describe("the hash bucket's pool whose table the connections to it use (null: no bucket)"),
        policy: z.string().nullable().describe('the policy that takes them (null: none)'),
        mark: z.number().nullable().describe("the pool mark their first packet gets instead of the client's (null: the client's own)"),
        uplink: z.string().nullable().describe('the line they leave by now, when one can be named'),
      })
      .readonly()
      .nullable()
      .describe('explain --to DEST [--protocol --port --dscp]: where new connections to that address go'),
  })
  .readonly();
export type Explanation = z.infer<typeof explanationSchema>;

export const timelineEventSchema = z
  .object({
    seq: z.number().describe('1, 2, 3 … in the order the daemon saw them (a restarted daemon begins again at 1)'),
    at: z.string().describe('ISO time'),
    kind: z
      .enum(EVENT_KINDS)
      .describe(
        'start: the daemon started; verdict: a line judged up or down; failover / failback: its pool moved away or home; degraded; ddns: records updated or failing; repair: other software undid ours; reload / refused: a config taken or refused; run: runs failing or working again; operator: an assign, release or rebalance, or a line taken out of service or given back from the web page; ha: this gateway of a pair changed role, or its conntrackd stopped or started answering',
      ),
    uplink: z.string().nullable().describe('the line it is about, if one'),
    text: z.string(),
  })
  .readonly();
export type TimelineEventView = z.infer<typeof timelineEventSchema>;

export const eventsResultSchema = z
  .object({
    events: z.array(timelineEventSchema).readonly().describe('oldest first; the daemon keeps the newest 1000'),
    last: z.number().describe("the newest event's number: ask for what comes after it next"),
    started: z.string().describe('when this daemon started: event numbers are comparable only within one start; pass it back with `after`'),
  })
  .readonly();

// ── requests, each with the schema of its result ───────────────────────────

/** The value as a message shows it: JSON, cut short (it comes from whoever can reach the socket). */
const shown = (value: unknown): string => JSON.stringify(value)?.slice(0, 60) ?? String(value);
const address = z
  .string({ error: (issue) => `${shown(issue.input)} is not a unicast IPv4 address` })
  .describe('a unicast IPv4 address')
  .transform((ip) => checkClientAddress(ip));
const explainAddress = z
  .string({ error: (issue) => `${shown(issue.input)} is not a unicast IPv4 or IPv6 address` })
  .describe("a unicast IPv4 address, or one of a host's IPv6 addresses")
  .transform((ip) => checkExplainAddress(ip));
const uplinkName = z
  .string({ error: (issue) => `${shown(issue.input)} is not an uplink name` })
  .refine(isUplinkName, { error: (issue) => `${shown(issue.input)} is not an uplink name` })
  .describe("a configured uplink's name");

/** Every command: the fields it takes and the result it answers with. */
export const commands = {
  ping: { request: {}, result: z.object({ pid: z.number(), version: z.string() }) },
  pools: { request: {}, result: poolsReportSchema },
  status: { request: {}, result: statusSchema },
  traffic: { request: {}, result: trafficSchema },
  explain: {
    request: {
      ip: explainAddress,
      to: address.optional(),
      protocol: z.enum(POLICY_PROTOCOLS).optional(),
      port: z.number().int().min(1).max(65535).optional(),
      dscp: z.number().int().min(0).max(63).optional(),
    },
    result: explanationSchema.unwrap().extend({
      kernel: z.object({ command: z.string(), answer: z.string() }),
      firewall: z.array(z.string()).readonly().describe("the gateway's own firewall on this client's new connections, one line per uplink they can leave by"),
    }),
  },
  events: {
    request: {
      after: z.number().int().min(0).optional().describe('only the events after this number'),
      started: z.string().max(40).optional().describe('the `started` of the answer that number came from: when the daemon has restarted since, the answer starts from the oldest event kept'),
      waitMs: z.number().int().min(0).max(30_000).optional().describe('when there is none yet, wait up to this long for one (events --follow)'),
    },
    result: eventsResultSchema,
  },
  scan: { request: {}, result: runReportSchema },
  reload: { request: {}, result: runReportSchema },
  assign: { request: { ip: address, uplink: uplinkName }, result: z.object({ ip: z.string(), uplink: z.string(), pinned: z.literal(true), run: runReportSchema }) },
  release: { request: { ip: address }, result: z.object({ ip: z.string(), released: z.string().optional(), run: runReportSchema }) },
  rebalance: {
    request: { dryRun: z.boolean().optional().describe('only say what would move') },
    result: z.object({
      dryRun: z.boolean(),
      moves: z
        .array(z.object({ ip: z.string(), from: z.string(), to: z.string() }).readonly())
        .readonly()
        .describe('idle clients moved (or that would be), one by one from the most to the least loaded line'),
      before: z.record(z.string(), z.number()).readonly().describe("each carrying line's pool: bytes per second ÷ its weight, over the last minute (or a few seconds measured on the spot when the counters were not being read)"),
      after: z.record(z.string(), z.number()).readonly().describe('the same, expected once the moved clients carry what the average client does'),
      idle: z.number().describe('clients with no connection open: the ones that may move'),
      busy: z.number().describe('clients with a connection open through a line: never moved'),
      run: runReportSchema.nullable().describe('the run that loaded the moves; null for a dry run or when nothing moved'),
    }),
  },
  ha: {
    request: { role: z.enum(['master', 'backup', 'fault']).describe('the role keepalived gave this gateway of a pair (its notify script runs `dispatcher ha ROLE`)') },
    result: z.object({
      role: z.enum(['master', 'backup', 'fault']),
      previous: z.enum(['master', 'backup', 'fault', 'unknown']),
      conntrackd: z
        .array(z.object({ step: z.string(), ok: z.boolean(), said: z.string() }).readonly())
        .readonly()
        .describe("conntrackd's client commands run for the role, in order (master: the commit -c before the fence is lifted, -f, -R, -B after; backup: -t, -n after it is up; none when the role was said again)"),
      run: runReportSchema.describe('the run that raised or lifted the fence'),
      sessions: z
        .array(z.object({ uplink: z.string(), ok: z.boolean(), said: z.string() }).readonly())
        .readonly()
        .describe("the lines only the master holds (ha_connect): each one's ha_connect (master) or ha_disconnect (backup, fault) and what it answered"),
      forgotten: z.record(z.string(), z.number()).describe('master: the committed connections forgotten per line whose address does not move with the role (no ha_address): translated to the old master’s address, they would hang'),
    }),
  },
  // pppd's arguments: strings here; what a valid one is, checkHook (core/requests.ts) says, for the daemon and the CLI alike.
  hook: {
    request: {
      event: z.enum(['ip-up', 'ip-down']),
      interface: z.string().describe('the ppp interface, e.g. ppp0'),
      tty: z.string(),
      speed: z.string(),
      local: z.string().describe('local IPv4 address, or empty'),
      remote: z.string().describe('remote IPv4 address, or empty'),
      ipparam: z.string().optional().describe("pppd's ipparam: names the uplink"),
    },
    result: z.object({ uplink: z.string(), event: z.enum(['ip-up', 'ip-down']), interface: z.string().optional() }),
  },
} as const;

export type Command = keyof typeof commands;
type Fields<C extends Command> = { [K in keyof (typeof commands)[C]['request']]: (typeof commands)[C]['request'][K] extends z.ZodType ? z.output<(typeof commands)[C]['request'][K]> : never };
type OptionalKeys<T> = { [K in keyof T]: undefined extends T[K] ? K : never }[keyof T];
type WithOptionals<T> = { readonly [K in Exclude<keyof T, OptionalKeys<T>>]: T[K] } & { readonly [K in OptionalKeys<T>]?: T[K] };

/** A request as the daemon receives it, after parsing. */
export type RequestOf<C extends Command> = { readonly cmd: C } & WithOptionals<Fields<C>>;
export type ControlRequest = { [C in Command]: RequestOf<C> }[Command];
/** The result the daemon answers a command with. */
export type ResultOf<C extends Command> = z.output<(typeof commands)[C]['result']>;

export type ControlResponse = { readonly ok: true; readonly result: unknown } | { readonly ok: false; readonly error: { readonly kind: 'request' | 'config' | 'internal'; readonly message: string } };

/** Every request's schema: strict (no field it does not take), built from `commands`. */
const requestSchemas = Object.fromEntries(Object.entries(commands).map(([cmd, { request }]) => [cmd, z.strictObject({ cmd: z.literal(cmd), ...request })])) as unknown as Record<Command, z.ZodType>;

function isCommand(cmd: unknown): cmd is Command {
  return typeof cmd === 'string' && Object.hasOwn(commands, cmd);
}

/** Parses one request line; anything that is not a valid request is a RequestError naming what is wrong. */
export function parseRequest(line: string): ControlRequest {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new RequestError('request is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RequestError('request must be a JSON object');
  const body = value as Record<string, unknown>;
  if (!isCommand(body.cmd)) throw new RequestError(`unknown command ${JSON.stringify(body.cmd)?.slice(0, 60)}`);
  const extra = Object.keys(body).find((k) => k !== 'cmd' && !Object.hasOwn(commands[body.cmd as Command].request, k));
  if (extra !== undefined) throw new RequestError(`unexpected field ${JSON.stringify(extra).slice(0, 60)}`);
  // pppd's arguments are checked field by field in one place (they go into logs, the store and commands).
  if (body.cmd === 'hook') return checkHook(body);
  const parsed = requestSchemas[body.cmd].safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RequestError(`${issue?.path.join('.') || 'request'}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data as ControlRequest;
}

/** The JSON Schema of every command's request and result, for documentation and other clients. */
export function protocolJsonSchema(): Record<string, unknown> {
  const defs = Object.fromEntries(
    Object.entries(commands).map(([cmd, { result }]) => [
      cmd,
      {
        request: z.toJSONSchema(requestSchemas[cmd as Command], { io: 'input', unrepresentable: 'any' }),
        result: z.toJSONSchema(result, { io: 'output', unrepresentable: 'any' }),
      },
    ]),
  );
  return { $comment: 'Generated from src/schema/control.ts: dispatcher control protocol (one JSON object per line on the control socket)', commands: defs };
}

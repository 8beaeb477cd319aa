// The Prometheus text exposition (format 0.0.4) of the daemon's state (pure):
// per uplink state, transitions and probe RTT/loss per target (and every
// probe's round trip in a histogram), clients and bytes per pool, interface
// bytes, reconcile runs, their durations (a histogram) and failures, repairs,
// the dynamic DNS state, one of a pair's role, state channel and conntrackd,
// and the process (memory, CPU, files, event loop).
// `promtool check metrics` passes it (test/unit/operator.test.ts).

import type { Traffic, UplinkHealthSnapshot } from '../schema/control.js';
import type { HistogramSnapshot } from './histogram.js';
import type { HaRole } from './netfilter.js';

/** The daemon's own process (system/process-stats.ts reads it). */
export interface ProcessStats {
  readonly residentBytes: number;
  readonly cpuSeconds: number;
  /** Null where /proc cannot be read. */
  readonly openFds: number | null;
  readonly maxFds: number | null;
  readonly startTimeSeconds: number;
  /** Seconds the event loop ran late since the previous read: median, 99th percentile, worst. */
  readonly loopDelay: { readonly p50: number; readonly p99: number; readonly max: number };
}

/** One gateway of a pair (config `ha`). */
export interface HaMetrics {
  readonly role: HaRole;
  /** The state channel is up: the master's to the backup (its sender), or, on any other role, the master's to it (heard within 3 s). */
  readonly channelUp: boolean;
  /** The newest message's time from send to the backup's ack, seconds; null before the first. */
  readonly lagSeconds: number | null;
  /** When this gateway last applied a message from the master (epoch seconds); null before the first. */
  readonly lastReceivedSeconds: number | null;
  /** When it last refused a connection on the state channel (a wrong key; epoch seconds); null: never. */
  readonly lastRefusedSeconds: number | null;
  /** conntrackd's last answer (null before the first check): whether it answered, its caches and the sync link's errors as it counts them. */
  readonly conntrackd: {
    readonly up: boolean;
    readonly caches: { readonly internal: number; readonly external: number } | null;
    readonly errors: { readonly send: number; readonly receive: number; readonly malformed: number; readonly lost: number } | null;
  } | null;
}

/** Every role a gateway of a pair can be in: each gets a sample, 1 for the current one. */
const HA_ROLES: readonly HaRole[] = ['master', 'backup', 'fault', 'unknown'];

export interface MetricsInput {
  readonly uplinks: readonly {
    readonly name: string;
    readonly interface: string;
    readonly state: string;
    /** carrying, standby (up; a lower tier carries) or down. */
    readonly role: string;
    readonly tier: number;
    readonly clients: number;
    /** Its share of the 64 hash buckets in the destination and connection modes; null in host mode. */
    readonly buckets: number | null;
    readonly health: UplinkHealthSnapshot | null;
    /** Its IPv6's state (lan.ipv6.mode nat); null while IPv6 is off. */
    readonly ipv6: string | null;
  }[];
  readonly clients: number;
  /** The via policies, each with the line its new connections leave by now (null: none of its list is live). */
  readonly policies: readonly { readonly name: string; readonly uplink: string | null }[];
  readonly traffic: Traffic;
  readonly runs: number;
  readonly failedRuns: number;
  readonly runDurations: HistogramSnapshot;
  /** Round trips of every answered probe, by line (family ipv6: of a line's own IPv6 probes). */
  readonly probeRtts: readonly { readonly uplink: string; readonly family: 'ipv4' | 'ipv6'; readonly rtts: HistogramSnapshot }[];
  readonly lastRunSeconds: number | null;
  readonly repairs: { readonly total: number; readonly fighting: boolean };
  readonly ddns: { readonly inSync: boolean; readonly updates: number; readonly checks: number; readonly failures: number } | null;
  /** One of a pair; null alone (then no dispatcher_ha_ family appears). */
  readonly ha: HaMetrics | null;
  readonly process: ProcessStats;
}

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** A sample's value as the format spells it: +Inf, -Inf and NaN by name. */
function formatValue(value: number): string {
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  return Number.isNaN(value) ? 'NaN' : String(value);
}

class Exposition {
  private readonly lines: string[] = [];

  family(name: string, type: 'gauge' | 'counter', help: string, samples: readonly [Labels, number][]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) this.sample(name, labels, value);
  }

  /** A histogram: cumulative `_bucket`s by `le` (the last one +Inf), then `_sum` and `_count`, per series. */
  histogram(name: string, help: string, series: readonly [Labels, HistogramSnapshot][]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    for (const [labels, { buckets, sum, count }] of series) {
      for (const [le, cumulative] of buckets) this.sample(`${name}_bucket`, { ...labels, le: le === Number.POSITIVE_INFINITY ? '+Inf' : String(le) }, cumulative);
      this.sample(`${name}_sum`, labels, Math.round(sum * 1e6) / 1e6);
      this.sample(`${name}_count`, labels, count);
    }
  }

  sample(name: string, labels: Labels, value: number): void {
    const text = Object.entries(labels)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(',');
    this.lines.push(`${name}${text ? `{${text}}` : ''} ${formatValue(value)}`);
  }

  text(): string {
    return `${this.lines.join('\n')}\n`;
  }
}

/** A family with one sample, or none while the value is unknown (an absent series, not a made-up 0). */
function maybe(m: Exposition, name: string, type: 'gauge' | 'counter', help: string, value: number | null): void {
  if (value !== null) m.family(name, type, help, [[{}, value]]);
}

function haFamilies(m: Exposition, ha: HaMetrics): void {
  m.family(
    'dispatcher_ha_role',
    'gauge',
    "This gateway's role in the pair, as keepalived gave it: 1 for the current role, 0 for the others (unknown: keepalived has not said yet; every role but master is fenced and forwards nothing).",
    HA_ROLES.map((role) => [{ role }, ha.role === role ? 1 : 0]),
  );
  m.family(
    'dispatcher_ha_channel_up',
    'gauge',
    "1 while the pair's state channel is up: on the master, its channel to the backup (the backup's key accepted, heartbeats answered); on the backup, the master's heartbeats arriving (every second). 0: the backup is not kept up to date.",
    [[{}, ha.channelUp ? 1 : 0]],
  );
  maybe(m, 'dispatcher_ha_sync_lag_seconds', 'gauge', "The master only: the newest message's time from send to the backup's acknowledgement.", ha.lagSeconds);
  maybe(
    m,
    'dispatcher_ha_last_received_timestamp_seconds',
    'gauge',
    'When this gateway last applied a message from the master on the state channel (since the epoch; time() minus it: the seconds since the backup last heard from the master). Absent before the first.',
    ha.lastReceivedSeconds,
  );
  maybe(m, 'dispatcher_ha_last_refused_timestamp_seconds', 'gauge', 'When this gateway last refused a connection on the state channel, a wrong key (since the epoch). Absent while none was refused.', ha.lastRefusedSeconds);
  const ct = ha.conntrackd;
  if (!ct) return;
  m.family('dispatcher_ha_conntrackd_up', 'gauge', '1 while conntrackd answers (asked every 10 s); 0 while not: connections are not synced, and a takeover drops them.', [[{}, ct.up ? 1 : 0]]);
  if (ct.caches) {
    m.family('dispatcher_ha_conntrackd_connections', 'gauge', "Connections in conntrackd's caches: internal, this gateway's own (sent to the peer); external, the peer's (committed on a takeover).", [
      [{ cache: 'internal' }, ct.caches.internal],
      [{ cache: 'external' }, ct.caches.external],
    ]);
  }
  if (ct.errors) {
    const e = ct.errors;
    m.family(
      'dispatcher_ha_conntrackd_sync_errors_total',
      'counter',
      'Sync messages conntrackd failed to send or receive, received malformed, or found missing (lost: a gap in the sequence, which FT-FW sends again), since conntrackd started.',
      (['send', 'receive', 'malformed', 'lost'] as const).map((kind) => [{ kind }, e[kind]]),
    );
  }
}

export function renderMetrics(input: MetricsInput): string {
  const m = new Exposition();
  const perUplink = (value: (u: MetricsInput['uplinks'][number]) => number): [Labels, number][] => input.uplinks.map((u) => [{ uplink: u.name }, value(u)]);
  const targets = input.uplinks.flatMap((u) => (u.health?.targets ?? []).map((t) => ({ uplink: u.name, ...t })));
  m.family(
    'dispatcher_uplink_up',
    'gauge',
    '1 while the uplink carries traffic, 0 while it is down.',
    input.uplinks.map((u) => [{ uplink: u.name, interface: u.interface }, u.state === 'up' ? 1 : 0]),
  );
  m.family(
    'dispatcher_uplink_ipv6_up',
    'gauge',
    "1 while the uplink carries IPv6 (lan.ipv6.mode nat: its IPv6 next hop known and its IPv6 verdict, or the line's, up), 0 while not.",
    input.uplinks.flatMap((u): [Labels, number][] => (u.ipv6 === null ? [] : [[{ uplink: u.name, interface: u.interface }, u.ipv6 === 'up' ? 1 : 0]])),
  );
  m.family(
    'dispatcher_uplink_carrying',
    'gauge',
    '1 while the uplink carries traffic; 0 while it is down or stands by (up, but a line of a lower tier carries).',
    input.uplinks.map((u) => [{ uplink: u.name, tier: String(u.tier) }, u.role === 'carrying' ? 1 : 0]),
  );
  m.family(
    'dispatcher_balance_buckets',
    'gauge',
    "balance.mode destination or connection: the uplink's share of the 64 buckets a new connection is hashed into (absent in host mode).",
    input.uplinks.filter((u) => u.buckets !== null).map((u) => [{ uplink: u.name }, u.buckets as number]),
  );
  m.family(
    'dispatcher_policy_uplink',
    'gauge',
    "A via policy's line: 1 for the line its new connections leave by now (the first live one of its list), 0 for every other line; all 0 while none of its list is live.",
    input.policies.flatMap((p) => input.uplinks.map((u): [Labels, number] => [{ policy: p.name, uplink: u.name }, p.uplink === u.name ? 1 : 0])),
  );
  m.family(
    'dispatcher_uplink_transitions_total',
    'counter',
    'State changes of the uplink since the daemon started.',
    perUplink((u) => u.health?.transitions ?? 0),
  );
  m.family(
    'dispatcher_uplink_degraded',
    'gauge',
    '1 while the uplink is up but degraded (over health.degraded loss or latency): it gets a smaller share of new clients.',
    perUplink((u) => (u.health?.degraded ? 1 : 0)),
  );
  m.family(
    'dispatcher_uplink_suppressed',
    'gauge',
    '1 while the uplink is held down for flapping.',
    perUplink((u) => (u.health?.suppressed ? 1 : 0)),
  );
  m.family(
    'dispatcher_passive_stalls_total',
    'counter',
    'Times the uplink sent and heard nothing for health.passive.stall; outcome: a burst of probes answered (quiet) or not (silent: the line went down).',
    input.uplinks.flatMap((u): [Labels, number][] =>
      u.health?.passive
        ? [
            [{ uplink: u.name, outcome: 'quiet' }, u.health.passive.answered],
            [{ uplink: u.name, outcome: 'silent' }, u.health.passive.silent],
          ]
        : [],
    ),
  );
  m.family(
    'dispatcher_probe_up',
    'gauge',
    '1 while the probe target answers through the uplink.',
    targets.map((t) => [{ uplink: t.uplink, target: t.target }, t.alive ? 1 : 0]),
  );
  m.family(
    'dispatcher_probe_rtt_seconds',
    'gauge',
    'Average round-trip time of recent probes to the target (NaN before the first answer).',
    targets.map((t) => [{ uplink: t.uplink, target: t.target }, t.avgRttMs === null ? NaN : Math.round(t.avgRttMs * 1000) / 1e6]),
  );
  m.histogram(
    'dispatcher_probe_duration_seconds',
    "Round trip of every answered probe through the uplink since the daemon started (family ipv6: the line's own IPv6 probes).",
    input.probeRtts.map((p) => [{ uplink: p.uplink, family: p.family }, p.rtts]),
  );
  m.family(
    'dispatcher_probe_loss_ratio',
    'gauge',
    'Share of recent probes to the target that were lost.',
    targets.map((t) => [{ uplink: t.uplink, target: t.target }, t.lossPercent / 100]),
  );
  m.family('dispatcher_clients', 'gauge', 'Clients assigned to a pool.', [[{}, input.clients]]);
  m.family(
    'dispatcher_pool_clients',
    'gauge',
    "Clients in the uplink's pool.",
    perUplink((u) => u.clients),
  );
  m.family(
    'dispatcher_pool_sent_bytes_total',
    'counter',
    "Bytes the pool's clients sent (counted as they enter from the LAN).",
    perUplink((u) => input.traffic.pools[u.name]?.sent ?? 0),
  );
  m.family(
    'dispatcher_pool_received_bytes_total',
    'counter',
    "Bytes the pool's clients received (counted as they leave to the LAN).",
    perUplink((u) => input.traffic.pools[u.name]?.received ?? 0),
  );
  const links = input.uplinks.flatMap((u) => {
    const c = input.traffic.uplinks[u.name];
    return c ? [{ u, c }] : [];
  });
  m.family(
    'dispatcher_uplink_receive_bytes_total',
    'counter',
    "Bytes received on the uplink's interface.",
    links.map(({ u, c }) => [{ uplink: u.name, interface: c.interface }, c.rx]),
  );
  m.family(
    'dispatcher_uplink_transmit_bytes_total',
    'counter',
    "Bytes sent on the uplink's interface.",
    links.map(({ u, c }) => [{ uplink: u.name, interface: c.interface }, c.tx]),
  );
  m.family('dispatcher_reconcile_runs_total', 'counter', 'Reconcile runs since the daemon started.', [[{}, input.runs]]);
  m.family('dispatcher_reconcile_failures_total', 'counter', 'Reconcile runs that failed (each is retried as a full resync).', [[{}, input.failedRuns]]);
  m.histogram('dispatcher_reconcile_duration_seconds', 'Time the reconcile runs took.', [[{}, input.runDurations]]);
  m.family('dispatcher_repairs_total', 'counter', 'Runs that put back what other software changed of ours (a firewall reload, a network manager).', [[{}, input.repairs.total]]);
  m.family('dispatcher_repair_loop', 'gauge', '1 while something keeps undoing our objects and repairs are backed off.', [[{}, input.repairs.fighting ? 1 : 0]]);
  if (input.lastRunSeconds !== null) m.family('dispatcher_reconcile_last_duration_seconds', 'gauge', 'Time the last reconcile run took.', [[{}, input.lastRunSeconds]]);
  if (input.ddns) {
    m.family('dispatcher_ddns_in_sync', 'gauge', "1 when the DNS server holds exactly the live uplinks' addresses.", [[{}, input.ddns.inSync ? 1 : 0]]);
    m.family('dispatcher_ddns_updates_total', 'counter', 'DNS updates sent since the daemon started.', [[{}, input.ddns.updates]]);
    m.family('dispatcher_ddns_checks_total', 'counter', 'Times the DNS server was asked what it holds.', [[{}, input.ddns.checks]]);
    m.family('dispatcher_ddns_failures', 'gauge', 'Failed DNS checks or updates in a row (0 when the last one worked).', [[{}, input.ddns.failures]]);
  }
  if (input.ha) haFamilies(m, input.ha);
  const p = input.process;
  m.family('process_resident_memory_bytes', 'gauge', 'Resident memory size in bytes.', [[{}, p.residentBytes]]);
  m.family('process_cpu_seconds_total', 'counter', 'User and system CPU time spent, in seconds.', [[{}, Math.round(p.cpuSeconds * 1000) / 1000]]);
  if (p.openFds !== null) m.family('process_open_fds', 'gauge', 'Open file descriptors.', [[{}, p.openFds]]);
  if (p.maxFds !== null) m.family('process_max_fds', 'gauge', 'Most open file descriptors allowed.', [[{}, p.maxFds]]);
  m.family('process_start_time_seconds', 'gauge', 'Start time of the process since the epoch, in seconds.', [[{}, p.startTimeSeconds]]);
  m.family(
    'dispatcher_event_loop_delay_seconds',
    'gauge',
    "How late the daemon's event loop ran since the previous scrape (stat p50, p99, max): a late loop probes and fails over late.",
    (['p50', 'p99', 'max'] as const).map((stat) => [{ stat }, Math.round(p.loopDelay[stat] * 1e6) / 1e6]),
  );
  return m.text();
}

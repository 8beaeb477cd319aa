// What ships for Prometheus and Grafana (contrib/): the alerting rules pass
// `promtool check rules` and their own `promtool test rules`; every query of
// the rules and of the Grafana dashboard is valid PromQL (promtool checks
// them as recording rules) and names only metrics the daemon exposes.

import { describe, expect, test } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Histogram, RTT_BUCKETS, RUN_BUCKETS } from '../../src/core/histogram.js';
import { renderMetrics } from '../../src/core/metrics.js';
import { ExecaRunner } from '../../src/system/exec.js';

const CONTRIB = fileURLToPath(new URL('../../contrib/', import.meta.url));
const runner = new ExecaRunner();

async function promtool(args: readonly string[]): Promise<{ exitCode: number; output: string }> {
  const result = await runner.run(['promtool', ...args], { okExitCodes: [0, 1, 3] });
  return { exitCode: result.exitCode, output: `${result.stdout}${result.stderr}` };
}

/** The families an exposition with every optional part present declares. */
function exposedFamilies(): Set<string> {
  const health = { state: 'up', since: 0, reason: '', transitions: 0, penalty: 0, suppressed: false, degraded: null, intervalMs: 100, detectionMs: 900, probeKbps: { out: 1, in: 1 }, failbackMs: 1000, targets: [] } as const;
  const text = renderMetrics({
    uplinks: [{ name: 'isp1', interface: 'ppp0', state: 'up', role: 'carrying', tier: 1, clients: 1, buckets: 64, health: { ...health, passive: { stallMs: 1, detectionMs: 1, answered: 0, silent: 0, last: null } }, ipv6: 'up' }],
    clients: 1,
    policies: [{ name: 'p', uplink: 'isp1' }],
    traffic: { at: 0, pools: { isp1: { sent: 0, received: 0 } }, uplinks: { isp1: { interface: 'ppp0', rx: 0, tx: 0 } } },
    runs: 0,
    failedRuns: 0,
    runDurations: new Histogram(RUN_BUCKETS).snapshot(),
    probeRtts: [{ uplink: 'isp1', family: 'ipv4', rtts: new Histogram(RTT_BUCKETS).snapshot() }],
    lastRunSeconds: 0,
    repairs: { total: 0, fighting: false },
    ddns: { inSync: true, updates: 0, checks: 0, failures: 0 },
    ha: {
      role: 'master',
      channelUp: true,
      lagSeconds: 0.01,
      lastReceivedSeconds: 1,
      lastRefusedSeconds: 1,
      conntrackd: { up: true, caches: { internal: 1, external: 0 }, errors: { send: 0, receive: 0, malformed: 0, lost: 0 } },
    },
    process: { residentBytes: 1, cpuSeconds: 1, openFds: 1, maxFds: 1, startTimeSeconds: 1, loopDelay: { p50: 0, p99: 0, max: 0 } },
  });
  return new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string));
}

/** The metric names a PromQL expression reads (ours and the process ones), without histogram suffixes. */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:dispatcher|process)_[a-z0-9_]+)/g)].map((m) => (m[1] as string).replace(/_(bucket|sum|count)$/, ''));
}

/** Grafana's variables as Prometheus would see them once Grafana has filled them in. */
function asPromql(expr: string): string {
  return expr.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*');
}

describe('contrib/prometheus/alerts.yml', () => {
  test('promtool check rules passes it, and its unit tests (alerts.test.yml) pass', async () => {
    const check = await promtool(['check', 'rules', join(CONTRIB, 'prometheus', 'alerts.yml')]);
    expect(check.output).toContain('SUCCESS: 10 rules found');
    expect(check.exitCode).toBe(0);
    // Its rule_files are found beside it.
    const tests = await promtool(['test', 'rules', join(CONTRIB, 'prometheus', 'alerts.test.yml')]);
    expect(tests.output).toContain('SUCCESS');
    expect(tests.exitCode).toBe(0);
  });

  test('its expressions read only metrics the daemon exposes', async () => {
    const text = await readFile(join(CONTRIB, 'prometheus', 'alerts.yml'), 'utf8');
    const exposed = exposedFamilies();
    const used = [...text.matchAll(/^\s+expr: (.+)$/gm)].flatMap((m) => metricsIn(m[1] as string));
    expect(used.length).toBeGreaterThanOrEqual(6);
    expect(used.filter((name) => !exposed.has(name))).toEqual([]);
  });
});

describe('contrib/grafana/dispatcher.json', () => {
  interface Panel {
    readonly title: string;
    readonly targets?: readonly { readonly expr: string }[];
  }

  test('every panel query is valid PromQL and reads only metrics the daemon exposes; lines, pools, RTT, loss, throughput, runs and DNS each have a panel', async () => {
    const dashboard = JSON.parse(await readFile(join(CONTRIB, 'grafana', 'dispatcher.json'), 'utf8')) as { panels: readonly Panel[]; templating: { list: readonly { name: string }[] } };
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'instance']);
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    const exposed = exposedFamilies();
    expect(exprs.flatMap(metricsIn).filter((name) => !exposed.has(name))).toEqual([]);
    const titles = dashboard.panels.map((p) => p.title).join(' | ');
    for (const topic of ['Lines up', 'Clients per pool', 'Probe RTT', 'Probe loss', 'throughput', 'Reconcile runs', 'Dynamic DNS']) expect(titles).toContain(topic);
    // promtool has no query checker without a server: each query becomes a recording rule it checks.
    const dir = await mkdtemp(join(tmpdir(), 'dsp-grafana-'));
    try {
      const rules = ['groups:', '  - name: dashboard', '    rules:', ...exprs.flatMap((expr, i) => [`      - record: dashboard:query${i}`, `        expr: ${JSON.stringify(asPromql(expr))}`])].join('\n');
      await writeFile(join(dir, 'queries.yml'), `${rules}\n`);
      const check = await promtool(['check', 'rules', join(dir, 'queries.yml')]);
      expect(check.output).toContain(`SUCCESS: ${exprs.length} rules found`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

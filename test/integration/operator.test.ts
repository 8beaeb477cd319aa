// What an operator looks at, on the real kernel: `doctor` (finds what is
// wrong, says how to fix it, exit code by the worst finding, never changes
// the gateway), `explain IP` (agrees with the kernel's own route lookup,
// before and after a failover), the Prometheus endpoint (states, probes,
// clients and bytes per pool, transitions, reconcile runs) and `top`.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Finding } from '../../src/core/doctor.js';
import { blackhole } from '../../src/lab/faults.js';
import { AGENT, dispatcherArgv } from '../../src/lab/harness.js';
import type { TimelineEventView } from '../../src/schema/control.js';
import { Lab, within, type PoolsJson } from '../helpers/lab.js';

jest.setTimeout(120_000);

const METRICS = '127.0.0.1:9108';

interface DoctorJson {
  worst: string;
  findings: Finding[];
}

describe('operator tools in the default lab', () => {
  let lab: Lab;

  const doctor = async (args: string[] = [], config?: string): Promise<{ exit: number; report: DoctorJson }> => {
    const result = await lab.cli(['doctor', '--json', ...args], [0, 1, 2], config);
    return { exit: result.exitCode, report: JSON.parse(result.stdout) as DoctorJson };
  };
  const finding = (report: DoctorJson, check: string): Finding | undefined => report.findings.find((f) => f.check === check);
  const scrape = async (path = '/metrics'): Promise<string> => (await lab.runIn(lab.topo.gw, [process.execPath, AGENT, 'get', `http://${METRICS}${path}`], [0, 1])).stdout;
  const sample = (text: string, name: string, labels: string): number => {
    const line = text.split('\n').find((l) => l.startsWith(labels ? `${name}{${labels}} ` : `${name} `));
    if (!line) throw new Error(`no ${name}{${labels}} in\n${text}`);
    return Number(line.split(' ').pop());
  };

  beforeAll(async () => {
    lab = await Lab.create({ clients: 3, config: { extra: `metrics: { listen: "${METRICS}" }\n` } });
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('doctor before the first start: kernel features tried and cleaned up, forwarding off is a warning (exit 1)', async () => {
    const before = await lab.snapshot();
    const { exit, report } = await doctor();
    expect(exit).toBe(1);
    expect(report.worst).toBe('warn');
    const features = report.findings.filter((f) => f.check.startsWith('kernel:'));
    expect(features.map((f) => f.check).sort()).toEqual(
      ['CONNMARK target', 'MASQUERADE', 'SET --map-mark target', 'conntrack', 'ipset hash:ip with counters and skbinfo', 'multipath routes', 'owner match (dispatcher exec)', 'policy routing (fwmark rules, extra tables)']
        .map((f) => `kernel:${f}`)
        .sort(),
    );
    expect(features.every((f) => f.severity === 'ok')).toBe(true);
    expect(finding(report, 'sysctl:ip_forward')).toMatchObject({ severity: 'warn', fix: expect.stringContaining('dispatcher start turns it on') });
    expect(finding(report, 'uplink:isp1')).toMatchObject({ severity: 'ok', summary: expect.stringContaining('gateway 192.0.2.1 (config) answers') });
    expect(finding(report, 'tool:ipset')?.severity).toBe('ok');
    expect(finding(report, 'netfilter:backend')?.summary).toMatch(/nf_tables|legacy/);
    // Read-only for the gateway, and its scratch namespace is gone.
    expect(await lab.snapshot()).toEqual(before);
    expect((await lab.runner.run(['ip', 'netns', 'list'])).stdout).not.toMatch(/^dspdoctor-/m);
  });

  test('doctor on the running gateway is clean (exit 0); a strict rp_filter behind its back is repaired and reported, a foreign rule in our block, a missing interface and a broken config are failures (exit 2) with fixes', async () => {
    await lab.start();
    const clean = await doctor();
    expect(clean.report.findings.filter((f) => f.severity === 'warn' || f.severity === 'fail')).toEqual([]);
    expect(clean.exit).toBe(0);

    await lab.runIn(lab.topo.gw, ['ip', 'rule', 'add', 'priority', '4150', 'lookup', '200']);
    try {
      // Something turns the reverse-path filter strict behind the daemon's back: self-repair puts it back at once.
      await lab.runIn(lab.topo.gw, ['sysctl', '-q', '-w', 'net.ipv4.conf.ppp0.rp_filter=1']);
      await within(3000, 'rp_filter loose again', async () => (await lab.runIn(lab.topo.gw, ['sysctl', '-n', 'net.ipv4.conf.ppp0.rp_filter'])).stdout.trim() === '2');
      const { exit, report } = await doctor();
      expect(exit).toBe(2);
      expect(finding(report, 'sysctl:rp_filter:ppp0')).toMatchObject({ severity: 'ok' });
      expect(finding(report, 'repair:last')).toMatchObject({ severity: 'info', summary: expect.stringContaining('sysctl net.ipv4.conf.ppp0.rp_filter set to 2') });
      expect(report.findings.some((f) => f.check.startsWith('collisions:rules.priority') && f.severity === 'fail' && f.summary.includes('4150'))).toBe(true);
    } finally {
      await lab.runIn(lab.topo.gw, ['ip', 'rule', 'del', 'priority', '4150']);
    }

    const other = join(lab.files.dir, 'wan9.yaml');
    await writeFile(other, (await readFile(lab.files.config, 'utf8')).replace('interface: wan0', 'interface: wan9'));
    const missing = await doctor([], other);
    expect(missing.exit).toBe(2);
    expect(finding(missing.report, 'uplink:isp3')).toMatchObject({ severity: 'fail', summary: 'isp3: interface wan9 does not exist or is down' });

    const broken = join(lab.files.dir, 'broken.yaml');
    await writeFile(broken, 'lan: { interfaces: [lan0] }\nuplinks: [{ name: isp1, interface: ppp0, weight: 0 }]\n');
    const refused = await doctor([], broken);
    expect(refused.exit).toBe(2);
    expect(refused.report.findings[0]).toMatchObject({ check: 'config:uplinks[0].weight', severity: 'fail' });
    expect(finding(refused.report, 'tool:ip')?.severity).toBe('ok');
  });

  test('explain agrees with the kernel, before and after its uplink dies', async () => {
    const client = lab.client(0);
    await lab.hello(client);
    await within(3000, 'the client assigned', async () => lab.inClientSet(client.ip));
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    const pool = pools.uplinks.find((u) => u.clients.includes(client.ip)) as PoolsJson['uplinks'][number];
    const home = lab.uplink(pool.name);
    const explained = async (): Promise<{ verdict: string; steps: string[]; ifUplinkDies: string; kernel: { answer: string } }> => lab.cliJson(['explain', client.ip]);
    const up = await explained();
    expect(up.verdict).toBe('assigned');
    expect(up.steps.join('\n')).toContain(`rule ${4166 + ['isp1', 'isp2', 'isp3'].indexOf(pool.name)}: fwmark ${pool.poolMark} lookup ${pool.poolTable}`);
    expect(up.kernel.answer).toContain(`dev ${home.interface} table ${pool.poolTable}`);
    expect(up.ifUplinkDies).toContain(`if ${pool.name} dies: table ${pool.poolTable} points at`);
    const text = (await lab.cli(['explain', client.ip])).stdout;
    expect(text).toContain(`${client.ip}: assigned`);

    await blackhole(lab.runner, home, true);
    try {
      await within(3000, `${pool.name} down`, async () => (await lab.stateOf(pool.name)) === 'down');
      const down = await explained();
      expect(down.steps.join('\n')).toContain(`${pool.name} is down`);
      // The kernel now routes the pool over a survivor, as the explanation said it would.
      const survivors = lab.topo.uplinks.filter((u) => u.name !== pool.name).map((u) => u.interface);
      expect(survivors.some((dev) => down.kernel.answer.includes(`dev ${dev} table ${pool.poolTable}`))).toBe(true);
    } finally {
      await blackhole(lab.runner, home, false);
    }
    await within(5000, `${pool.name} back`, async () => (await lab.stateOf(pool.name)) === 'up');
    expect((await lab.cli(['explain', '198.19.0.1'])).stdout).toContain('not a client');
  });

  test('events: the timeline of what happened (the failover above, its line coming home), and --follow prints the next one as it happens', async () => {
    const timeline = (await lab.cli(['events', '--json'])).stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as TimelineEventView);
    expect(timeline[0]).toMatchObject({ seq: 1, kind: 'start' });
    const kinds = timeline.map((e) => `${e.kind} ${e.uplink ?? '-'}`);
    const failover = kinds.findIndex((k) => k.startsWith('failover '));
    expect(failover).toBeGreaterThan(0);
    const line = timeline[failover]?.uplink as string;
    expect(timeline[failover - 1]).toMatchObject({ kind: 'verdict', uplink: line, text: expect.stringMatching(new RegExp(`^${line} up → down: `)) });
    expect(timeline[failover]?.text).toMatch(new RegExp(`^${line}'s pool \\(1 clients\\) now leaves by isp[0-9], isp[0-9]$`));
    expect(kinds.slice(failover)).toContain(`failback ${line}`);
    const text = (await lab.cli(['events'])).stdout;
    expect(text).toMatch(new RegExp(`^[0-9-]{10} [0-9:]{8}  failover  ${line} +${line}'s pool`, 'm'));

    const lines: string[] = [];
    const follower = lab.runner.spawn(dispatcherArgv(lab.topo, lab.files, ['events', '--follow', '--json']), { onLine: (l) => lines.push(l) });
    try {
      await within(5000, 'the timeline so far', async () => lines.length >= timeline.length);
      await lab.cli(['reload']);
      await within(5000, 'the reload, followed', async () => lines.some((l) => (JSON.parse(l) as TimelineEventView).kind === 'reload'));
      expect(lines.map((l) => (JSON.parse(l) as TimelineEventView).seq)).toEqual(Array.from({ length: lines.length }, (_, i) => i + 1));
    } finally {
      follower.stop('SIGINT');
      await follower.ended;
    }
  });

  test('metrics: uplink states, transitions, probes, clients and bytes per pool, reconcile runs', async () => {
    const client = lab.client(0);
    const pool = (await lab.cliJson<PoolsJson>(['pools'])).uplinks.find((u) => u.clients.includes(client.ip))?.name as string;
    const before = await scrape();
    for (let i = 0; i < 5; i++) await lab.leavesBy(client);
    const after = await scrape();
    expect(after).toContain('# TYPE dispatcher_uplink_up gauge');
    for (const u of lab.topo.uplinks) expect(sample(after, 'dispatcher_uplink_up', `uplink="${u.name}",interface="${u.interface}"`)).toBe(1);
    // The previous test failed this pool's uplink over and back.
    expect(sample(after, 'dispatcher_uplink_transitions_total', `uplink="${pool}"`)).toBeGreaterThanOrEqual(2);
    expect(sample(after, 'dispatcher_pool_clients', `uplink="${pool}"`)).toBe(1);
    const grew = (name: string): number => sample(after, name, `uplink="${pool}"`) - sample(before, name, `uplink="${pool}"`);
    // Five HTTP requests and answers: hundreds of bytes each way, counted for the client's pool only.
    expect(grew('dispatcher_pool_sent_bytes_total')).toBeGreaterThan(500);
    expect(grew('dispatcher_pool_received_bytes_total')).toBeGreaterThan(500);
    for (const other of lab.topo.uplinks.filter((u) => u.name !== pool)) expect(sample(after, 'dispatcher_pool_sent_bytes_total', `uplink="${other.name}"`)).toBe(0);
    const target = lab.uplink(pool).ispCore;
    expect(sample(after, 'dispatcher_probe_up', `uplink="${pool}",target="${target}"`)).toBe(1);
    expect(sample(after, 'dispatcher_probe_rtt_seconds', `uplink="${pool}",target="${target}"`)).toBeGreaterThan(0);
    expect(sample(after, 'dispatcher_reconcile_runs_total', '')).toBeGreaterThan(0);
    expect(after).toMatch(/^dispatcher_reconcile_duration_seconds_count \d+$/m);
    // Every probe answered so far, in the RTT histogram: the +Inf bucket is the count, and the lab's lines answer within 25 ms.
    const answered = sample(after, 'dispatcher_probe_duration_seconds_count', `uplink="${pool}",family="ipv4"`);
    expect(answered).toBeGreaterThan(10);
    expect(sample(after, 'dispatcher_probe_duration_seconds_bucket', `uplink="${pool}",family="ipv4",le="+Inf"`)).toBe(answered);
    expect(sample(after, 'dispatcher_probe_duration_seconds_bucket', `uplink="${pool}",family="ipv4",le="0.025"`)).toBeGreaterThan(answered * 0.9);
    expect(sample(after, 'process_resident_memory_bytes', '')).toBeGreaterThan(10_000_000);
    expect(sample(after, 'process_open_fds', '')).toBeGreaterThan(5);
    const promtool = await lab.runner.run(['promtool', 'check', 'metrics'], { input: after, okExitCodes: [0, 1, 3] });
    expect(`${promtool.stdout}${promtool.stderr}`).toBe('');
    expect(promtool.exitCode).toBe(0);
    expect(await scrape('/')).toContain('only GET /metrics here');
  });

  test('top: frames with each uplink, its state, throughput and RTT', async () => {
    const client = lab.client(1);
    await lab.hello(client);
    const traffic = lab.stream(client, 'top', 200, 3);
    const result = await lab.cli(['top', '--interval', '500ms', '--count', '4']);
    await traffic;
    const frames = result.stdout.split('dispatcher top — ').slice(1);
    expect(frames).toHaveLength(4);
    const last = frames[3] as string;
    for (const u of lab.topo.uplinks) expect(last).toMatch(new RegExp(`^${u.name}\\s+${u.interface}\\s+up\\s+\\d+\\s+[0-9.]+ [kMG]?bit/s`, 'm'));
    const pool = (await lab.cliJson<PoolsJson>(['pools'])).uplinks.find((u) => u.clients.includes(client.ip))?.name as string;
    // 200 datagrams of ~40 bytes per second leave by the client's uplink: more than 40 kbit/s sent.
    const tx = new RegExp(`^${pool}\\s+\\S+\\s+up\\s+\\d+\\s+\\S+ \\S+\\s+([0-9.]+) (k|M)bit/s`, 'm').exec(last);
    expect(tx).not.toBeNull();
    expect(last).toMatch(new RegExp(`^${pool}\\s+traffic [▁▂▃▄▅▆▇█]{3}`, 'm'));
  });
});

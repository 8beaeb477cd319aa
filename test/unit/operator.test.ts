// The pure parts of the operator tools: doctor's judgement, the metrics
// exposition, pool byte counters, explain and top's drawing.

import { describe, expect, test } from '@jest/globals';
import { diagnose, EXIT_OF, worst } from '../../src/core/doctor.js';
import { explain } from '../../src/core/explain.js';
import { Histogram, RUN_BUCKETS } from '../../src/core/histogram.js';
import { renderMetrics, type MetricsInput } from '../../src/core/metrics.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { ProcessWatch } from '../../src/system/process-stats.js';
import { poolBytes, rates } from '../../src/core/traffic.js';
import type { Traffic } from '../../src/schema/control.js';
import { parseIptablesSave } from '../../src/parse/iptables-save.js';
import { rate, renderTop, sparkline } from '../../src/cli/top-view.js';
import { capturedAssignments, healthyDoctorFacts as facts, labConfig, labUplinks } from '../helpers/scenario.js';

describe('doctor judges', () => {
  test('a healthy gateway has nothing to say (exit 0)', () => {
    const findings = diagnose(facts());
    expect(findings.filter((f) => f.severity !== 'ok')).toEqual([]);
    expect(EXIT_OF[worst(findings)]).toBe(0);
  });

  test('each miss names its fix; the worst finding is the exit code', () => {
    const findings = diagnose(
      facts({
        tools: { ...facts().tools, ipset: null },
        features: { 'ipset hash:ip with counters and skbinfo': 'ipset v7.17: Kernel error received: Operation not supported' },
        sysctls: { ...facts().sysctls, 'net.ipv4.conf.all.rp_filter': '1', 'net.ipv4.conf.ppp0.rp_filter': '1', 'net.ipv4.neigh.default.gc_thresh3': '1024' },
        gatewayAnswers: { isp1: false, isp2: true, isp3: true },
        groupsInRange: [{ name: 'builders', gid: 64101 }],
      }),
    );
    const of = (check: string) => findings.find((f) => f.check === check);
    expect(of('tool:ipset')).toMatchObject({ severity: 'fail', fix: 'apt-get install ipset' });
    expect(of('kernel:ipset hash:ip with counters and skbinfo')?.severity).toBe('fail');
    expect(of('sysctl:rp_filter:ppp0')).toMatchObject({ severity: 'fail', fix: expect.stringContaining('net.ipv4.conf.all.rp_filter=0') });
    // The lab's LAN is a /16: 65,536 addresses, more than 1,024 neighbour entries.
    expect(of('sysctl:gc_thresh')).toMatchObject({ severity: 'warn', fix: expect.stringContaining('gc_thresh3=65536') });
    expect(of('uplink:isp1')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('did not answer') });
    expect(of('groups')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('builders (64101)') });
    expect(EXIT_OF[worst(findings)]).toBe(2);
  });

  test('before the first start, forwarding off and a strict interface are warnings the start fixes (exit 1)', () => {
    const findings = diagnose(facts({ daemonRunning: false, sysctls: { ...facts().sysctls, 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.wan0.rp_filter': '1' } }));
    expect(findings.filter((f) => f.severity !== 'ok').map((f) => [f.check, f.severity])).toEqual([
      ['sysctl:ip_forward', 'warn'],
      ['sysctl:rp_filter:wan0', 'warn'],
    ]);
    expect(EXIT_OF[worst(findings)]).toBe(1);
  });
});

describe('doctor in IPv6 nat mode', () => {
  const ipv6Config = { ...labConfig, lan: { ...labConfig.lan, ipv6: { mode: 'nat' as const, prefix: 'fd00:18::/64' } } };
  const sysctls6 = Object.fromEntries([['net.ipv6.conf.all.forwarding', '1'], ...labConfig.uplinks.map((u) => [`net.ipv6.conf.${u.interface}.accept_ra`, '2'])]);

  test('IPv6 forwarding and accept_ra=2 on every uplink are checked; nothing of it while IPv6 is off', () => {
    expect(diagnose(facts()).filter((f) => f.check.startsWith('sysctl:net.ipv6'))).toEqual([]);
    const healthy = diagnose(facts({ config: ipv6Config, sysctls: { ...facts().sysctls, ...sysctls6 } }));
    expect(healthy.filter((f) => f.check.startsWith('sysctl:net.ipv6')).map((f) => f.severity)).toEqual(labConfig.uplinks.map(() => 'ok').concat('ok'));
    expect(healthy.filter((f) => f.severity !== 'ok')).toEqual([]);
  });

  test('an uplink that ignores router advertisements under a running daemon fails, naming why; before the start it is a warning', () => {
    const broken = { ...facts().sysctls, ...sysctls6, 'net.ipv6.conf.wan0.accept_ra': '1', 'net.ipv6.conf.all.forwarding': '0' };
    const running = diagnose(facts({ config: ipv6Config, sysctls: broken }));
    const of = (findings: typeof running, check: string) => findings.find((f) => f.check === check);
    expect(of(running, 'sysctl:net.ipv6.conf.wan0.accept_ra')).toMatchObject({ severity: 'fail', summary: expect.stringContaining('ignores the ISP router') });
    expect(of(running, 'sysctl:net.ipv6.conf.all.forwarding')).toMatchObject({ severity: 'fail', summary: expect.stringContaining('IPv6 is not forwarded') });
    const before = diagnose(facts({ config: ipv6Config, sysctls: broken, daemonRunning: false }));
    expect(of(before, 'sysctl:net.ipv6.conf.wan0.accept_ra')).toMatchObject({ severity: 'warn', fix: expect.stringContaining('dispatcher start sets it') });
  });
});

const traffic: Traffic = { at: 1000, pools: { isp1: { sent: 100, received: 2000 } }, uplinks: { isp1: { interface: 'ppp0', rx: 10_000, tx: 5000 } } };

describe('metrics', () => {
  const input: MetricsInput = {
    uplinks: [
      {
        name: 'isp1',
        interface: 'ppp0',
        state: 'up',
        role: 'carrying',
        tier: 1,
        clients: 2,
        buckets: 64,
        health: {
          state: 'up',
          since: 0,
          reason: '',
          transitions: 3,
          penalty: 0,
          suppressed: false,
          degraded: null,
          passive: { stallMs: 300, detectionMs: 445, answered: 4, silent: 1, last: null },
          intervalMs: 100,
          detectionMs: 1300,
          probeKbps: { out: 6.7, in: 6.7 },
          failbackMs: 1500,
          targets: [{ target: '203.0.113.100', method: 'icmp', alive: true, lastRttMs: 12, avgRttMs: 10.5, lossPercent: 4, probes: 50, lastLost: null }],
        },
        ipv6: 'down',
      },
      { name: 'we"ird', interface: 'ppp1', state: 'down', role: 'down', tier: 2, clients: 0, buckets: 0, health: null, ipv6: null },
    ],
    clients: 2,
    policies: [{ name: 'bank', uplink: 'isp1' }],
    traffic,
    runs: 7,
    failedRuns: 1,
    runDurations: (() => {
      const runs = new Histogram(RUN_BUCKETS);
      for (const seconds of [0.004, 0.02, 0.02, 0.3, 0.0064, 0, 12]) runs.observe(seconds);
      return runs.snapshot();
    })(),
    probeRtts: [
      {
        uplink: 'isp1',
        family: 'ipv4',
        rtts: {
          buckets: [
            [0.01, 3],
            [Number.POSITIVE_INFINITY, 5],
          ],
          sum: 0.5,
          count: 5,
        },
      },
    ],
    lastRunSeconds: 0.02,
    repairs: { total: 3, fighting: true },
    ddns: { inSync: true, updates: 2, checks: 5, failures: 0 },
    ha: null,
    process: { residentBytes: 80_000_000, cpuSeconds: 12.3456, openFds: 40, maxFds: 1024, startTimeSeconds: 1_796_000_000, loopDelay: { p50: 0.0101, p99: 0.02, max: 0.5 } },
  };

  test('every family has HELP and TYPE, every sample is name{labels} value, labels are escaped', () => {
    const text = renderMetrics(input);
    const lines = text.trim().split('\n');
    for (const line of lines) expect(line).toMatch(/^(# (HELP|TYPE) [a-z_][a-z0-9_]* .+|[a-z_][a-z0-9_]*(\{([a-z]+="([^"\\]|\\.)*",?)+\})? (-?[0-9.e+-]+|NaN|\+Inf))$/);
    expect(lines).toContain('dispatcher_uplink_up{uplink="isp1",interface="ppp0"} 1');
    // IPv6 only where it is on (the second line's is null).
    expect(lines).toContain('dispatcher_uplink_ipv6_up{uplink="isp1",interface="ppp0"} 0');
    expect(lines.filter((l) => l.startsWith('dispatcher_uplink_ipv6_up{'))).toHaveLength(1);
    expect(lines).toContain('dispatcher_repairs_total 3');
    expect(lines).toContain('dispatcher_repair_loop 1');
    expect(lines).toContain('dispatcher_uplink_up{uplink="we\\"ird",interface="ppp1"} 0');
    expect(lines).toContain('dispatcher_probe_rtt_seconds{uplink="isp1",target="203.0.113.100"} 0.0105');
    expect(lines).toContain('dispatcher_probe_loss_ratio{uplink="isp1",target="203.0.113.100"} 0.04');
    expect(lines).toContain('dispatcher_uplink_carrying{uplink="isp1",tier="1"} 1');
    expect(lines).toContain('dispatcher_uplink_carrying{uplink="we\\"ird",tier="2"} 0');
    expect(lines).toContain('dispatcher_balance_buckets{uplink="isp1"} 64');
    expect(lines).toContain('dispatcher_policy_uplink{policy="bank",uplink="isp1"} 1');
    // Host mode: no samples.
    const host = renderMetrics({ ...input, uplinks: input.uplinks.map((u) => ({ ...u, buckets: null })) });
    expect(host).not.toMatch(/^dispatcher_balance_buckets\{/m);
    expect(lines).toContain('dispatcher_passive_stalls_total{uplink="isp1",outcome="quiet"} 4');
    expect(lines).toContain('dispatcher_passive_stalls_total{uplink="isp1",outcome="silent"} 1');
    expect(lines).toContain('dispatcher_pool_received_bytes_total{uplink="isp1"} 2000');
    // Histograms: cumulative buckets, +Inf spelled as the format wants it, then _sum and _count.
    expect(lines).toContain('# TYPE dispatcher_reconcile_duration_seconds histogram');
    expect(lines).toContain('dispatcher_reconcile_duration_seconds_bucket{le="0.005"} 2');
    expect(lines).toContain('dispatcher_reconcile_duration_seconds_bucket{le="0.01"} 3');
    expect(lines).toContain('dispatcher_reconcile_duration_seconds_bucket{le="0.025"} 5');
    expect(lines).toContain('dispatcher_reconcile_duration_seconds_bucket{le="10"} 6');
    expect(lines).toContain('dispatcher_reconcile_duration_seconds_bucket{le="+Inf"} 7');
    expect(lines).toContain('dispatcher_reconcile_duration_seconds_sum 12.3504');
    expect(lines).toContain('dispatcher_reconcile_duration_seconds_count 7');
    expect(lines).toContain('dispatcher_probe_duration_seconds_bucket{uplink="isp1",family="ipv4",le="+Inf"} 5');
    expect(lines).toContain('process_resident_memory_bytes 80000000');
    expect(lines).toContain('process_cpu_seconds_total 12.346');
    expect(lines).toContain('dispatcher_event_loop_delay_seconds{stat="max"} 0.5');
    expect(lines).toContain('dispatcher_reconcile_failures_total 1');
    expect(lines).toContain('dispatcher_ddns_updates_total 2');
  });

  test('promtool check metrics passes the exposition (the linter of the Prometheus project)', async () => {
    const result = await new ExecaRunner().run(['promtool', 'check', 'metrics'], { input: renderMetrics(input), okExitCodes: [0, 1, 3] });
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.exitCode).toBe(0);
  });

  test("the process's own figures: memory, CPU, files, and the event loop's lateness without the monitor's own tick", async () => {
    const watch = new ProcessWatch();
    watch.start();
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const stats = await watch.read();
      expect(stats.residentBytes).toBeGreaterThan(10_000_000);
      expect(stats.openFds).toBeGreaterThan(2);
      expect(stats.maxFds).toBeGreaterThanOrEqual(stats.openFds as number);
      expect(stats.startTimeSeconds).toBeLessThanOrEqual(Date.now() / 1000);
      // An idle loop: the 20 ms between the monitor's ticks is not counted as lateness.
      expect(stats.loopDelay.p50).toBeLessThan(0.015);
      expect(stats.loopDelay.max).toBeGreaterThanOrEqual(stats.loopDelay.p50);
    } finally {
      watch.stop();
    }
  });

  test('bytes per pool come from the counting rules of the captured dump', () => {
    const save = [
      '*mangle',
      ':DISPATCHER-PRE - [0:0]',
      ':DISPATCHER-COUNT - [0:0]',
      '[10:1500] -A DISPATCHER-PRE -i lan0 -j SET --map-set dispatcher-clients src --map-mark',
      '[4:600] -A DISPATCHER-PRE -m mark --mark 0x1000000/0xf000000 -j RETURN',
      '[6:900] -A DISPATCHER-PRE -m mark --mark 0x2000000/0xf000000 -j RETURN',
      '[9:9000] -A DISPATCHER-COUNT -m mark --mark 0x2000000/0xf000000 -j RETURN',
      'COMMIT',
    ].join('\n');
    expect(poolBytes(labConfig, parseIptablesSave(save))).toEqual({ isp1: { sent: 600, received: 0 }, isp2: { sent: 900, received: 9000 }, isp3: { sent: 0, received: 0 } });
  });

  test('rates are differences over time; a counter that went backwards (a flush) is 0, not negative', () => {
    const later: Traffic = { at: 3000, pools: { isp1: { sent: 300, received: 1000 } }, uplinks: { isp1: { interface: 'ppp0', rx: 30_000, tx: 5000 } } };
    expect(rates(traffic, later)).toEqual({ uplinks: { isp1: { rx: 10_000, tx: 0 } }, pools: { isp1: { sent: 100, received: 0 } } });
  });
});

describe('explain', () => {
  test('a client of a pool: mark, rule, table, route, and where it goes if its uplink dies', () => {
    const assignments = capturedAssignments();
    const [ip, record] = [...assignments].find(([, r]) => r.uplink === 'isp2') as [string, { uplink: string }];
    const result = explain(labConfig, labUplinks(), assignments, ip);
    expect(result.verdict).toBe('assigned');
    expect(result.steps).toContain('rule 4167: fwmark 0x2000000/0xf000000 lookup 3134');
    expect(result.steps).toContain('table 3134: default via isp2 (via 192.0.2.1 dev ppp1)');
    expect(result.ifUplinkDies).toContain(`if ${record.uplink} dies: table 3134 points at isp1 (via 192.0.2.1 dev ppp0 weight 2) + isp3 (via 192.0.2.9 dev wan0 weight 1)`);
    expect(result.ifUplinkDies).toContain('conntrack mark 0x20000000/0xf0000000');
  });

  test('an address outside the LAN subnets is not a client; an unseen one follows the multipath table', () => {
    expect(explain(labConfig, labUplinks(), capturedAssignments(), '10.0.0.1').verdict).toBe('not a client');
    const unseen = explain(labConfig, labUplinks(), capturedAssignments(), '198.18.200.200');
    expect(unseen.verdict).toBe('not assigned');
    expect(unseen.steps[1]).toContain('rule 4199 sends them to table 3100');
  });

  test('destination mode: the hash step names the buckets of each line, for assigned and unseen clients alike; host mode has none', () => {
    const config = { ...labConfig, balance: { ...labConfig.balance, mode: 'destination' as const } };
    const assignments = capturedAssignments();
    const [ip] = [...assignments][0] as [string, unknown];
    const step = explain(config, labUplinks(), assignments, ip).steps.find((s) => s.startsWith('balance: destination'));
    expect(step).toContain('hashed (its address and the destination address) into one of 64 buckets');
    expect(step).toContain('isp1 0–31, isp2 32–47, isp3 48–63');
    expect(explain(config, labUplinks(), assignments, '198.18.200.200').steps.some((s) => s.startsWith('balance: destination'))).toBe(true);
    expect(explain(labConfig, labUplinks(), assignments, ip).steps.some((s) => s.startsWith('balance:'))).toBe(false);
  });

  test('--to: in destination mode the bucket of the two addresses and its pool; a static route that covers the address comes first; connection mode names no line', () => {
    const destination = { ...labConfig, balance: { ...labConfig.balance, mode: 'destination' as const } };
    const assignments = capturedAssignments();
    const ip = '198.18.0.10';
    // The lab's iptables backend: HMARK's bucket for 198.18.0.10 → 203.0.113.10 is 34 (test/unit/spread.test.ts), isp2's with 2:1:1.
    const towards = explain(destination, labUplinks(), assignments, ip, { to: '203.0.113.10' });
    expect(towards.to).toEqual({ address: '203.0.113.10', bucket: 34, pool: 'isp2', policy: null, mark: 0x02000000, uplink: 'isp2' });
    expect(towards.steps).toContain("to 203.0.113.10: balance: destination — the hash of 198.18.0.10 and 203.0.113.10 is bucket 34 of 64, isp2's: table 3134, default via isp2 (via 192.0.2.1 dev ppp1)");
    const routed = { ...destination, staticRoutes: [{ destination: '203.0.113.0/28', via: ['isp3', 'isp1'] }] };
    expect(explain(routed, labUplinks(), assignments, ip, { to: '203.0.113.10' }).to).toEqual({ address: '203.0.113.10', bucket: null, pool: null, policy: null, mark: null, uplink: null });
    expect(explain(routed, labUplinks(), assignments, ip, { to: '203.0.113.10' }).steps.some((s) => s.includes('the static route 203.0.113.0/28 covers it'))).toBe(true);
    const connection = { ...labConfig, balance: { ...labConfig.balance, mode: 'connection' as const } };
    expect(explain(connection, labUplinks(), assignments, ip, { to: '203.0.113.10' }).steps.some((s) => s.includes('no single line can be named'))).toBe(true);
  });
});

describe('top', () => {
  test('sparklines scale to the largest value; gaps stay blank', () => {
    expect(sparkline([0, 1, 2, 4, 8])).toBe('▁▁▂▄█');
    expect(sparkline([0, 0])).toBe('▁▁');
    expect(sparkline([null, 5])).toBe(' █');
  });

  test('rates in bits per second', () => {
    expect([rate(0), rate(100), rate(250_000), rate(2e9)]).toEqual(['0 bit/s', '800 bit/s', '2.0 Mbit/s', '16.0 Gbit/s']);
  });

  test('a frame: one row per uplink, a down uplink with its reason, charts below', () => {
    const frame = renderTop({
      at: new Date(0),
      clients: 3,
      ddns: null,
      uplinks: [
        { name: 'isp1', interface: 'ppp0', state: 'up', clients: 2, reason: '', rx: 1000, tx: 500, rttMs: 12.34, lossPercent: 0, throughputHistory: [1, 2, 3], rttHistory: [10, 12, 12.34] },
        { name: 'isp2', interface: 'ppp1', state: 'down', clients: 1, reason: 'ppp ip-down', rx: 0, tx: 0, rttMs: null, lossPercent: 100, throughputHistory: [0, 0, 0], rttHistory: [5, null, null] },
      ],
    });
    expect(frame).toMatch(/^isp1 +ppp0 +up +2 +8\.0 kbit\/s +4\.0 kbit\/s +12\.3 ms +0% *$/m);
    expect(frame).toMatch(/^isp2 +ppp1 +DOWN +1 +0 bit\/s +0 bit\/s +- +100% +ppp ip-down$/m);
    expect(frame).toContain('isp1         traffic ▃▅█');
  });

  test('a terminal narrower than 80 columns gets the compact layout, and no line is wider than the terminal', () => {
    const uplink = {
      name: 'isp1',
      interface: 'ppp0',
      state: 'down',
      clients: 2,
      reason: 'a very long reason why the line is down, longer than any terminal is wide',
      rx: 1000,
      tx: 500,
      rttMs: null,
      lossPercent: 100,
      throughputHistory: Array.from({ length: 60 }, (_, i) => i),
      rttHistory: [10],
    };
    const frame = { at: new Date(0), clients: 3, ddns: 'office.example.test in sync', uplinks: [uplink] };
    const narrow = renderTop(frame, 60);
    expect(narrow).toMatch(/^UPLINK +STATE +CLIENTS +RX +TX +RTT$/m);
    expect(narrow).toMatch(/^isp1 +DOWN +2 +8\.0 kbit\/s +4\.0 kbit\/s +-$/m);
    expect(narrow).not.toContain('ppp0');
    expect(narrow.split('\n').every((line) => [...line].length <= 60)).toBe(true);
    const wide = renderTop(frame, 100);
    expect(wide).toContain('UPLINK  IF    STATE');
    expect(wide.split('\n').every((line) => [...line].length <= 100)).toBe(true);
    expect(wide.split('\n').some((line) => [...line].length === 100)).toBe(true);
  });
});

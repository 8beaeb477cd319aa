// One gateway of a pair, seen from outside: conntrackd's answer read
// (parse/conntrackd-stats.ts) and asked at most every 10 s by the daemon
// (engine/conntrackd-health.ts), the dispatcher_ha_ metrics, and doctor's
// judgement of the rendered files, keepalived, conntrackd, the sync link and
// the key (core/ha-doctor.ts, gathered by system/ha-doctor.ts).

import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { diagnose } from '../../src/core/doctor.js';
import { firstDifference, type HaDoctorFacts, haFindings } from '../../src/core/ha-doctor.js';
import { type HaMetrics, renderMetrics, type MetricsInput } from '../../src/core/metrics.js';
import { CHECK_MS, ConntrackdHealth } from '../../src/engine/conntrackd-health.js';
import type { Link } from '../../src/model/kernel.js';
import { CommandError } from '../../src/model/errors.js';
import { conntrackdComplaint, parseConntrackdStats } from '../../src/parse/conntrackd-stats.js';
import { haFiles } from '../../src/render/ha-files.js';
import { conntrackdStats, recordConntrackdConf } from '../../src/system/conntrackd.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { gatherHaFacts, keepalivedRunsWith } from '../../src/system/ha-doctor.js';
import type { Logger } from '../../src/system/logger.js';
import { FakeRunner } from '../helpers/fake-runner.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { healthyDoctorFacts } from '../helpers/scenario.js';

const CONFIG = `
lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }
uplinks:
  - { name: isp1, interface: wan1, gateway: 198.51.100.1, ha_address: 198.51.100.10/26 }
  - { name: isp2, interface: ppp0 }
state: /var/lib/dispatcher-a
ha: { peer: 198.19.255.2, interface: sync0, key: /etc/dispatcher/ha.key, lan_address: 198.18.0.1/16, priority: 150 }
`;
const config = parseConfig(CONFIG, 'a.yaml');
const NOTIFY = { node: '/usr/bin/node', dispatcher: '/opt/dispatcher/bin/dispatcher', config: '/etc/dispatcher/config.yaml', socket: '/run/dispatcher.sock' };

/** What conntrackd 1.4 prints for `-s` on a backup holding 10 of the master's connections (UDP channel). */
const STATS = `cache internal:
current active connections:                0
connections created:                       0    failed:            0
connections updated:                       0    failed:            0
connections destroyed:                     0    failed:            0

cache external:
current active connections:               10
connections created:                     888    failed:            0
connections updated:                     134    failed:            0
connections destroyed:                   878    failed:            0

traffic processed:
                   0 Bytes                         0 Pckts

UDP traffic (active device=sync0):
              234184 Bytes sent               907504 Bytes recv
               14663 Pckts sent                21495 Pckts recv
                   2 Error send                    0 Error recv

message tracking:
                   0 Malformed msgs                    3 Lost msgs

`;

describe("conntrackd's statistics", () => {
  test('the caches and the sync link errors; a section it does not print stays null', () => {
    expect(parseConntrackdStats(STATS)).toEqual({ caches: { internal: 0, external: 10 }, errors: { send: 2, receive: 0, malformed: 0, lost: 3 } });
    expect(parseConntrackdStats('')).toEqual({ caches: null, errors: null });
    expect(parseConntrackdStats(STATS.replace(/message tracking:[\s\S]*/, '')).errors).toBeNull();
  });

  test('its complaint without the time and pid of its log lines', () => {
    expect(conntrackdComplaint("[Tue Dec  1 02:27:12 2026] (pid=5922) [ERROR] can't connect: is conntrackd running? appropriate permissions?")).toBe("can't connect: is conntrackd running? appropriate permissions?");
    expect(conntrackdComplaint('timed out after 5000 ms')).toBe('timed out after 5000 ms');
  });
});

/** A logger that keeps what it was told. */
function recordingLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  const keep = (level: string) => (msg: string) => void lines.push(`${level} ${msg}`);
  return { lines, debug: keep('debug'), info: keep('info'), warn: keep('warn'), error: keep('error') };
}

describe('the daemon asks conntrackd every 10 s', () => {
  const refused = new CommandError(['conntrackd'], 1, "[Tue Dec  1 02:27:12 2026] (pid=5922) [ERROR] can't connect: is conntrackd running? appropriate permissions?");

  test('at start and then once a period; a stop and a recovery are each told once, in the log and on the timeline', async () => {
    const clock = new ManualClock();
    const log = recordingLogger();
    const notes: string[] = [];
    let answers: (string | Error)[] = [STATS, refused, refused, STATS];
    let asked = 0;
    const health = new ConntrackdHealth({
      ask: async () => {
        asked++;
        const next = answers[0] as string | Error;
        if (answers.length > 1) answers = answers.slice(1);
        if (next instanceof Error) throw next;
        return next;
      },
      clock,
      log,
      note: (kind, text) => void notes.push(`${kind}: ${text}`),
    });
    expect(health.latest()).toBeNull();
    health.start();
    await clock.flush();
    expect(asked).toBe(1);
    expect(health.latest()).toMatchObject({ ok: true, problem: null, checkedAt: clock.now(), stats: { caches: { internal: 0, external: 10 } } });
    // Nothing between two periods.
    await clock.advance(CHECK_MS - 1);
    expect(asked).toBe(1);
    await clock.advance(1);
    expect(asked).toBe(2);
    expect(health.latest()).toMatchObject({ ok: false, problem: "can't connect: is conntrackd running? appropriate permissions?", stats: null });
    await clock.advance(CHECK_MS);
    expect(asked).toBe(3);
    await clock.advance(CHECK_MS);
    expect(health.latest()?.ok).toBe(true);
    expect(notes).toEqual(["ha: conntrackd does not answer (can't connect: is conntrackd running? appropriate permissions?): connections are not synced", 'ha: conntrackd answers again']);
    expect(log.lines.filter((l) => !l.startsWith('debug'))).toEqual(['error conntrackd does not answer: connections are not synced, and a takeover would drop them', 'info conntrackd answers again']);
    health.stop();
    await clock.advance(10 * CHECK_MS);
    expect(asked).toBe(4);
  });

  test('a check under way is joined, never doubled', async () => {
    let release: (text: string) => void = () => undefined;
    let asked = 0;
    const health = new ConntrackdHealth({
      ask: () => {
        asked++;
        return new Promise<string>((resolve) => (release = resolve));
      },
      clock: new ManualClock(),
      log: recordingLogger(),
      note: () => undefined,
    });
    const first = health.check();
    const second = health.check();
    expect(asked).toBe(1);
    release(STATS);
    expect(await first).toBe(await second);
    // Once answered, the next check asks again.
    const third = health.check();
    expect(asked).toBe(2);
    release(STATS);
    expect((await third).ok).toBe(true);
  });

  test('a gateway that never rendered is told which command to run (system/conntrackd.ts)', async () => {
    const state = await mkdtemp(join(tmpdir(), 'dsp-ct-'));
    try {
      await expect(conntrackdStats(new FakeRunner(), state)).rejects.toThrow('dispatcher ha render --dir DIR');
      await mkdir(join(state, 'ha'));
      await recordConntrackdConf(state, '/etc/dispatcher/ha/conntrackd.conf');
      const runner = new FakeRunner().answer('conntrackd', STATS);
      expect(await conntrackdStats(runner, state)).toBe(STATS);
      expect(runner.calls.map((c) => c.argv)).toEqual([['conntrackd', '-C', '/etc/dispatcher/ha/conntrackd.conf', '-s']]);
    } finally {
      await rm(state, { recursive: true, force: true });
    }
  });
});

describe('the metrics of a pair', () => {
  const base: MetricsInput = {
    uplinks: [],
    clients: 0,
    policies: [],
    traffic: { at: 0, pools: {}, uplinks: {} },
    runs: 0,
    failedRuns: 0,
    runDurations: { buckets: [[Number.POSITIVE_INFINITY, 0]], sum: 0, count: 0 },
    probeRtts: [],
    lastRunSeconds: null,
    repairs: { total: 0, fighting: false },
    ddns: null,
    ha: null,
    process: { residentBytes: 1, cpuSeconds: 1, openFds: null, maxFds: null, startTimeSeconds: 1, loopDelay: { p50: 0, p99: 0, max: 0 } },
  };
  const master: HaMetrics = {
    role: 'master',
    channelUp: true,
    lagSeconds: 0.012,
    lastReceivedSeconds: null,
    lastRefusedSeconds: 1_796_000_100,
    conntrackd: { up: true, caches: { internal: 12, external: 0 }, errors: { send: 0, receive: 0, malformed: 0, lost: 3 } },
  };

  test('alone: no dispatcher_ha_ family at all', () => {
    expect(renderMetrics(base)).not.toContain('dispatcher_ha_');
  });

  test("the master: its role, the channel, the lag, conntrackd's answer, caches and errors", () => {
    const lines = renderMetrics({ ...base, ha: master }).split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'dispatcher_ha_role{role="master"} 1',
        'dispatcher_ha_role{role="backup"} 0',
        'dispatcher_ha_role{role="fault"} 0',
        'dispatcher_ha_role{role="unknown"} 0',
        'dispatcher_ha_channel_up 1',
        'dispatcher_ha_sync_lag_seconds 0.012',
        'dispatcher_ha_last_refused_timestamp_seconds 1796000100',
        'dispatcher_ha_conntrackd_up 1',
        'dispatcher_ha_conntrackd_connections{cache="internal"} 12',
        'dispatcher_ha_conntrackd_connections{cache="external"} 0',
        'dispatcher_ha_conntrackd_sync_errors_total{kind="lost"} 3',
      ]),
    );
    // Never heard from a master: no made-up sample.
    expect(lines.some((l) => l.includes('dispatcher_ha_last_received_timestamp_seconds'))).toBe(false);
  });

  test("a backup: the master's channel not heard, no lag of its own (it only hears), when it last applied a change; conntrackd down, without figures", () => {
    const text = renderMetrics({ ...base, ha: { role: 'backup', channelUp: false, lagSeconds: null, lastReceivedSeconds: 1_796_000_000.5, lastRefusedSeconds: null, conntrackd: { up: false, caches: null, errors: null } } });
    expect(text).toContain('dispatcher_ha_role{role="backup"} 1\n');
    expect(text).toContain('dispatcher_ha_channel_up 0\n');
    expect(text).toContain('dispatcher_ha_last_received_timestamp_seconds 1796000000.5\n');
    expect(text).toContain('dispatcher_ha_conntrackd_up 0\n');
    for (const absent of ['dispatcher_ha_sync_lag_seconds', 'dispatcher_ha_last_refused', 'dispatcher_ha_conntrackd_connections', 'dispatcher_ha_conntrackd_sync_errors']) expect(text).not.toContain(absent);
    // Before conntrackd's first answer: no conntrackd family.
    expect(renderMetrics({ ...base, ha: { ...master, conntrackd: null } })).not.toContain('dispatcher_ha_conntrackd');
  });

  test('promtool check metrics passes the exposition of a pair', async () => {
    const result = await new ExecaRunner().run(['promtool', 'check', 'metrics'], { input: renderMetrics({ ...base, ha: master }), okExitCodes: [0, 1, 3] });
    expect(`${result.stdout}${result.stderr}`).toBe('');
    expect(result.exitCode).toBe(0);
  });
});

const syncLink: Link = { name: 'sync0', index: 9, up: true, lowerUp: true, pointToPoint: false, addresses: [{ local: '198.19.255.1', prefixlen: 30 }], addresses6: [], owned6: [] };

/** A healthy pair's facts: rendered in /etc/dispatcher/ha, all current, everything running. */
function pairFacts(overrides: Partial<HaDoctorFacts> = {}): HaDoctorFacts {
  const files = haFiles(config, '/etc/dispatcher/ha', '198.19.255.1', NOTIFY).map((f) => ({ name: f.name, path: f.path, want: f.text, have: f.text, mode: f.mode }));
  return {
    configPath: '/etc/dispatcher/config.yaml',
    dir: '/etc/dispatcher/ha',
    files,
    runtime: '/var/lib/dispatcher-a/ha',
    keepalivedRunning: true,
    conntrackd: { answered: true, internal: 12, external: 0 },
    key: { mode: 0o600, length: 64 },
    daemon: { role: 'master', peer: '198.19.255.2', sending: true, lagMs: 3, problem: null, hearing: false, lastReceived: null, refused: null, conntrackd: null },
    ...overrides,
  };
}

describe('doctor on one gateway of a pair', () => {
  const judge = (facts: HaDoctorFacts, links: readonly Link[] = [syncLink]) => haFindings(config, links, facts);
  const of = (findings: ReturnType<typeof judge>, check: string) => findings.find((f) => f.check === check);

  test('a healthy pair: every check ok; nothing of it on a gateway alone', () => {
    const findings = judge(pairFacts());
    expect(findings.map((f) => [f.check, f.severity])).toEqual([
      ['ha:file:keepalived.conf', 'ok'],
      ['ha:file:conntrackd.conf', 'ok'],
      ['ha:file:notify', 'ok'],
      ['ha:keepalived', 'ok'],
      ['ha:conntrackd', 'ok'],
      ['ha:interface:sync0', 'ok'],
      ['ha:key', 'ok'],
      ['ha:role', 'ok'],
    ]);
    expect(of(findings, 'ha:conntrackd')?.summary).toBe("conntrackd answers (12 connections of its own, 0 of the peer's)");
    expect(haFindings(parseConfig(CONFIG.replace(/^ha: .*$/m, '').replace(', ha_address: 198.51.100.10/26', ''), 'a.yaml'), [syncLink], pairFacts())).toEqual([]);
  });

  test('keepalived and conntrackd are tools a pair needs, with their packages', () => {
    const findings = diagnose(healthyDoctorFacts({ config, tools: { ...healthyDoctorFacts().tools, keepalived: null, conntrackd: '/usr/sbin/conntrackd' }, ha: pairFacts() }));
    expect(of(findings, 'tool:keepalived')).toMatchObject({ severity: 'fail', fix: 'apt-get install keepalived' });
    expect(of(findings, 'tool:conntrackd')?.severity).toBe('ok');
    expect(of(diagnose(healthyDoctorFacts()), 'tool:keepalived')).toBeUndefined();
  });

  test('never rendered: one failure naming the command, with this config', () => {
    const findings = judge(pairFacts({ dir: null, files: [], keepalivedRunning: null, conntrackd: null }));
    expect(findings.filter((f) => f.severity !== 'ok')).toEqual([
      {
        check: 'ha:render',
        severity: 'fail',
        summary: expect.stringContaining('`dispatcher ha render` never ran'),
        fix: 'dispatcher --config /etc/dispatcher/config.yaml ha render --dir /etc/dispatcher/ha, then run conntrackd and keepalived as it prints (e.g. as systemd services)',
      },
    ]);
  });

  test('a stale file names its first difference and the render, then what takes it up; a missing one fails', () => {
    const facts = pairFacts();
    const [keepalived, conntrackd, notify] = facts.files as [HaDoctorFacts['files'][number], HaDoctorFacts['files'][number], HaDoctorFacts['files'][number]];
    const findings = judge({
      ...facts,
      files: [
        { ...keepalived, have: (keepalived.have as string).replace('priority 150', 'priority 100') },
        { ...conntrackd, have: null, mode: null },
        { ...notify, have: '#!/bin/sh\nexec true\n' },
      ],
    });
    expect(of(findings, 'ha:file:keepalived.conf')).toEqual({
      check: 'ha:file:keepalived.conf',
      severity: 'warn',
      summary: expect.stringMatching(/\(line \d+ is "priority 100", a render now writes "priority 150"\): it runs as rendered before the config changed$/),
      fix: 'dispatcher --config /etc/dispatcher/config.yaml ha render --dir /etc/dispatcher/ha, then reload keepalived (kill -HUP $(cat /var/lib/dispatcher-a/ha/keepalived.pid))',
    });
    expect(of(findings, 'ha:file:conntrackd.conf')).toMatchObject({
      severity: 'fail',
      summary: '/etc/dispatcher/ha/conntrackd.conf is missing (`dispatcher ha render` wrote it there)',
      fix: expect.stringContaining('then restart conntrackd'),
    });
    expect(of(findings, 'ha:file:notify')).toMatchObject({ severity: 'warn', fix: expect.stringContaining('runs it afresh') });
  });

  test('a notify script others may change: keepalived will not run it', () => {
    const facts = pairFacts();
    const files = facts.files.map((f) => (f.name === 'notify' ? { ...f, mode: 0o775 } : f));
    expect(of(judge({ ...facts, files }), 'ha:file:notify')).toMatchObject({
      severity: 'fail',
      summary: expect.stringContaining('mode 775'),
      fix: 'chmod 755 /etc/dispatcher/ha/notify (and no directory above it writable by others)',
    });
  });

  test('conntrackd.conf cannot be compared while the sync link has no address: said, not guessed', () => {
    const facts = pairFacts();
    const files = facts.files.map((f) => (f.name === 'conntrackd.conf' ? { ...f, want: null } : f));
    const findings = judge({ ...facts, files }, [{ ...syncLink, addresses: [] }]);
    expect(of(findings, 'ha:file:conntrackd.conf')?.severity).toBe('info');
    expect(of(findings, 'ha:interface:sync0')).toMatchObject({ severity: 'fail', summary: 'the sync link sync0 has no IPv4 address' });
  });

  test('keepalived not running, conntrackd not answering: each with the command that starts it', () => {
    const findings = judge(pairFacts({ keepalivedRunning: false, conntrackd: { answered: false, said: "can't connect: is conntrackd running? appropriate permissions?" } }));
    expect(of(findings, 'ha:keepalived')).toMatchObject({
      severity: 'fail',
      summary: expect.stringContaining('stays fenced'),
      fix: 'keepalived -n -l -f /etc/dispatcher/ha/keepalived.conf -p /var/lib/dispatcher-a/ha/keepalived.pid -r /var/lib/dispatcher-a/ha/vrrp.pid -c /var/lib/dispatcher-a/ha/checkers.pid (e.g. as a systemd service)',
    });
    expect(of(findings, 'ha:conntrackd')).toMatchObject({ severity: 'fail', summary: expect.stringContaining("can't connect"), fix: 'conntrackd -C /etc/dispatcher/ha/conntrackd.conf (e.g. as a systemd service)' });
  });

  test('the sync link: missing, down, without carrier, or not on the peer’s subnet', () => {
    const link = (links: readonly Link[]) => of(judge(pairFacts(), links), 'ha:interface:sync0');
    expect(link([])).toMatchObject({ severity: 'fail', summary: expect.stringContaining('does not exist') });
    expect(link([{ ...syncLink, up: false }])).toMatchObject({ severity: 'fail', fix: expect.stringContaining('ip link set sync0 up') });
    expect(link([{ ...syncLink, lowerUp: false }])).toMatchObject({ severity: 'fail', summary: expect.stringContaining('no carrier') });
    expect(link([{ ...syncLink, addresses: [{ local: '10.9.9.1', prefixlen: 30 }] }])).toMatchObject({ severity: 'warn', summary: expect.stringContaining('not on the sync link') });
  });

  test('the key: unreadable, empty, short, or readable by others (the daemon refuses it: chmod 600)', () => {
    const key = (k: HaDoctorFacts['key']) => of(judge(pairFacts({ key: k })), 'ha:key');
    expect(key({ error: 'ENOENT' })).toMatchObject({ severity: 'fail', summary: expect.stringContaining('cannot be read (ENOENT)'), fix: expect.stringContaining('openssl rand -hex 32 > /etc/dispatcher/ha.key') });
    expect(key({ mode: 0o600, length: 0 })).toMatchObject({ severity: 'fail', summary: expect.stringContaining('is empty') });
    expect(key({ mode: 0o600, length: 8 })).toMatchObject({ severity: 'fail', summary: expect.stringContaining('fewer than 16') });
    expect(key({ mode: 0o644, length: 64 })).toMatchObject({ severity: 'fail', summary: expect.stringContaining('mode 644'), fix: 'chmod 600 /etc/dispatcher/ha.key' });
    expect(key({ mode: 0o400, length: 64 })?.severity).toBe('ok');
  });

  test('the running daemon: a role keepalived never gave, a master that cannot reach the backup', () => {
    const daemon = pairFacts().daemon as NonNullable<HaDoctorFacts['daemon']>;
    expect(of(judge(pairFacts({ daemon: { ...daemon, role: 'unknown' } })), 'ha:role')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('stays fenced') });
    expect(of(judge(pairFacts({ daemon: { ...daemon, sending: false, problem: 'connect ECONNREFUSED 198.19.255.2:7790' } })), 'ha:role')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('ECONNREFUSED') });
    expect(of(judge(pairFacts({ daemon: { ...daemon, role: 'backup', sending: false, hearing: true } })), 'ha:role')).toMatchObject({ severity: 'ok', summary: 'the daemon is backup, hearing the master' });
    expect(of(judge(pairFacts({ daemon: { ...daemon, role: 'backup', sending: false, hearing: false } })), 'ha:role')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('not kept up to date') });
    expect(of(judge(pairFacts({ daemon: { ...daemon, role: 'fault', sending: false } })), 'ha:role')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('cannot take over') });
    expect(of(judge(pairFacts({ daemon: null })), 'ha:role')).toBeUndefined();
  });

  test('firstDifference: the line number and both lines', () => {
    expect(firstDifference('a\nb\nc', 'a\nB\nc')).toBe('line 2 is "b", a render now writes "B"');
    expect(firstDifference('a\n', 'a\nb\n')).toBe('line 2 is "", a render now writes "b"');
    expect(firstDifference('a', 'a\nb')).toBe('line 2 is (end of file), a render now writes "b"');
  });
});

describe("doctor's gathering on one gateway of a pair (system/ha-doctor.ts)", () => {
  let root = '';
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'dsp-ha-doctor-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('reads what the last render wrote and renders it again; the key by mode and length only; keepalived by its command line', async () => {
    const state = join(root, 'state');
    const dir = join(root, 'etc-ha');
    const key = join(root, 'ha.key');
    const proc = join(root, 'proc');
    const cfg = parseConfig(CONFIG.replace('/var/lib/dispatcher-a', state).replace('/etc/dispatcher/ha.key', key), 'a.yaml');
    await mkdir(join(state, 'ha'), { recursive: true });
    await mkdir(dir);
    for (const file of haFiles(cfg, dir, '198.19.255.1', NOTIFY)) await writeFile(file.path, file.text as string, { mode: file.mode });
    await writeFile(join(dir, 'keepalived.conf'), 'stale\n');
    await recordConntrackdConf(state, join(dir, 'conntrackd.conf'));
    await writeFile(key, 'a-secret-of-enough-length\n');
    await chmod(key, 0o640);
    await mkdir(join(proc, '4242'), { recursive: true });
    await writeFile(join(proc, '4242', 'cmdline'), ['/usr/sbin/keepalived', '-n', '-l', '-f', join(dir, 'keepalived.conf'), ''].join('\0'));
    const runner = new FakeRunner().answer('conntrackd', STATS);
    const facts = (await gatherHaFacts(runner, cfg, [syncLink], { notify: NOTIFY, daemon: null, conntrackdInstalled: true }, proc)) as HaDoctorFacts;
    expect(facts.dir).toBe(dir);
    expect(facts.files.map((f) => [f.name, f.have === f.want, f.mode])).toEqual([
      ['keepalived.conf', false, 0o644],
      ['conntrackd.conf', true, 0o644],
      ['notify', true, 0o755],
    ]);
    expect(facts.key).toEqual({ mode: 0o640, length: 25 });
    expect(facts.keepalivedRunning).toBe(true);
    expect(facts.conntrackd).toEqual({ answered: true, internal: 0, external: 10 });
    expect(runner.calls.map((c) => c.argv)).toEqual([['conntrackd', '-C', join(dir, 'conntrackd.conf'), '-s']]);
    expect(await keepalivedRunsWith(join(root, 'other', 'keepalived.conf'), proc)).toBe(false);
    // Never rendered for this state directory: nothing is read or asked.
    const fresh = parseConfig(CONFIG.replace('/var/lib/dispatcher-a', join(root, 'fresh')).replace('/etc/dispatcher/ha.key', key), 'a.yaml');
    expect(await gatherHaFacts(new FakeRunner(), fresh, [syncLink], { notify: NOTIFY, daemon: null, conntrackdInstalled: true }, proc)).toMatchObject({ dir: null, files: [], keepalivedRunning: null, conntrackd: null });
    expect(await gatherHaFacts(new FakeRunner(), parseConfig(CONFIG.replace(/^ha: .*$/m, '').replace(', ha_address: 198.51.100.10/26', ''), 'a.yaml'), [], { notify: NOTIFY, daemon: null, conntrackdInstalled: true })).toBeNull();
  });
});

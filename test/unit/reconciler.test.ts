import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientJournal, type SyncBody } from '../../src/core/ha-sync.js';
import type { Logger } from '../../src/system/logger.js';
import { CLIENT_SAVE_MS, LAST_SEEN_SAVE_MS, RunPersistence } from '../../src/engine/persistence.js';
import { QUICK_RETRY_MS } from '../../src/engine/loader.js';
import { NEIGHBOUR_RESYNC_MS, NETFILTER_RESYNC_MS, Reconciler, ROUTING_RESYNC_MS, SCHEDULED_SCAN_REASON, TRUST_MS } from '../../src/engine/reconciler.js';
import type { Config } from '../../src/model/config.js';
import type { ClientRecord } from '../../src/model/state.js';
import { systemClock } from '../../src/system/clock.js';
import { Store } from '../../src/system/store.js';
import { fixture } from '../helpers/fixtures.js';
import { changesBetween } from '../helpers/ha-changes.js';
import { ManualClock } from '../helpers/manual-clock.js';
import { backend, capturedAssignments, capturedGatewayRunner, labConfig, pristineGatewayRunner } from '../helpers/scenario.js';

const logged: { level: string; msg: string; fields: Record<string, unknown> }[] = [];
const log: Logger = {
  debug: (msg, fields = {}) => void logged.push({ level: 'debug', msg, fields }),
  info: (msg, fields = {}) => void logged.push({ level: 'info', msg, fields }),
  warn: (msg, fields = {}) => void logged.push({ level: 'warn', msg, fields }),
  error: (msg, fields = {}) => void logged.push({ level: 'error', msg, fields }),
};

describe('reconciler', () => {
  let dir: string;
  let config: Config;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-unit-'));
    config = { ...labConfig, state: dir };
    logged.length = 0;
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a gateway that already matches gets no writes at all', async () => {
    const runner = capturedGatewayRunner();
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, capturedAssignments());
    const report = await reconciler.request('scan', { scan: true });
    expect(report).toMatchObject({ ok: true, applied: { ipset: 0, iptables: 0, ip: 0, sysctl: 0 }, added: 0 });
    expect(runner.writes()).toEqual([]);
  });

  test('first start: one sysctl, one ipset restore, one iptables-restore, one ip -batch; originals kept for flush', async () => {
    const runner = pristineGatewayRunner();
    const store = await Store.open(dir);
    const report = await new Reconciler({ runner, store, backend, log }, config, new Map()).request('start', { scan: true });
    expect(report).toMatchObject({ ok: true, added: 8 });
    expect(runner.writes().map((c) => c.argv.slice(0, 3).join(' '))).toEqual(['sysctl -q -w', 'ipset -exist restore', 'iptables-restore --wait 10', 'ip -batch -']);
    expect(store.data.sysctlOriginals).toEqual({ 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.ppp0.rp_filter': '0', 'net.ipv4.conf.ppp1.rp_filter': '0', 'net.ipv4.conf.wan0.rp_filter': '0' });
    expect(store.data.createdTables).toEqual(['mangle', 'nat']);
    // Written as the file holds them: the store lets go of its own copy once the daemon hands its clients over.
    expect(Object.keys((await Store.peek(dir))?.clients ?? {})).toHaveLength(8);
    expect(store.data.ranges).toEqual({ tables: { base: 3100 }, rules: { priority: 4100 } });
  });

  test('the router advertisements failing (radvd missing, refusing its config) leave the run a success, logged once per reason and said by the reconciler; they recover by themselves', async () => {
    const runner = capturedGatewayRunner();
    let failing = true;
    const asked: unknown[] = [];
    const advertiser = {
      sync: async (announcement: unknown) => {
        asked.push(announcement);
        if (failing) throw new Error('spawn radvd ENOENT');
        return 'unchanged' as const;
      },
    };
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log, advertiser }, config, capturedAssignments());
    expect(await reconciler.request('scan', { scan: true })).toMatchObject({ ok: true });
    expect(await reconciler.request('scan again', { scan: true })).toMatchObject({ ok: true });
    // IPv6 is off in this config: radvd is asked to be stopped (null), every run.
    expect(asked).toEqual([null, null]);
    expect(reconciler.advertisementError).toBe('spawn radvd ENOENT');
    expect(logged.filter((l) => l.msg.startsWith('router advertisements failed'))).toHaveLength(1);
    failing = false;
    expect(await reconciler.request('later', { scan: true })).toMatchObject({ ok: true });
    expect(reconciler.advertisementError).toBeNull();
  });

  test("a journal kept (a pair's master): what edits and runs changed is noted, and taking it finds what comparing the whole tables finds", async () => {
    const reconciler = new Reconciler({ runner: capturedGatewayRunner(), store: await Store.open(dir), backend, log }, config, capturedAssignments());
    const journal = new ClientJournal();
    reconciler.keepJournal(journal);
    let sent = new Map(reconciler.clients);
    const [pinned, released] = [...sent.keys()] as [string, string];
    // An operator's two edits and a scan in one run: the scan learns every client's MAC (the store had none).
    await reconciler.request('scan', {
      scan: true,
      edit: (clients) => {
        clients.set(pinned, { ...(clients.get(pinned) as ClientRecord), uplink: 'isp3', pinned: true });
        clients.delete(released);
      },
    });
    const first = journal.take(reconciler.clients) as Extract<SyncBody, { kind: 'changes' }>;
    expect(first).toEqual(changesBetween(sent, reconciler.clients));
    expect(first.set[pinned]).toMatchObject({ uplink: 'isp3', pinned: true });
    expect(Object.values(first.set).every((r) => r.mac !== '')).toBe(true);
    sent = new Map(reconciler.clients);
    // The same neighbours again: seen again only, nothing noted.
    await reconciler.request('scan again', { scan: true });
    expect(journal.size).toBe(0);
    expect(changesBetween(sent, reconciler.clients)).toBeNull();
    // A new client: noted, and only it.
    await reconciler.request('neighbour', { neighbours: [{ ip: '198.18.3.3', mac: '02:00:00:00:03:03', dev: 'lan0', complete: true }] });
    expect(journal.take(reconciler.clients)).toEqual({ kind: 'changes', set: { '198.18.3.3': reconciler.clients.get('198.18.3.3') }, del: [] });
    // No journal kept: nothing noted.
    reconciler.keepJournal(null);
    await reconciler.request('release', { edit: (clients) => clients.delete('198.18.3.3') });
    expect(journal.size).toBe(0);
  });

  test("becoming master (a pair's takeover) counts every client as seen now: a backup is not told when they were seen", async () => {
    const assignments = capturedAssignments();
    // Seen long ago, as far as this gateway knows.
    const lastSeen = new Map([...assignments.keys()].map((ip) => [ip, 1]));
    const reconciler = new Reconciler({ runner: capturedGatewayRunner(), store: await Store.open(dir), backend, log }, config, assignments, lastSeen);
    const clients = reconciler.clients;
    const now = Date.now();
    await reconciler.setRole('backup');
    expect([...reconciler.lastSeen.values()].every((t) => t === 1)).toBe(true);
    await reconciler.setRole('master');
    expect(reconciler.lastSeen.size).toBe(assignments.size);
    for (const ip of assignments.keys()) expect(reconciler.lastSeen.get(ip)).toBeGreaterThanOrEqual(now);
    // No record was written for it: the assignments are the same version.
    expect(reconciler.clients).toBe(clients);
  });

  test('a whole read that finds the clients present notes when they were seen and makes no new version of the assignments; a client released takes its time with it', async () => {
    const runner = capturedGatewayRunner();
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, new Map());
    await reconciler.request('start', { scan: true });
    const clients = reconciler.clients;
    expect(clients.size).toBeGreaterThan(0);
    const first = new Map(reconciler.lastSeen);
    expect([...first.keys()].sort()).toEqual([...clients.keys()].sort());
    await new Promise((resolve) => setTimeout(resolve, 5));
    const again = await reconciler.request('scan', { scan: true });
    expect(again.ok).toBe(true);
    expect(reconciler.clients).toBe(clients);
    for (const [ip, at] of first) expect(reconciler.lastSeen.get(ip)).toBeGreaterThan(at);
    const [released] = [...clients.keys()] as [string];
    await reconciler.request('release', { edit: (edits) => edits.delete(released) });
    expect(reconciler.clients.has(released)).toBe(false);
    expect(reconciler.lastSeen.has(released)).toBe(false);
    expect(reconciler.lastSeen.size).toBe(reconciler.clients.size);
  });

  test('a new neighbour is one ipset line, nothing else, told to the ipset kept running (no process)', async () => {
    const runner = capturedGatewayRunner();
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, capturedAssignments());
    const report = await reconciler.request('neighbour', { neighbours: [{ ip: '198.18.3.3', mac: '02:00:00:00:03:03', dev: 'lan0', complete: true }] });
    expect(report.added).toBe(1);
    // Loads are 4/2 = 2/1 = 2/1: tied, so the higher weight (isp1, pool mark 1) takes it.
    expect(runner.writes()).toEqual([{ argv: ['stdbuf', '-oL', 'ipset', '-'], input: 'add dispatcher-clients 198.18.3.3 skbmark 0x1000000/0xf000000 -exist\n' }]);
    await reconciler.stop();
  });

  test('a complaint of the ipset kept running: the change is loaded by ipset restore at once, and by restore alone for a minute; then the session again', async () => {
    const runner = capturedGatewayRunner();
    let offset = 0;
    const clock = { ...systemClock, now: () => Date.now() + offset };
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log, clock }, config, capturedAssignments());
    const add = (n: number) => reconciler.request('neighbour', { neighbours: [{ ip: `198.18.3.${n}`, mac: `02:00:00:00:03:0${n}`, dev: 'lan0', complete: true }] });
    runner.failOnce('ipset add dispatcher-clients', 1, 'ipset v7.17: Kernel error received: Cannot allocate memory');
    expect((await add(4)).ok).toBe(true);
    const how = (from: number) =>
      runner
        .writes()
        .slice(from)
        .map((c) => `${c.argv.join(' ')}: ${c.input}`);
    expect(how(0)).toEqual(['stdbuf -oL ipset -: add dispatcher-clients 198.18.3.4 skbmark 0x1000000/0xf000000 -exist\n', 'ipset -exist restore: add dispatcher-clients 198.18.3.4 skbmark 0x1000000/0xf000000\n']);
    let from = runner.writes().length;
    offset += QUICK_RETRY_MS - 1000;
    expect((await add(5)).ok).toBe(true);
    // (Read again past TRUST_MS, the fake kernel's set lacks the client before too: both are loaded.)
    expect(how(from)).toEqual([expect.stringMatching(/^ipset -exist restore: [\s\S]*add dispatcher-clients 198.18.3.5 /)]);
    from = runner.writes().length;
    offset += 1000;
    expect((await add(6)).ok).toBe(true);
    expect(how(from)).toEqual([expect.stringMatching(/^stdbuf -oL ipset -: add dispatcher-clients 198.18.3.6 /)]);
    await reconciler.stop();
  });

  test('an operator’s pin after a run that changed nothing reaches the kernel: the run plans from a new map, not the one it planned from before', async () => {
    const runner = capturedGatewayRunner();
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, capturedAssignments());
    await reconciler.request('scan', { scan: true });
    expect(runner.writes()).toEqual([]);
    const before = reconciler.clients;
    await reconciler.request('assign 198.18.0.10', { edit: (clients) => clients.set('198.18.0.10', { ...(clients.get('198.18.0.10') as ClientRecord), uplink: 'isp3', pinned: true }) });
    expect(reconciler.clients).not.toBe(before);
    expect(before.get('198.18.0.10')?.pinned).toBe(false);
    expect(runner.writes()).toEqual([{ argv: ['stdbuf', '-oL', 'ipset', '-'], input: 'add dispatcher-clients 198.18.0.10 skbmark 0x3000000/0xf000000 -exist\n' }]);
  });

  test('neighbours on an uplink, outside the subnets, or the gateway itself are never clients', async () => {
    const runner = capturedGatewayRunner();
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, capturedAssignments());
    const report = await reconciler.request('neighbour', {
      neighbours: [
        { ip: '192.0.2.1', mac: '02:00:00:00:00:01', dev: 'ppp0', complete: true },
        { ip: '10.0.0.5', mac: '02:00:00:00:00:02', dev: 'lan0', complete: true },
        { ip: '198.18.0.1', mac: '02:00:00:00:00:03', dev: 'lan0', complete: true },
        { ip: '198.18.255.255', mac: '02:00:00:00:00:04', dev: 'lan0', complete: true },
        { ip: '198.18.0.99', mac: '00:00:00:00:00:00', dev: 'lan0', complete: false },
      ],
    });
    expect(report.added).toBe(0);
    expect(runner.writes()).toEqual([]);
  });

  test('held (the first probe round), requests wait and join the first run', async () => {
    const runner = capturedGatewayRunner();
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, capturedAssignments());
    reconciler.hold();
    const early = reconciler.request('health: isp1 up');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(runner.calls).toHaveLength(0);
    const first = reconciler.request('start', { scan: true });
    reconciler.release();
    const [a, b] = await Promise.all([early, first]);
    expect(a).toBe(b);
    expect(a.reasons).toEqual(['health: isp1 up', 'start']);
    expect(reconciler.runs).toBe(1);
  });

  test('a run on neighbour events alone plans from what the last run left instead of reading the kernel; any other run, one after distrust(), or one TRUST_MS after the last read, reads', async () => {
    const runner = capturedGatewayRunner();
    let offset = 0;
    const clock = { ...systemClock, now: () => Date.now() + offset };
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log, clock }, config, capturedAssignments());
    await reconciler.request('scan', { scan: true });
    const client = (n: number) => ({ ip: `198.18.3.${n}`, mac: `02:00:00:00:03:0${n}`, dev: 'lan0', complete: true });
    const reads = (from: number) =>
      runner.calls
        .slice(from)
        .filter((c) => c.input === undefined && !c.argv.includes('-w'))
        .map((c) => c.argv.slice(0, 2).join(' '));
    const added = (from: number) =>
      runner
        .writes()
        .slice(from)
        .flatMap((c) =>
          (c.input ?? '')
            .split('\n')
            .filter((l) => l.startsWith('add '))
            .map((l) => l.split(' ')[2]),
        );
    let calls = runner.calls.length;
    let writes = runner.writes().length;
    await reconciler.request('neighbour', { neighbours: [client(1)] });
    await reconciler.request('neighbour', { neighbours: [client(2)] });
    // Nothing read; and the second run knew the first's client was loaded (the fake kernel's set never changes).
    expect(reads(calls)).toEqual([]);
    expect(added(writes)).toEqual(['198.18.3.1', '198.18.3.2']);
    reconciler.distrust();
    calls = runner.calls.length;
    writes = runner.writes().length;
    await reconciler.request('neighbour', { neighbours: [client(3)] });
    expect(reads(calls)).toEqual(expect.arrayContaining(['iptables-save', 'ipset save', 'ip -j']));
    // Read again, the fake kernel lacks the two clients loaded before: they are loaded again.
    expect(added(writes)).toEqual(['198.18.3.1', '198.18.3.2', '198.18.3.3']);
    calls = runner.calls.length;
    await reconciler.request('a verdict', {});
    expect(reads(calls)).toEqual(expect.arrayContaining(['iptables-save', 'ipset save']));
    // Something noticed while a run is reading: what that run saw is stale already, so the next one reads too.
    let noticed = false;
    runner.answer('iptables-save', () => {
      if (!noticed) reconciler.distrust();
      noticed = true;
      return fixture('iptables-save.txt');
    });
    await reconciler.request('a verdict', {});
    calls = runner.calls.length;
    await reconciler.request('neighbour', { neighbours: [client(4)] });
    expect(reads(calls)).toEqual(expect.arrayContaining(['iptables-save']));
    // Trusted runs after that one; once TRUST_MS have passed since it read, the next reads again.
    calls = runner.calls.length;
    await reconciler.request('neighbour', { neighbours: [client(5)] });
    expect(reads(calls)).toEqual([]);
    offset += TRUST_MS + 1;
    await reconciler.request('neighbour', { neighbours: [client(6)] });
    expect(reads(calls)).toEqual(expect.arrayContaining(['iptables-save', 'ipset save']));
  });

  test('a run that loads nothing keeps what the backend says it left (the client set as our client map), not the entries it read: the next run on neighbour events plans from that', async () => {
    const runner = capturedGatewayRunner();
    const planned: unknown[] = [];
    const left: unknown[] = [];
    const watching: typeof backend = {
      ...backend,
      plan(intent, observed) {
        planned.push(observed);
        const payload = backend.plan(intent, observed);
        left.push(backend.expected(payload));
        return payload;
      },
    };
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend: watching, log }, config, capturedAssignments());
    expect(await reconciler.request('scan', { scan: true })).toMatchObject({ ok: true, applied: { ipset: 0, iptables: 0 } });
    const read = planned[0] as Parameters<typeof backend.classified>[0];
    const lighter = left[0] as typeof read;
    // Else 50,000 parsed entries (objects, their texts and the output they were cut from) would stay until the next read.
    expect(lighter).not.toBe(read);
    expect(backend.classified(lighter)).toEqual(backend.classified(read));
    await reconciler.request('neighbour', { neighbours: [{ ip: '198.18.3.1', mac: '02:00:00:00:03:01', dev: 'lan0', complete: true }] });
    expect(planned[1]).toBe(lighter);
  });

  test('a scheduled scan, while the backend’s events report every change of ours (iptables-nft), reads routing and the neighbour table but plans netfilter from what the last run left; every NETFILTER_RESYNC_MS, after distrust(), without events or on iptables-legacy it reads', async () => {
    const runner = capturedGatewayRunner();
    let offset = 0;
    let watched = true;
    let watchedFrom = 0;
    const clock = { ...systemClock, now: () => Date.now() + offset };
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log, clock, netfilterWatchedSince: () => (watched ? watchedFrom : null) }, config, capturedAssignments());
    await reconciler.request('start', { scan: true });
    const reads = async (reason = SCHEDULED_SCAN_REASON): Promise<string[]> => {
      const from = runner.calls.length;
      const report = await reconciler.request(reason, { scan: true });
      expect(report.ok).toBe(true);
      return runner.calls.slice(from).map((c) => c.argv.slice(0, 2).join(' '));
    };
    const netfilter = ['iptables-save', 'ip6tables-save', 'ipset list', 'ipset save'];
    // Routing is not watched here: past TRUST_MS every scan reads it.
    offset += TRUST_MS + 1;
    const scan = await reads();
    expect(scan).toEqual(expect.arrayContaining(['ip -j', 'ip -4']));
    expect(scan.filter((c) => netfilter.includes(c))).toEqual([]);
    // Other runs read as before.
    expect(await reads('operator scan')).toEqual(expect.arrayContaining(netfilter));
    expect((await reads()).filter((c) => netfilter.includes(c))).toEqual([]);
    // At least every NETFILTER_RESYNC_MS a scan reads netfilter, and trusts again after that.
    offset += NETFILTER_RESYNC_MS + 1;
    expect(await reads()).toEqual(expect.arrayContaining(netfilter));
    expect((await reads()).filter((c) => netfilter.includes(c))).toEqual([]);
    reconciler.distrust();
    expect(await reads()).toEqual(expect.arrayContaining(netfilter));
    watched = false;
    offset += TRUST_MS + 1;
    expect(await reads()).toEqual(expect.arrayContaining(netfilter));
    watched = true;
    expect((await reads()).filter((c) => netfilter.includes(c))).toEqual([]);
    // The events' monitor restarted after the last read: what changed meanwhile is only in a new read.
    watchedFrom = clock.now() + 1;
    offset += TRUST_MS + 2;
    expect(await reads()).toEqual(expect.arrayContaining(netfilter));
    expect((await reads()).filter((c) => netfilter.includes(c))).toEqual([]);
    // iptables-legacy: nft monitor does not see its tables.
    runner.answer('iptables-save', () => fixture('iptables-save.txt').replace(' (nf_tables)', ' (legacy)'));
    expect(await reads('operator scan')).toEqual(expect.arrayContaining(netfilter));
    offset += TRUST_MS + 1;
    expect(await reads()).toEqual(expect.arrayContaining(netfilter));
  });

  test('past TRUST_MS a run on neighbour events alone reads routing but plans netfilter from what the last run left while the events report every change (the polled check, where there is one, is judged against each run: engine/repairs.ts); without events it reads netfilter too; the runs after it trust again', async () => {
    const netfilter = ['iptables-save', 'ip6tables-save', 'ipset list', 'ipset save'];
    const eventsOnly = { ...backend, watch: { ...backend.watch, check: null } };
    for (const [chosen, watchedSince, readsNetfilter] of [
      [eventsOnly, 0, false],
      [backend, 0, false],
      [backend, null, true],
    ] as const) {
      const runner = capturedGatewayRunner();
      let offset = 0;
      const clock = { ...systemClock, now: () => Date.now() + offset };
      const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend: chosen, log, clock, netfilterWatchedSince: () => watchedSince }, config, capturedAssignments());
      await reconciler.request('start', { scan: true });
      offset += TRUST_MS + 1;
      const from = runner.calls.length;
      const report = await reconciler.request('neighbour', { neighbours: [{ ip: '198.18.3.41', mac: '02:00:00:00:03:41', dev: 'lan0', complete: true }] });
      expect(report.ok).toBe(true);
      const reads = runner.calls.slice(from).map((c) => c.argv.slice(0, 2).join(' '));
      expect(reads).toEqual(expect.arrayContaining(['ip -j']));
      expect({ check: chosen.watch.check !== null, watchedSince, readsNetfilter: reads.some((r) => netfilter.includes(r)) }).toEqual({ check: chosen.watch.check !== null, watchedSince, readsNetfilter });
      // Routing (and netfilter where it was read) trusted again from that read: the next runs read nothing,
      // though netfilter was last read more than TRUST_MS ago (its events report every change).
      const next = runner.calls.length;
      offset += 1000;
      expect((await reconciler.request('neighbour', { neighbours: [{ ip: '198.18.3.42', mac: '02:00:00:00:03:42', dev: 'lan0', complete: true }] })).ok).toBe(true);
      expect(runner.calls.slice(next).filter((c) => c.input === undefined && !c.argv.includes('-w'))).toEqual([]);
    }
  });

  test('runs on neighbour events alone and scheduled scans trust routing past TRUST_MS while its changes are reported and no one else changed it since it was read, for ROUTING_RESYNC_MS; a monitor restarted since, or none, and they read it', async () => {
    const runner = capturedGatewayRunner();
    let offset = 0;
    let routingSince: number | null = 0;
    const clock = { ...systemClock, now: () => Date.now() + offset };
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log, clock, netfilterWatchedSince: () => 0, routingWatchedSince: () => routingSince }, config, capturedAssignments());
    await reconciler.request('start', { scan: true });
    let n = 50;
    const readsRouting = async (reason: string): Promise<boolean> => {
      const from = runner.calls.length;
      n += 1;
      const request = reason === SCHEDULED_SCAN_REASON ? { scan: true } : { neighbours: [{ ip: `198.18.3.${n}`, mac: `02:00:00:00:03:${n}`, dev: 'lan0', complete: true }] };
      expect((await reconciler.request(reason, request)).ok).toBe(true);
      return runner.calls.slice(from).some((c) => c.argv.join(' ') === 'ip -j rule show');
    };
    for (const reason of ['neighbour', SCHEDULED_SCAN_REASON]) {
      routingSince = 0;
      await reconciler.request('an operator', {});
      offset += TRUST_MS + 1;
      expect(await readsRouting(reason)).toBe(false);
      // (Margins of a second: the test's own time passes too.)
      offset += ROUTING_RESYNC_MS - TRUST_MS - 1000;
      expect(await readsRouting(reason)).toBe(false);
      offset += 2000;
      expect(await readsRouting(reason)).toBe(true);
      expect(await readsRouting(reason)).toBe(false);
      // The monitor restarted, or other software changed a route (engine/repairs.ts), after routing was read: only a new read has it.
      routingSince = clock.now() + 1;
      offset += TRUST_MS + 2;
      expect(await readsRouting(reason)).toBe(true);
      expect(await readsRouting(reason)).toBe(false);
      routingSince = null;
      offset += TRUST_MS + 1;
      expect(await readsRouting(reason)).toBe(true);
    }
    // Any other run reads it.
    expect(await readsRouting('a verdict')).toBe(true);
  });

  test('a scheduled scan, while the neighbour events report every change to the table, takes the clients from them and does not read it; every NEIGHBOUR_RESYNC_MS (a tenth of clients.expire when shorter), once the events may have missed one, and for other reasons it reads', async () => {
    const runner = capturedGatewayRunner();
    let offset = 0;
    let since: number | null = Date.now();
    const clock = { ...systemClock, now: () => Date.now() + offset };
    const make = async (expire: Config): Promise<Reconciler> => new Reconciler({ runner, store: await Store.open(dir), backend, log, clock, neighboursWatchedSince: () => since }, expire, capturedAssignments());
    const readsTable = async (reconciler: Reconciler, reason = SCHEDULED_SCAN_REASON): Promise<boolean> => {
      const from = runner.calls.length;
      const report = await reconciler.request(reason, { scan: true });
      expect(report.ok).toBe(true);
      return runner.calls.slice(from).some((c) => c.argv.join(' ') === 'ip -4 neigh show');
    };
    const reconciler = await make(config);
    expect(await readsTable(reconciler, 'start')).toBe(true);
    expect(await readsTable(reconciler)).toBe(false);
    // With neighbour events in the same run, too: they are what it plans from.
    const event = reconciler.request('neighbour', { neighbours: [{ ip: '198.18.3.40', mac: '02:00:00:00:03:40', dev: 'lan0', complete: true }] });
    expect(await readsTable(reconciler)).toBe(false);
    await event;
    expect(reconciler.clients.has('198.18.3.40')).toBe(true);
    // Other reasons read as before.
    expect(await readsTable(reconciler, 'operator scan')).toBe(true);
    // At least every NEIGHBOUR_RESYNC_MS a scan reads it (expiry needs a whole table), and trusts the events again after.
    offset += NEIGHBOUR_RESYNC_MS;
    expect(await readsTable(reconciler)).toBe(true);
    expect(await readsTable(reconciler)).toBe(false);
    // The monitor restarted, or lost events after the last read: read again.
    since = clock.now() + 1;
    offset += 2;
    expect(await readsTable(reconciler)).toBe(true);
    expect(await readsTable(reconciler)).toBe(false);
    // No monitor (or a rescan for lost events pending): every scan reads.
    since = null;
    expect(await readsTable(reconciler)).toBe(true);
    expect(await readsTable(reconciler)).toBe(true);
    // A short expire is kept: the table is read at least every tenth of it.
    since = clock.now();
    offset += 1;
    const short = await make({ ...config, clients: { ...config.clients, expireSeconds: 60 } });
    expect(await readsTable(short, 'start')).toBe(true);
    expect(await readsTable(short)).toBe(false);
    offset += 6000;
    expect(await readsTable(short)).toBe(true);
  });

  test('bursts coalesce: many requests while a run is busy become one more run', async () => {
    const runner = capturedGatewayRunner();
    const reconciler = new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, capturedAssignments());
    const neighbours = Array.from({ length: 300 }, (_, i) => ({ ip: `198.18.9.${i % 250}`, mac: `02:00:00:00:09:${(i % 250).toString(16).padStart(2, '0')}`, dev: 'lan0', complete: true }));
    const reports = await Promise.all(neighbours.map((n) => reconciler.request('neighbour', { neighbours: [n] })));
    const loads = runner.writes().filter((c) => c.argv.includes('ipset'));
    expect(loads.flatMap((c) => (c.input ?? '').trim().split('\n'))).toHaveLength(250);
    expect(new Set(reports.map((r) => r.at)).size).toBeLessThanOrEqual(2);
  });

  test('a failed command is logged with argv, exit code and stderr; the change is kept and retried', async () => {
    const runner = pristineGatewayRunner().failOnce('iptables-restore', 2, 'iptables-restore: line 3 failed');
    const store = await Store.open(dir);
    const reconciler = new Reconciler({ runner, store, backend, log }, config, new Map());
    const failed = await reconciler.request('start', { scan: true });
    expect(failed.ok).toBe(false);
    expect(failed.error).toMatch(/iptables-restore --wait 10 --noflush failed \(exit 2\): iptables-restore: line 3 failed/);
    expect(logged.find((l) => l.level === 'error')?.fields).toMatchObject({ argv: ['iptables-restore', '--wait', '10', '--noflush'], exitCode: 2, stderr: 'iptables-restore: line 3 failed' });
    expect(reconciler.clients.size).toBe(8);
    const retried = await reconciler.request('retry', { scan: true });
    expect(retried.ok).toBe(true);
    expect(Object.keys((await Store.peek(dir))?.clients ?? {})).toHaveLength(8);
    reconciler.stop();
  });

  test('no command ever goes through a shell', async () => {
    const runner = pristineGatewayRunner();
    await new Reconciler({ runner, store: await Store.open(dir), backend, log }, config, new Map()).request('start', { scan: true });
    for (const call of runner.calls) expect(['sh', 'bash', 'dash', '/bin/sh', '/bin/bash']).not.toContain(call.argv[0]);
  });
});

describe('what runs write to the store', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-unit-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /**
   * A run's persistence over `store` on a manual clock; `clients(n)`: n
   * assignments, the last one just added (the persistence is told, as a run
   * tells it); `saved()`: how many the store file (and its journal) holds.
   */
  function persisting(store: Store) {
    const clock = new ManualClock();
    const record = { uplink: 'isp1', mac: '', interface: 'lan0', pinned: false, firstSeen: 0 };
    const persistence = new RunPersistence(store, clock);
    return {
      clock,
      persistence,
      config: { ...labConfig, state: dir },
      clients: (n: number) => {
        persistence.touched(new Set([`198.18.3.${n - 1}`]));
        return new Map(Array.from({ length: n }, (_, i) => [`198.18.3.${i}`, record] as const));
      },
      saved: async () => Object.keys((await Store.open(dir)).data.clients).length,
    };
  }

  test('a burst of new clients is written at most once a second, the last change always; a move at once; stopping writes a pending one', async () => {
    const { clock, persistence, config, clients, saved } = persisting(await Store.open(dir));
    persistence.changed(false);
    await persistence.afterSuccess(config, clients(1), new Map(), clock.now());
    expect(await saved()).toBe(1);
    for (const n of [2, 3, 4]) {
      await clock.advance(200);
      persistence.changed(false);
      await persistence.afterSuccess(config, clients(n), new Map(), clock.now());
    }
    expect(await saved()).toBe(1);
    await clock.advance(CLIENT_SAVE_MS - 600);
    // The deferred write runs on its own (nothing awaits it): give the file a moment.
    const deadline = Date.now() + 5000;
    while ((await saved()) !== 4 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(await saved()).toBe(4);
    // A move (urgent) 100 ms later is written by its run.
    await clock.advance(100);
    persistence.changed(true);
    await persistence.afterSuccess(config, clients(5), new Map(), clock.now());
    expect(await saved()).toBe(5);
    await clock.advance(100);
    persistence.changed(false);
    await persistence.afterSuccess(config, clients(6), new Map(), clock.now());
    expect(await saved()).toBe(5);
    await persistence.flush();
    expect(await saved()).toBe(6);
  });

  test('a client changed by a run while a deferred write of the run before goes out is written with that run (the journal does not take it as written)', async () => {
    const store = await Store.open(dir);
    const clock = new ManualClock();
    const persistence = new RunPersistence(store, clock);
    const config = { ...labConfig, state: dir };
    const record = (uplink: string) => ({ uplink, mac: '', interface: 'lan0', pinned: false, firstSeen: 0 });
    const stored = async () => (await Store.open(dir)).data.clients;
    /** The assignments of a run: 198.18.3.1 … on these uplinks. */
    const clients = (...uplinks: string[]) => new Map(uplinks.map((uplink, i) => [`198.18.3.${i + 1}`, record(uplink)] as const));
    // A first run writes whole; the next adds a client, deferred.
    await persistence.afterSuccess(config, clients('isp1'), new Map(), clock.now());
    persistence.touched(new Set(['198.18.3.2']));
    persistence.changed(false);
    await persistence.afterSuccess(config, clients('isp1', 'isp1'), new Map(), clock.now());
    // A third run changes 198.18.3.3; before it ends, the deferred write of the second run's clients goes out.
    persistence.touched(new Set(['198.18.3.3']));
    await clock.advance(CLIENT_SAVE_MS);
    const deadline = Date.now() + 5000;
    while (!(await stored())['198.18.3.2'] && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(Object.keys(await stored()).sort()).toEqual(['198.18.3.1', '198.18.3.2']);
    persistence.changed(false);
    await persistence.afterSuccess(config, clients('isp1', 'isp1', 'isp2'), new Map(), clock.now());
    await persistence.flush();
    expect(await stored()).toEqual({ '198.18.3.1': { ...record('isp1'), lastSeen: 0 }, '198.18.3.2': { ...record('isp1'), lastSeen: 0 }, '198.18.3.3': { ...record('isp2'), lastSeen: 0 } });
  });

  test('when clients were seen is written whole at most every LAST_SEEN_SAVE_MS, not by runs that change no record; a journal line carries it; stopping writes it', async () => {
    const store = await Store.open(dir);
    const clock = new ManualClock();
    const persistence = new RunPersistence(store, clock);
    const config = { ...labConfig, state: dir };
    const record = { uplink: 'isp1', mac: '', interface: 'lan0', pinned: false, firstSeen: 0 };
    const clients = new Map([
      ['198.18.3.1', record],
      ['198.18.3.2', record],
    ]);
    const lastSeen = new Map([['198.18.3.1', 5]]);
    const stored = async () => (await Store.open(dir)).data.clients;
    const seen = async () => Object.fromEntries(Object.entries(await stored()).map(([ip, r]) => [ip, r.lastSeen]));
    await persistence.afterSuccess(config, clients, lastSeen, clock.now());
    // Never seen since it came: its firstSeen.
    expect(await seen()).toEqual({ '198.18.3.1': 5, '198.18.3.2': 0 });
    // Runs that only saw the clients again write nothing…
    await clock.advance(LAST_SEEN_SAVE_MS);
    lastSeen.set('198.18.3.1', 7);
    lastSeen.set('198.18.3.2', 7);
    await persistence.afterSuccess(config, clients, lastSeen, clock.now());
    expect(await seen()).toEqual({ '198.18.3.1': 5, '198.18.3.2': 0 });
    // …until the last whole write is LAST_SEEN_SAVE_MS old.
    await clock.advance(1);
    await persistence.afterSuccess(config, clients, lastSeen, clock.now());
    expect(await seen()).toEqual({ '198.18.3.1': 7, '198.18.3.2': 7 });
    // A new client goes to the journal with its time.
    lastSeen.set('198.18.3.3', 9);
    lastSeen.set('198.18.3.1', 9);
    const more = new Map([...clients, ['198.18.3.3', { ...record, firstSeen: 9 }]]);
    persistence.touched(new Set(['198.18.3.3']));
    persistence.changed(true);
    await clock.advance(CLIENT_SAVE_MS);
    await persistence.afterSuccess(config, more, lastSeen, clock.now());
    expect(await seen()).toEqual({ '198.18.3.1': 7, '198.18.3.2': 7, '198.18.3.3': 9 });
    // Stopping writes the times seen since the last whole write.
    await persistence.flush();
    expect(await seen()).toEqual({ '198.18.3.1': 9, '198.18.3.2': 7, '198.18.3.3': 9 });
  });

  test('a move made while a deferred write is under way is written by its own run; a failed write is tried again by the next run', async () => {
    const store = await Store.open(dir);
    const save = store.save.bind(store);
    const append = store.appendClients.bind(store);
    let gate: Promise<void> | null = null;
    let failing = false;
    // Whole writes and appends to the journal alike.
    const held = async (): Promise<void> => {
      if (gate) await gate;
      if (failing) throw new Error('disk full');
    };
    store.save = async (update) => {
      await held();
      return save(update);
    };
    store.appendClients = async (changes) => {
      await held();
      return append(changes);
    };
    const { clock, persistence, config, clients, saved } = persisting(store);
    persistence.changed(false);
    await persistence.afterSuccess(config, clients(1), new Map(), clock.now());
    await clock.advance(200);
    persistence.changed(false);
    await persistence.afterSuccess(config, clients(2), new Map(), clock.now());
    // A run moves a client; before it ends, the deferred write (of what the run before left) starts and is held.
    persistence.changed(true);
    let release = (): void => undefined;
    gate = new Promise((resolve) => {
      release = resolve;
    });
    await clock.advance(CLIENT_SAVE_MS);
    release();
    gate = null;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await saved()).toBe(2);
    await persistence.afterSuccess(config, clients(3), new Map(), clock.now());
    expect(await saved()).toBe(3);
    // A failed urgent write fails its run; the next run writes it.
    failing = true;
    persistence.changed(true);
    await expect(persistence.afterSuccess(config, clients(4), new Map(), clock.now())).rejects.toThrow('disk full');
    failing = false;
    await persistence.afterSuccess(config, clients(4), new Map(), clock.now());
    expect(await saved()).toBe(4);
  });
});

// A pair of gateways: what `dispatcher ha render` writes for keepalived and
// conntrackd, and the notify script between keepalived and the daemon. The
// tools themselves read these files in test/integration/ha.test.ts.

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExecaRunner } from '../../src/system/exec.js';
import { recordedRole, roleStillHeld } from '../../src/system/ha-role-file.js';
import type { NetfilterBackend } from '../../src/backends/backend.js';
import { createBackend } from '../../src/backends/index.js';
import type { IptablesObserved, IptablesPayload } from '../../src/backends/iptables/types.js';
import type { NftObserved, NftPayload } from '../../src/backends/nftables/types.js';
import { parseConfig } from '../../src/config/load.js';
import { updateAssignments } from '../../src/core/assign.js';
import { applySync, ClientJournal, changesAmong, journaled, parseSyncBody, type SyncBody, snapshotOf } from '../../src/core/ha-sync.js';
import { type HaRole, planNetfilter } from '../../src/core/netfilter.js';
import { computePlan } from '../../src/core/run.js';
import { HaSync } from '../../src/engine/ha-sync.js';
import type { Reconciler } from '../../src/engine/reconciler.js';
import type { ClientRecord } from '../../src/model/state.js';
import { listenHaChannel, sendHaChannel } from '../../src/system/ha-channel.js';
import type { UplinkView } from '../../src/model/state.js';
import { conntrackdConf } from '../../src/render/conntrackd-conf.js';
import { haNotifyScript } from '../../src/render/ha-notify.js';
import { keepalivedConf } from '../../src/render/keepalived-conf.js';
import { LayeredMap } from '../../src/core/layered-map.js';
import { changesBetween } from '../helpers/ha-changes.js';
import { ManualClock } from '../helpers/manual-clock.js';

const CONFIG = `
lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }
uplinks:
  - { name: isp1, interface: wan1, gateway: 198.51.100.1, ha_address: 198.51.100.10/26 }
  - { name: isp2, interface: ppp0 }
state: /var/lib/dispatcher-a
ha: { peer: 198.19.255.2, interface: sync0, key: /etc/dispatcher/ha.key, lan_address: 198.18.0.1/16, priority: 150 }
`;

describe('keepalived.conf', () => {
  test('one VRRPv3 instance on the LAN with the LAN address and every shared line address, both gateways starting as backup', () => {
    const text = keepalivedConf(parseConfig(CONFIG, 'a.yaml'), '/etc/dispatcher/ha/notify');
    expect(text).toContain('    vrrp_version 3\n');
    expect(text).toContain('    state BACKUP\n    interface lan0\n    virtual_router_id 51\n    priority 150\n    advert_int 0.2\n    nopreempt\n');
    expect(text).toContain('    virtual_ipaddress {\n        198.18.0.1/16 dev lan0\n        198.51.100.10/26 dev wan1\n    }\n');
    expect(text).toContain('    notify /etc/dispatcher/ha/notify\n');
    expect(text).toContain('    script_user root\n    enable_script_security\n');
    // A line without a shared address (ppp: only the master dials) has nothing to move.
    expect(text).not.toContain('ppp0');
  });

  test('preempt: the gateway of higher priority takes the role back, after a delay that lets the state channel bring it up to date', () => {
    const text = keepalivedConf(parseConfig(CONFIG.replace('priority: 150', 'priority: 150, preempt: true'), 'a.yaml'), '/n');
    expect(text).not.toContain('nopreempt');
    expect(text).toContain('    advert_int 0.2\n    preempt_delay 5\n');
  });
});

describe('conntrackd.conf', () => {
  test('FTFW on the sync link, the external cache kept, every runtime path under the state directory, our own addresses not synced', () => {
    const text = conntrackdConf(parseConfig(CONFIG, 'a.yaml'), '198.19.255.1');
    expect(text).toContain('        DisableExternalCache off\n');
    expect(text).toContain('        IPv4_address 198.19.255.1\n        IPv4_Destination_Address 198.19.255.2\n        Port 3780\n        Interface sync0\n');
    expect(text).toContain('    LogFile /var/lib/dispatcher-a/ha/conntrackd.log\n');
    expect(text).toContain('    LockFile /var/lib/dispatcher-a/ha/conntrackd.lock\n');
    expect(text).toContain('    UNIX {\n        Path /var/lib/dispatcher-a/ha/conntrackd.ctl\n    }\n');
    const ignored = [...text.matchAll(/^ {12}IPv4_address (\S+)$/gm)].map((m) => m[1]);
    expect(ignored).toEqual(['127.0.0.1', '198.19.255.1', '198.19.255.2', '198.18.0.1', '198.51.100.10']);
  });
});

describe('the notify script', () => {
  const script = haNotifyScript({ node: '/usr/bin/node', dispatcher: "/opt/it's here/bin/dispatcher", config: '/etc/dispatcher/config.yaml', socket: '/run/dispatcher.sock' }, '/var/lib/dispatcher-a/ha');

  test("keepalived's state becomes the role it asks the daemon for; every path one quoted word, nothing re-parsed", () => {
    expect(script.startsWith('#!/bin/sh\n')).toBe(true);
    expect(script).toContain('  MASTER) role=master ;;\n  BACKUP | STOP) role=backup ;;\n  FAULT) role=fault ;;\n  *) exit 0 ;;\n');
    // The role first goes to a file, whole (by rename, each run its own temporary file), with the time since boot: the daemon trusts it over the order the calls arrive in.
    expect(script).toContain("esac\nread up _ < /proc/uptime\nprintf '%s %s\\n' \"$role\" \"$up\" > '/var/lib/dispatcher-a/ha/role.'$$ && mv -f '/var/lib/dispatcher-a/ha/role.'$$ '/var/lib/dispatcher-a/ha/role'\nexec ");
    expect(script).toContain(`exec '/usr/bin/node' '/opt/it'\\''s here/bin/dispatcher' --config '/etc/dispatcher/config.yaml' --socket '/run/dispatcher.sock' ha "$role"\n`);
  });
});

test('the notify script, run as keepalived runs it: writes the role with the time since boot, then asks the daemon; the daemon reads it back', async () => {
  const state = await mkdtemp(join(tmpdir(), 'ha-notify-'));
  const runtime = join(state, 'ha');
  await mkdir(runtime);
  try {
    // /bin/echo stands for node: what the script would run is printed.
    const path = join(runtime, 'notify');
    await writeFile(path, haNotifyScript({ node: '/bin/echo', dispatcher: '/opt/d/bin/dispatcher', config: '/etc/d.yaml', socket: '/run/d.sock' }, runtime), { mode: 0o755 });
    const said = await new ExecaRunner().run([path, 'INSTANCE', 'dispatcher', 'MASTER', '150']);
    expect(said.stdout).toBe('/opt/d/bin/dispatcher --config /etc/d.yaml --socket /run/d.sock ha master\n');
    expect(await recordedRole(state)).toMatchObject({ role: 'master' });
    await new ExecaRunner().run([path, 'INSTANCE', 'dispatcher', 'FAULT', '150']);
    const fault = await recordedRole(state);
    const uptime = Number((await readFile('/proc/uptime', 'utf8')).split(' ')[0]);
    expect(fault?.role).toBe('fault');
    expect(uptime - (fault?.upAt ?? 0)).toBeGreaterThanOrEqual(0);
    expect(uptime - (fault?.upAt ?? 0)).toBeLessThan(10);
    // A state it does not know: nothing written, nothing asked; no temporary file left behind.
    expect((await new ExecaRunner().run([path, 'INSTANCE', 'dispatcher', 'DELETED', '150'])).stdout).toBe('');
    expect(await recordedRole(state)).toEqual(fault);
    expect((await readdir(runtime)).sort()).toEqual(['notify', 'role']);
    // No keepalived pid file: the role is not taken as still held (a restart waits for keepalived).
    expect(await roleStillHeld(state)).toBeNull();
    // This process as keepalived's VRRP process, started before the role was written: held.
    await writeFile(join(runtime, 'vrrp.pid'), `${process.pid}\n`);
    expect(await roleStillHeld(state)).toEqual(fault);
  } finally {
    await rm(state, { recursive: true, force: true });
  }
});

describe('the fence while not master, and the shared address as the source', () => {
  const config = parseConfig(CONFIG, 'a.yaml');
  const views: UplinkView[] = [
    { name: 'isp1', index: 0, interface: 'wan1', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '198.51.100.1', pointToPoint: false },
    { name: 'isp2', index: 1, interface: 'ppp0', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '192.0.2.1', pointToPoint: true },
  ];
  const intent = (role: HaRole) => planNetfilter(config, views, new Map(), [], role);
  const iptables = createBackend('iptables', { skeleton: readFileSync(new URL('../../iptables/skeleton.rules', import.meta.url), 'utf8') }) as NetfilterBackend<IptablesObserved, IptablesPayload>;
  const nftables = createBackend('nftables', { skeleton: '' }) as NetfilterBackend<NftObserved, NftPayload>;
  const pristine: IptablesObserved = { netfilter: [], netfilter6: [], sets: { sets: [], entries: [] } };
  const absent: NftObserved = { table: false, digest: null, clients: new Map(), counters: new Map(), hostSets: new Map(), rulesPerChain: {}, groups: [], foreignMarks: [] };

  test('held in every role but master: the LAN forwarding nothing, the shared addresses answering nothing', () => {
    for (const role of ['backup', 'fault', 'unknown'] as const) expect(intent(role).fence).toEqual({ lans: ['lan0'], addresses: ['198.51.100.10'] });
    expect(intent('master').fence).toBeNull();
    // A gateway alone holds nothing, whatever it is told.
    expect(planNetfilter(parseConfig(CONFIG.replace(/^ha: .*$/m, '').replace(', ha_address: 198.51.100.10/26', ''), 'a.yaml'), views, new Map(), [], 'backup').fence).toBeNull();
  });

  test('iptables: DISPATCHER-FENCE first in mangle PREROUTING while held, gone on master; the shared line SNATs what it forwards to its address, the gateway’s own packets masquerade to its own address', () => {
    const held = iptables.plan(intent('backup'), pristine).iptables;
    expect(held).toContain(':DISPATCHER-FENCE - [0:0]\n');
    expect(held).toContain('-A DISPATCHER-FENCE -i lan0 -m addrtype --dst-type UNICAST -j DROP\n-A DISPATCHER-FENCE -d 198.51.100.10/32 -j DROP\n');
    expect(held).toContain('-I PREROUTING 1 -j DISPATCHER-FENCE\n');
    // The gateway's own packets (its probes, exec --uplink) masquerade to its own address: the backup's probes of the shared line are answered.
    expect(held).toContain('-A DISPATCHER-NAT -o wan1 -m addrtype --src-type LOCAL -j MASQUERADE\n-A DISPATCHER-NAT -o wan1 -j SNAT --to-source 198.51.100.10\n-A DISPATCHER-NAT -o ppp0 -j MASQUERADE\n');
    const master = iptables.plan(intent('master'), pristine).iptables;
    expect(master).not.toContain('DISPATCHER-FENCE');
    expect(master).toContain('-A DISPATCHER-NAT -o wan1 -j SNAT --to-source 198.51.100.10\n');
  });

  test('nftables: a fence chain before pre while held, gone on master; the shared line SNATs to its address', () => {
    const held = nftables.plan(intent('backup'), absent).text;
    expect(held).toContain('  chain fence {\n    type filter hook prerouting priority mangle - 10; policy accept;\n    iifname "lan0" fib daddr type unicast drop\n    ip daddr 198.51.100.10 drop\n  }');
    expect(held).toContain('oifname "wan1" meta nfproto ipv4 fib saddr type local masquerade\n    oifname "wan1" meta nfproto ipv4 snat ip to 198.51.100.10');
    expect(held).toContain('oifname "ppp0" meta nfproto ipv4 masquerade');
    expect(nftables.plan(intent('master'), absent).text).not.toContain('chain fence');
  });
});

describe('a follower: one of a pair that is not master takes its clients from the master alone', () => {
  const config = parseConfig(CONFIG, 'a.yaml');
  const views: UplinkView[] = [
    { name: 'isp1', index: 0, interface: 'wan1', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '198.51.100.1', pointToPoint: false },
    { name: 'isp2', index: 1, interface: 'ppp0', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '192.0.2.1', pointToPoint: true },
  ];
  const known = new Map([['198.18.0.10', { uplink: 'isp2', mac: 'aa:bb:cc:00:00:01', interface: 'lan0', pinned: false, firstSeen: 1 }]]);
  const run = (role: HaRole) =>
    computePlan({
      config,
      uplinks: views,
      observed: { rules: [], routes: [], ipv6: { rules: [], routes: [] }, links: [], sysctls: {} },
      assignments: known,
      lastSeen: new Map(),
      // A new host, and a complete table without the known one (it would expire, in time).
      neighbours: [{ ip: '198.18.0.11', mac: 'aa:bb:cc:00:00:02', dev: 'lan0', complete: true }],
      complete: true,
      now: 10 ** 13,
      role,
    }).assignment;

  test('a backup (or one that has no role yet) adds, moves and expires nobody; the master does', () => {
    for (const role of ['backup', 'fault', 'unknown'] as const) {
      const result = run(role);
      expect([...result.assignments.keys()]).toEqual(['198.18.0.10']);
      expect(result.added).toEqual([]);
      expect(result.expired).toEqual([]);
    }
    const master = run('master');
    expect(master.added.map((a) => a.ip)).toEqual(['198.18.0.11']);
    expect(master.expired).toEqual(['198.18.0.10']);
  });
});

describe('the warm standby: what the master sends', () => {
  const record = (uplink: string, more: Partial<ClientRecord> = {}): ClientRecord => ({ uplink, mac: 'aa:bb:cc:00:00:01', interface: 'lan0', pinned: false, firstSeen: 1, ...more });

  test('the whole table once, then only what changed: a move, a pin, a new client, one gone — never an IPv6 address seen again alone', () => {
    const before = new Map([
      ['198.18.0.10', record('isp1')],
      ['198.18.0.11', record('isp1', { ipv6: { 'fd00:18::11': 1 } })],
      ['198.18.0.12', record('isp2')],
    ]);
    const after = new Map([
      ['198.18.0.10', record('isp2')],
      ['198.18.0.11', record('isp1', { ipv6: { 'fd00:18::11': 99 } })],
      ['198.18.0.13', record('isp1', { pinned: true })],
    ]);
    expect(changesBetween(before, after)).toEqual({ kind: 'changes', set: { '198.18.0.10': record('isp2'), '198.18.0.13': record('isp1', { pinned: true }) }, del: ['198.18.0.12'] });
    expect(changesBetween(after, after)).toBeNull();
    const backup = new Map<string, ClientRecord>([['198.18.0.99', record('isp9')]]);
    applySync(backup, snapshotOf(before, 'a layout'));
    expect([...backup.keys()]).toEqual(['198.18.0.10', '198.18.0.11', '198.18.0.12']);
    applySync(backup, changesBetween(before, after) as never);
    expect(backup.get('198.18.0.10')?.uplink).toBe('isp2');
    expect(backup.has('198.18.0.12')).toBe(false);
    expect(backup.get('198.18.0.13')?.pinned).toBe(true);
  });

  test('the journal: only the clients noted are compared, each with its record from before its first change; a take starts afresh', () => {
    const before = new Map([
      ['198.18.0.10', record('isp1')],
      ['198.18.0.11', record('isp1')],
      ['198.18.0.12', record('isp2')],
    ]);
    const clients = new Map(before);
    const journal = new ClientJournal();
    const edits = journaled(clients, journal);
    edits.set('198.18.0.10', record('isp2'));
    edits.set('198.18.0.10', record('isp1')); // and back: no change
    edits.set('198.18.0.11', record('isp1')); // the same record again: no change
    edits.delete('198.18.0.12');
    edits.set('198.18.0.13', record('isp1', { pinned: true }));
    edits.delete('198.18.0.14'); // never there
    expect(journal.size).toBe(5);
    expect(journal.take(clients)).toEqual({ kind: 'changes', set: { '198.18.0.13': record('isp1', { pinned: true }) }, del: ['198.18.0.12'] });
    expect(journal.size).toBe(0);
    expect(journal.take(clients)).toBeNull();
    // A client not noted is not looked at, whatever it holds: the work is by what was noted.
    expect(
      changesAmong(
        new Map([['198.18.0.11', record('isp1')]]),
        new Map([
          ['198.18.0.11', record('isp1')],
          ['198.18.0.10', record('isp9')],
        ]),
      ),
    ).toBeNull();
    edits.clear();
    expect(journal.take(clients)).toEqual({ kind: 'changes', set: {}, del: ['198.18.0.10', '198.18.0.11', '198.18.0.13'] });
  });

  test("what a run's assignment changed is noted: a new client, a move, an expiry, another device on an address, an IPv6 address joining; not one only seen again", () => {
    const views: UplinkView[] = [{ name: 'isp1', index: 0, interface: 'wan1', weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '198.51.100.1', pointToPoint: false }];
    const before = new Map([
      ['198.18.0.10', record('isp1', { mac: '02:00:00:00:00:10' })],
      ['198.18.0.11', record('isp1', { mac: '02:00:00:00:00:11' })],
      ['198.18.0.12', record('gone', { mac: '02:00:00:00:00:12' })],
      ['198.18.0.13', record('isp1', { mac: '02:00:00:00:00:13' })],
      ['198.18.0.14', record('isp1', { mac: '02:00:00:00:00:14' })],
    ]);
    const n = (ip: string, mac: string) => ({ ip, mac, dev: 'lan0', complete: true });
    const result = updateAssignments({
      assignments: before,
      lastSeen: new Map(),
      present: [
        n('198.18.0.10', '02:00:00:00:00:10'),
        n('198.18.0.11', '02:00:00:00:00:ff'),
        n('198.18.0.12', '02:00:00:00:00:12'),
        n('198.18.0.14', '02:00:00:00:00:14'),
        n('fd00:18::14', '02:00:00:00:00:14'),
        n('198.18.0.15', '02:00:00:00:00:15'),
      ],
      uplinks: views,
      now: 10_000,
      complete: true,
      expireMs: 1000,
      max: 100,
      perMac: 10,
    });
    expect(result.updated).toEqual(['198.18.0.11', '198.18.0.14']);
    const journal = new ClientJournal();
    journal.noteRun(before, result);
    // 10 was only seen again: not noted, and not sent.
    expect(journal.size).toBe(5);
    const changes = journal.take(result.assignments) as Extract<SyncBody, { kind: 'changes' }>;
    expect(changes).toEqual(changesBetween(before, result.assignments));
    expect(Object.keys(changes.set).sort()).toEqual(['198.18.0.11', '198.18.0.12', '198.18.0.14', '198.18.0.15']);
    expect(changes.del).toEqual(['198.18.0.13']);
  });

  test('any mix of edits and runs: what the journal finds is what comparing the whole tables finds', () => {
    const IPS = Array.from({ length: 8 }, (_, i) => `198.18.0.${i + 10}`);
    const MACS = ['02:00:00:00:00:01', '02:00:00:00:00:02', '02:00:00:00:00:03'];
    const UPLINKS = ['isp1', 'isp2', 'gone'];
    const views: UplinkView[] = ['isp1', 'isp2'].map((name, index) => ({ name, index, interface: `wan${index}`, weight: 1, tier: 1, state: 'up', reason: 'up', present: true, gateway: '198.51.100.1', pointToPoint: false }));
    const recordArb = fc
      .record({
        uplink: fc.constantFrom(...UPLINKS),
        mac: fc.constantFrom(...MACS),
        interface: fc.constant('lan0'),
        pinned: fc.boolean(),
        firstSeen: fc.integer({ min: 0, max: 3 }),
        ipv6: fc.option(fc.dictionary(fc.constantFrom('fd00:18::1', 'fd00:18::2'), fc.integer({ min: 0, max: 3 })), { nil: undefined }),
      })
      .map(({ ipv6, ...rest }): ClientRecord => (ipv6 === undefined ? rest : { ...rest, ipv6 }));
    const table = fc.array(fc.tuple(fc.constantFrom(...IPS), recordArb), { maxLength: 8 }).map((entries) => new Map(entries));
    const neighbour = fc.record({ ip: fc.constantFrom(...IPS, 'fd00:18::1', 'fd00:18::2', 'fd00:18::3'), mac: fc.constantFrom(...MACS), dev: fc.constant('lan0'), complete: fc.constant(true) });
    const step = fc.oneof(
      fc.record({ kind: fc.constant('set' as const), ip: fc.constantFrom(...IPS), record: recordArb }),
      fc.record({ kind: fc.constant('delete' as const), ip: fc.constantFrom(...IPS) }),
      fc.record({ kind: fc.constant('clear' as const) }),
      fc.record({ kind: fc.constant('run' as const), present: fc.array(neighbour, { maxLength: 6 }), complete: fc.boolean(), expire: fc.boolean() }),
      fc.record({ kind: fc.constant('take' as const) }),
    );
    const sorted = (body: SyncBody | null) => (body?.kind === 'changes' ? { set: body.set, del: [...body.del].sort() } : body);
    fc.assert(
      fc.property(table, fc.array(step, { maxLength: 12 }), (start, steps) => {
        let clients: ReadonlyMap<string, ClientRecord> = new Map(start);
        let sent = new Map(start);
        const journal = new ClientJournal();
        let now = 10;
        const check = () => {
          expect(sorted(journal.take(clients))).toEqual(sorted(changesBetween(sent, clients)));
          sent = new Map(clients);
        };
        for (const s of steps) {
          const draft = LayeredMap.of(clients).draft();
          const edits = journaled(draft, journal);
          if (s.kind === 'set') edits.set(s.ip, s.record);
          else if (s.kind === 'delete') edits.delete(s.ip);
          else if (s.kind === 'clear') edits.clear();
          clients = draft.done();
          if (s.kind === 'set' || s.kind === 'delete' || s.kind === 'clear') continue;
          if (s.kind === 'take') check();
          else {
            now += 1;
            const result = updateAssignments({ assignments: clients, lastSeen: new Map(), present: s.present, uplinks: views, now, complete: s.complete, expireMs: s.expire ? 2 : 0, max: 6, perMac: 3 });
            journal.noteRun(clients, result);
            clients = result.assignments;
          }
        }
        check();
      }),
      { numRuns: 500 },
    );
  });

  test('a body of another shape is refused (a table without the layout it means too)', () => {
    expect(parseSyncBody('{"kind":"snapshot","layout":"uplinks isp1","clients":{"198.18.0.10":{"uplink":"isp1"}}}')).not.toBeNull();
    for (const text of ['nope', '{"kind":"snapshot","clients":{"198.18.0.10":{"uplink":"isp1"}}}', '[]', '{"kind":"changes","set":{},"del":[1]}', '{"kind":"snapshot","clients":{"a":3}}', '{"kind":"other"}'])
      expect(parseSyncBody(text)).toBeNull();
  });
});

describe('the state channel, on loopback', () => {
  const KEY = 'a-key-both-gateways-share-0123456789';
  const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const until = async (what: () => boolean): Promise<void> => {
    const deadline = Date.now() + 5000;
    while (!what()) {
      if (Date.now() > deadline) throw new Error('timed out');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };

  test('with the key: the greeting, then each body in order, acknowledged', async () => {
    const got: string[] = [];
    const listener = await listenHaChannel(
      '127.0.0.1',
      47901,
      '127.0.0.1',
      KEY,
      async (body) => Boolean(got.push(body)),
      () => undefined,
      silent,
    );
    const sender = sendHaChannel('127.0.0.1', 47901, KEY, () => 'hello', silent, 50);
    try {
      await until(() => sender.connected);
      sender.send('one');
      sender.send('two');
      await until(() => got.length === 3 && sender.lagMs !== null);
      expect(got).toEqual(['hello', 'one', 'two']);
    } finally {
      sender.stop();
      await listener.close();
    }
  });

  test('only the peer, proving the key at once, with a short line: anyone else on the LAN (which reaches this address too) is refused before it costs anything', async () => {
    const refusals: string[] = [];
    const listener = await listenHaChannel(
      '127.0.0.1',
      47904,
      '127.0.0.1',
      KEY,
      async () => true,
      (_from, why) => refusals.push(why),
      silent,
    );
    const stranger = await listenHaChannel(
      '127.0.0.1',
      47905,
      '127.0.0.9',
      KEY,
      async () => true,
      (_from, why) => refusals.push(why),
      silent,
    );
    /** A raw connection: what it writes, and whether it was closed. */
    const raw = (port: number, write: string) => {
      const socket = connect(port, '127.0.0.1');
      const said: string[] = [];
      socket.on('data', (chunk) => said.push(String(chunk)));
      socket.on('error', () => undefined);
      socket.write(write);
      return { said, closed: new Promise<void>((done) => socket.on('close', () => done())) };
    };
    try {
      // Not from the peer's address, even with the key.
      const other = raw(47905, '');
      await other.closed;
      // Closed unanswered, not even a nonce; nothing reported (a LAN host could flood the log).
      expect(other.said).toEqual([]);
      expect(refusals).toEqual([]);
      // A line longer than a proof of the key, with no end: refused once it is too long, not buffered.
      const long = raw(47904, 'x'.repeat(64 * 1024));
      await long.closed;
      expect(refusals).toEqual(['not a message']);
      // Silent: the key not proven within 3 s.
      const started = Date.now();
      const idle = raw(47904, '');
      await idle.closed;
      expect(Date.now() - started).toBeGreaterThanOrEqual(2900);
      expect(refusals.at(-1)).toBe('no key proven in time');
    } finally {
      await Promise.all([listener.close(), stranger.close()]);
    }
  });

  test('a message not taken (this gateway is master now) is not acknowledged: the connection closes and the sender starts over with its whole table; close() ends a live connection at once', async () => {
    const got: string[] = [];
    let take = true;
    const listener = await listenHaChannel(
      '127.0.0.1',
      47906,
      '127.0.0.1',
      KEY,
      async (body) => (take ? Boolean(got.push(body)) : false),
      () => undefined,
      silent,
    );
    let greetings = 0;
    const sender = sendHaChannel('127.0.0.1', 47906, KEY, () => `table ${++greetings}`, silent, 50);
    try {
      await until(() => got.length === 1);
      take = false;
      sender.send('a change');
      await until(() => greetings === 2);
      take = true;
      await until(() => got.length === 2);
      // The change was never taken; the table came again (as often as it was refused meanwhile).
      expect(got).toEqual(['table 1', `table ${greetings}`]);
      expect(greetings).toBeGreaterThanOrEqual(2);
      await until(() => sender.connected);
      const closing = performance.now();
      await listener.close();
      expect(performance.now() - closing).toBeLessThan(1000);
    } finally {
      sender.stop();
      await listener.close();
    }
  });

  test('no peer listening: the sender says so and keeps trying, and nothing throws (readline repeats socket errors)', async () => {
    const sender = sendHaChannel('127.0.0.1', 47903, KEY, () => 'hello', silent, 50);
    try {
      await until(() => sender.problem?.includes('ECONNREFUSED') === true);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(sender.connected).toBe(false);
    } finally {
      sender.stop();
    }
  });

  test('with another key: refused, reported on both sides, nothing applied', async () => {
    const got: string[] = [];
    const refusals: string[] = [];
    const listener = await listenHaChannel(
      '127.0.0.1',
      47902,
      '127.0.0.1',
      KEY,
      async (body) => Boolean(got.push(body)),
      (_from, why) => refusals.push(why),
      silent,
    );
    const sender = sendHaChannel('127.0.0.1', 47902, 'another-key-of-someone-else-0000', () => 'hello', silent, 60_000);
    try {
      await until(() => refusals.length > 0 && sender.problem !== null);
      expect(refusals).toEqual(['wrong key']);
      expect(sender.problem).toBe('refused by the peer: wrong key');
      expect(got).toEqual([]);
    } finally {
      sender.stop();
      await listener.close();
    }
  });

  test("two gateways: the master's whole table on connect (and the backup's conntrackd asked for all), then after each run what its journal noted; the backup takes them, and its times are its clock's", async () => {
    const record = (uplink: string, more: Partial<ClientRecord> = {}): ClientRecord => ({ uplink, mac: 'aa:bb:cc:00:00:01', interface: 'lan0', pinned: false, firstSeen: 1, ...more });
    const ha = parseConfig(CONFIG, 'a.yaml').ha as NonNullable<ReturnType<typeof parseConfig>['ha']>;
    const clock = new ManualClock();
    // The master: its clients, and the journal its reconciler keeps while it sends.
    const ours = new Map([
      ['198.18.0.10', record('isp1')],
      ['198.18.0.11', record('isp2')],
    ]);
    let journal: ClientJournal | null = null;
    const currentConfig = parseConfig(CONFIG, 'a.yaml');
    const master = { role: 'master', clients: ours, currentConfig, keepJournal: (j: ClientJournal | null) => void (journal = j) } as unknown as Reconciler;
    // The backup: takes each message as an edit of its clients.
    const theirs = new Map([['198.18.0.99', record('isp9')]]);
    const reasons: string[] = [];
    const backup = {
      role: 'backup',
      clients: theirs,
      currentConfig,
      request: async (reason: string, trigger: { edit: (clients: Map<string, ClientRecord>, now: number) => void }) => {
        reasons.push(reason);
        trigger.edit(theirs, clock.now());
        return { ok: true };
      },
    } as unknown as Reconciler;
    let resyncs = 0;
    const deps = (reconciler: Reconciler, own: string) => ({ log: silent, clock, reconciler, ownAddress: async () => own, key: async () => KEY, resyncConnections: async () => void (resyncs += 1) });
    const a = new HaSync(deps(master, '127.0.0.1'), { ...ha, peer: '127.0.0.2', port: 47931 });
    const b = new HaSync(deps(backup, '127.0.0.2'), { ...ha, peer: '127.0.0.1', port: 47931 });
    await a.start();
    await b.start();
    try {
      a.roleChanged('master');
      expect(journal).not.toBeNull();
      await until(() => reasons.length === 1);
      expect(reasons).toEqual(['ha sync (snapshot)']);
      expect(theirs).toEqual(ours);
      expect(b.view().lastReceived).toBe(clock.now());
      // The whole table came (the channel up again): the backup's conntrackd is asked for the whole connection table too.
      expect(resyncs).toBe(1);
      // A run on the master: a move, and a client's record set again as it was (not sent).
      clock.step(500);
      const edits = journaled(ours, journal as unknown as ClientJournal);
      edits.set('198.18.0.10', record('isp2'));
      edits.set('198.18.0.11', record('isp2'));
      a.afterRun();
      // A run that changed nothing sends nothing; the next change is the next message.
      a.afterRun();
      edits.delete('198.18.0.11');
      a.afterRun();
      await until(() => reasons.length === 3);
      expect(reasons).toEqual(['ha sync (snapshot)', 'ha sync (changes)', 'ha sync (changes)']);
      expect(theirs).toEqual(new Map([['198.18.0.10', record('isp2')]]));
      expect(resyncs).toBe(1);
      expect(b.view().lastReceived).toBe(clock.now());
      expect(a.view()).toMatchObject({ sending: true, problem: null });
      // One with another key: refused, and when is the backup's clock's.
      clock.step(250);
      const stranger = sendHaChannel('127.0.0.2', 47931, 'another-key-of-someone-else-0000', () => 'hello', silent, 60_000);
      try {
        await until(() => b.view().refused !== null);
        expect(b.view().refused).toMatchObject({ why: 'wrong key', at: clock.now() });
      } finally {
        stranger.stop();
      }
      // No longer master: nothing is noted any more.
      a.roleChanged('backup');
      expect(journal).toBeNull();
      // Master again, with its uplinks in another order: its pools would be other lines on the backup, which takes nothing of it and says why.
      const swapped = CONFIG.replace(/^( {2}- \{ name: isp1.*)\n( {2}- \{ name: isp2.*)$/m, '$2\n$1');
      expect(swapped).not.toBe(CONFIG);
      (master as unknown as { currentConfig: unknown }).currentConfig = parseConfig(swapped, 'a.yaml');
      const held = new Map(theirs);
      a.roleChanged('master');
      await until(() => b.view().refused?.why.includes('the same uplinks, in the same order') === true);
      expect(b.view().refused?.why).toBe('the master has uplinks isp2, isp1; marks.mask 0xff000000; this gateway uplinks isp1, isp2; marks.mask 0xff000000: give both the same uplinks, in the same order, and the same marks');
      ours.set('198.18.0.12', record('isp1'));
      a.afterRun();
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(theirs).toEqual(held);
      // The master's config mended: its next connection's table is taken.
      (master as unknown as { currentConfig: unknown }).currentConfig = currentConfig;
      await until(() => theirs.has('198.18.0.12'));
      expect(theirs).toEqual(ours);
    } finally {
      await Promise.allSettled([a.stop(), b.stop()]);
    }
  });
});

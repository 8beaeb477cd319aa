// doctor on software known to undo the dispatcher's objects: what
// system/fighters.ts reads from a host's files (here a temporary directory
// standing for /) and what core/doctor.ts says about it, and the findings on
// the daemon's repair record.

import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { diagnose, EXIT_OF, type Finding, worst } from '../../src/core/doctor.js';
import { fighterFindings, NO_FIGHTERS, repairFindings } from '../../src/core/fighters.js';
import type { RepairStatus } from '../../src/schema/control.js';
import { gatherFighters, parseIni } from '../../src/system/fighters.js';
import { healthyDoctorFacts, labConfig } from '../helpers/scenario.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'doctor-fighters-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function put(path: string, text: string): Promise<void> {
  await mkdir(dirname(join(root, path)), { recursive: true });
  await writeFile(join(root, path), text);
}

/** A process as /proc shows it. */
const runs = (pid: number, comm: string): Promise<void> => put(`proc/${pid}/comm`, `${comm}\n`);

/** `systemctl enable`'s trace: a symlink in a target's .wants directory. */
async function enable(unit: string, target = 'multi-user.target'): Promise<void> {
  const dir = join(root, 'etc/systemd/system', `${target}.wants`);
  await mkdir(dir, { recursive: true });
  await symlink(`/usr/lib/systemd/system/${unit}`, join(dir, unit));
}

async function findings(): Promise<Finding[]> {
  return fighterFindings({ config: labConfig, fighters: await gatherFighters(root) });
}
const of = (list: readonly Finding[], check: string): Finding | undefined => list.find((f) => f.check === check);

describe('doctor reads the host for known fighters', () => {
  test('a host with none of them: nothing to say', async () => {
    await runs(1, 'systemd');
    await runs(400, 'sshd');
    expect(await gatherFighters(root)).toEqual(NO_FIGHTERS);
    expect(await findings()).toEqual([]);
  });

  test('systemd-networkd running with the defaults: both settings named, with the drop-in that turns them off', async () => {
    await runs(310, 'systemd-network');
    const list = await findings();
    expect(list).toHaveLength(1);
    expect(of(list, 'fighter:systemd-networkd')).toMatchObject({
      severity: 'warn',
      summary: expect.stringContaining('ManageForeignRoutingPolicyRules=yes (the default) and ManageForeignRoutes=yes (the default)'),
      fix: expect.stringContaining('/etc/systemd/networkd.conf.d/zz-dispatcher.conf'),
    });
    expect(of(list, 'fighter:systemd-networkd')?.fix).toContain('"ManageForeignRoutingPolicyRules=no" and "ManageForeignRoutes=no"');
  });

  test('systemd-networkd with one setting in networkd.conf: only the missing one is asked for', async () => {
    await runs(310, 'systemd-network');
    await put('etc/systemd/networkd.conf', '[Network]\n#ManageForeignRoutes=yes\nManageForeignRoutingPolicyRules=no\n');
    const finding = of(await findings(), 'fighter:systemd-networkd');
    expect(finding?.severity).toBe('warn');
    expect(finding?.summary).toContain('ManageForeignRoutes=yes (the default)');
    expect(finding?.summary).toContain('deletes the routes it did not make');
    expect(finding?.summary).not.toContain('ManageForeignRoutingPolicyRules');
    expect(finding?.fix).toContain('"ManageForeignRoutes=no"');
    expect(finding?.fix).not.toContain('ManageForeignRoutingPolicyRules');
  });

  test('systemd-networkd: a later drop-in wins over networkd.conf and earlier drop-ins, across directories', async () => {
    await runs(310, 'systemd-network');
    await put('etc/systemd/networkd.conf', '[Network]\nManageForeignRoutingPolicyRules=no\nManageForeignRoutes=no\n');
    await put('usr/lib/systemd/networkd.conf.d/50-vendor.conf', '[Network]\nManageForeignRoutes=yes\n');
    await put('etc/systemd/networkd.conf.d/10-early.conf', '[Network]\nManageForeignRoutes=no\n');
    const finding = of(await findings(), 'fighter:systemd-networkd');
    expect(finding).toMatchObject({ severity: 'warn', summary: expect.stringContaining('ManageForeignRoutes=yes (/usr/lib/systemd/networkd.conf.d/50-vendor.conf)') });

    // The same name under /etc hides the vendor's file; then everything says no.
    await put('etc/systemd/networkd.conf.d/50-vendor.conf', '[Network]\nManageForeignRoutes=false\n');
    expect(of(await findings(), 'fighter:systemd-networkd')).toMatchObject({ severity: 'ok' });
  });

  test('systemd-networkd configured but not running: nothing to say', async () => {
    await put('etc/systemd/networkd.conf', '[Network]\nManageForeignRoutes=yes\n');
    expect(await findings()).toEqual([]);
  });

  test('NetworkManager running: names the interfaces it may manage and the exact unmanaged-devices line', async () => {
    await runs(520, 'NetworkManager');
    await put('etc/NetworkManager/NetworkManager.conf', '[main]\nplugins=keyfile\n');
    await put('etc/NetworkManager/conf.d/10-ppp.conf', '[keyfile]\nunmanaged-devices=interface-name:ppp*\n');
    const finding = of(await findings(), 'fighter:networkmanager');
    expect(finding?.severity).toBe('warn');
    expect(finding?.summary).toContain('may manage wan0, lan0');
    expect(finding?.fix).toContain('unmanaged-devices+=interface-name:wan0;interface-name:lan0');
    expect(finding?.fix).toContain('ipv4.route-table at 0');
  });

  test('NetworkManager leaving every interface of ours alone (keyfile list, except:, ifupdown) is ok', async () => {
    await runs(520, 'NetworkManager');
    await put('usr/lib/NetworkManager/conf.d/10-globally-managed-devices.conf', '[keyfile]\nunmanaged-devices=*,except:type:wifi\n');
    expect(of(await findings(), 'fighter:networkmanager')).toMatchObject({ severity: 'ok', summary: 'NetworkManager runs and leaves ppp0, ppp1, wan0, lan0 unmanaged' });

    // An except: for one of ours makes it managed again.
    await put('etc/NetworkManager/conf.d/20-lan.conf', '[keyfile]\nunmanaged-devices+=except:interface-name:lan0\n');
    expect(of(await findings(), 'fighter:networkmanager')?.summary).toContain('may manage lan0');

    // Debian's ifupdown plugin with managed=false leaves /etc/network/interfaces' devices alone.
    await put('etc/NetworkManager/NetworkManager.conf', '[main]\nplugins=ifupdown,keyfile\n\n[ifupdown]\nmanaged=false\n');
    await put('etc/network/interfaces.d/lan0', 'auto lan0\niface lan0 inet static\n  address 10.0.0.1/16\n');
    expect(of(await findings(), 'fighter:networkmanager')?.severity).toBe('ok');
  });

  test('ufw enabled: a warning when it manages the built-in chains, else ok', async () => {
    await put('etc/ufw/ufw.conf', '# /etc/ufw/ufw.conf\nENABLED=yes\nLOGLEVEL=low\n');
    await put('etc/default/ufw', 'IPV6=yes\nMANAGE_BUILTINS=yes\n');
    expect(of(await findings(), 'fighter:ufw')).toMatchObject({
      severity: 'warn',
      summary: expect.stringContaining('within about a second, but connections opened in that window are reset'),
      fix: expect.stringContaining('MANAGE_BUILTINS=no'),
    });
    await put('etc/default/ufw', 'IPV6=yes\nMANAGE_BUILTINS=no\n');
    expect(of(await findings(), 'fighter:ufw')?.severity).toBe('ok');
    await put('etc/ufw/ufw.conf', 'ENABLED=no\n');
    expect(await findings()).toEqual([]);
  });

  test('firewalld running: the iptables backend is a warning, the nftables backend worth knowing', async () => {
    await runs(700, 'firewalld');
    await put('etc/firewalld/firewalld.conf', 'DefaultZone=public\nFirewallBackend=iptables\n');
    expect(of(await findings(), 'fighter:firewalld')).toMatchObject({ severity: 'warn', fix: expect.stringContaining('FirewallBackend=nftables') });
    await put('etc/firewalld/firewalld.conf', 'FirewallBackend=nftables\n');
    expect(of(await findings(), 'fighter:firewalld')?.severity).toBe('info');
    await put('etc/firewalld/direct.xml', '<?xml version="1.0"?>\n<direct>\n  <rule ipv="ipv4" table="nat" chain="POSTROUTING" priority="0">-j ACCEPT</rule>\n</direct>\n');
    expect(of(await findings(), 'fighter:firewalld')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('direct rules') });
  });

  test('netfilter-persistent enabled with whole mangle and nat tables (and our saved chains) in rules.v4', async () => {
    await enable('netfilter-persistent.service');
    await put('etc/iptables/rules.v4', '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n*mangle\n:PREROUTING ACCEPT [0:0]\n:DISPATCHER-PRE - [0:0]\n-A PREROUTING -j DISPATCHER-PRE\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n');
    const list = await findings();
    expect(of(list, 'fighter:netfilter-persistent')).toMatchObject({ severity: 'warn', summary: expect.stringContaining('(mangle, nat)'), fix: expect.stringContaining('*mangle and *nat sections') });
    expect(of(list, 'fighter:netfilter-persistent:saved')).toMatchObject({ severity: 'warn', fix: expect.stringContaining('DISPATCHER-*') });

    await put('etc/iptables/rules.v4', '*filter\n:INPUT DROP [0:0]\n-A INPUT -i lo -j ACCEPT\nCOMMIT\n');
    expect((await findings()).map((f) => [f.check, f.severity])).toEqual([['fighter:netfilter-persistent', 'ok']]);
  });

  test('netfilter-persistent installed but not enabled: its file is never loaded, nothing to say', async () => {
    await put('etc/iptables/rules.v4', '*nat\nCOMMIT\n');
    expect(await findings()).toEqual([]);
  });

  test('nftables.service enabled with "flush ruleset": the line and the per-table alternative', async () => {
    await enable('nftables.service', 'sysinit.target');
    await put('etc/nftables.conf', '#!/usr/sbin/nft -f\n\nflush ruleset\n\ntable inet filter {\n}\n');
    expect(of(await findings(), 'fighter:nftables')).toMatchObject({
      severity: 'warn',
      summary: expect.stringContaining('(line 3)'),
      fix: expect.stringContaining('"delete table inet filter"'),
    });
    await put('etc/nftables.conf', 'table inet filter\ndelete table inet filter\ntable inet filter {\n}\n');
    expect(of(await findings(), 'fighter:nftables')?.severity).toBe('ok');
  });

  test('nftables.conf with "flush ruleset" but the service not enabled: nothing to say', async () => {
    await put('etc/nftables.conf', 'flush ruleset\n');
    expect(await findings()).toEqual([]);
  });

  test('ini lines: sections, comments, appends', () => {
    expect(parseIni('# c\n[Network]\n; c\nManageForeignRoutes = no\n[keyfile]\nunmanaged-devices+=interface-name:x\n')).toEqual([
      { section: 'Network', key: 'ManageForeignRoutes', value: 'no', append: false },
      { section: 'keyfile', key: 'unmanaged-devices', value: 'interface-name:x', append: true },
    ]);
  });
});

describe('doctor on the daemon repair record', () => {
  const quiet: RepairStatus = { total: 0, last: null, fighting: null };
  const last = {
    at: '2025-01-01T10:00:00.000Z',
    what: ['iptables: 12 lines loaded', '1 ip rule added (priorities 4101)'],
    noticed: ['netfilter: delete chain ip mangle DISPATCHER-PRE, by iptables-restor (pid 4242)'],
    applied: { iptables: 12 },
  };

  test('no daemon: nothing; no repairs: ok', () => {
    expect(repairFindings(null, [])).toEqual([]);
    expect(repairFindings(quiet, [])).toEqual([{ check: 'repair:last', severity: 'ok', summary: expect.any(String) }]);
  });

  test('repairs without a fight: the last one, as information', () => {
    const [finding] = repairFindings({ total: 2, last, fighting: null }, []);
    expect(finding).toMatchObject({ check: 'repair:last', severity: 'info' });
    expect(finding?.summary).toContain('2 times');
    expect(finding?.summary).toContain(
      'the last at 2025-01-01T10:00:00.000Z: iptables: 12 lines loaded; 1 ip rule added (priorities 4101) (noticed: netfilter: delete chain ip mangle DISPATCHER-PRE, by iptables-restor (pid 4242))',
    );
  });

  test('a repair loop fails, naming who, since when and how many, with the fighters doctor found', () => {
    const fighting = { since: '2025-01-01T10:00:00.000Z', repairs: 7, by: ['iptables-restor'], nextRepairAt: '2025-01-01T10:00:30.000Z' };
    const known: Finding[] = [
      { check: 'fighter:ufw', severity: 'warn', summary: 'ufw …', fix: '…' },
      { check: 'fighter:nftables', severity: 'ok', summary: 'fine' },
    ];
    const [finding] = repairFindings({ total: 9, last, fighting }, known);
    expect(finding).toMatchObject({ check: 'repair:loop', severity: 'fail' });
    expect(finding?.summary).toContain('7 repairs since 2025-01-01T10:00:00.000Z, by iptables-restor');
    expect(finding?.summary).toContain('next at 2025-01-01T10:00:30.000Z');
    expect(finding?.fix).toContain('doctor found fighter:ufw above');
    expect(finding?.fix).not.toContain('fighter:nftables');

    const [unnamed] = repairFindings({ total: 9, last, fighting: { ...fighting, by: [], nextRepairAt: null } }, []);
    expect(unnamed?.summary).toContain('by a program the kernel did not name');
    expect(unnamed?.fix).toContain('systemd-networkd, NetworkManager, ufw, firewalld, netfilter-persistent, nftables.service');
  });
});

describe('diagnose', () => {
  test('adds the fighters and the repair record to the rest, and a loop is the exit code', async () => {
    await runs(310, 'systemd-network');
    const facts = healthyDoctorFacts({
      fighters: await gatherFighters(root),
      repairs: { total: 4, last: null, fighting: { since: '2025-01-01T10:00:00.000Z', repairs: 4, by: ['systemd-network'], nextRepairAt: null } },
    });
    const list = diagnose(facts);
    expect(list.filter((f) => f.severity !== 'ok').map((f) => [f.check, f.severity])).toEqual([
      ['fighter:systemd-networkd', 'warn'],
      ['repair:loop', 'fail'],
    ]);
    expect(of(list, 'repair:loop')?.fix).toContain('doctor found fighter:systemd-networkd above');
    expect(EXIT_OF[worst(list)]).toBe(2);
  });
});

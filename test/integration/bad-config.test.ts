// Bad configuration against a real, already programmed gateway: each of the
// invalid configs below is refused by `dispatcher start` with exit code 2 and
// a message naming the field, and the kernel (iptables-save, ipset, ip rule,
// every routing table, sysctls) stays byte for byte as it was. Collisions
// with other software's objects are created in the kernel for their case
// only. A reload (SIGHUP or `dispatcher reload`) with a bad config keeps the
// running one and says why.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab, within, type StatusJson } from '../helpers/lab.js';

jest.setTimeout(120_000);

interface Case {
  readonly name: string;
  /** Turns the lab's valid config text into the bad one. */
  readonly edit: (yaml: string, dir: string) => string;
  /** The field the message must name, and a word of its problem. */
  readonly field: string;
  readonly problem: RegExp;
  /** ip(8) batch lines that put another program's object in the way, removed after the case. */
  readonly foreign?: { add: string[]; remove: string[] };
}

const replace =
  (from: string | RegExp, to: string) =>
  (yaml: string): string => {
    const next = yaml.replace(from, to);
    if (next === yaml) throw new Error(`the case's edit did not apply: ${String(from)}`);
    return next;
  };
const append =
  (text: string) =>
  (yaml: string): string =>
    `${yaml}\n${text}\n`;

const CASES: Case[] = [
  // Types
  { name: 'weight is text', edit: replace('weight: 2', 'weight: heavy'), field: 'uplinks[0].weight', problem: /whole number/ },
  { name: 'lan is a list', edit: replace(/lan:\n  interfaces: \[lan0\]\n  subnets: \[[^\]]+\]/, 'lan: [lan0]'), field: 'lan', problem: /mapping/ },
  { name: 'uplinks is a mapping', edit: (y) => y.replace(/uplinks:\n(  .*\n|    .*\n)+/, 'uplinks: { name: isp1 }\n'), field: 'uplinks', problem: /must be a list/ },
  { name: 'probe targets are not addresses', edit: replace(/targets: \[198\.51\.100\.2\]/, 'targets: [isp1.example.test]'), field: 'uplinks[0].probe.targets[0]', problem: /not a unicast IPv4/ },
  { name: 'mark mask is not a number', edit: append('marks: { mask: "lots" }'), field: 'marks.mask', problem: /non-zero 32-bit/ },
  { name: 'scan schedule is not cron', edit: replace(/scan: \{ schedule: "[^"]+" \}/, 'scan: { schedule: "hourly-ish" }'), field: 'scan.schedule', problem: /not a cron expression/ },
  { name: 'YAML syntax error', edit: append('health: { interval: [100ms'), field: '(YAML line ', problem: /\(YAML line [1-9][0-9]*, column [1-9][0-9]*\): Flow/ },
  // Ranges
  { name: 'weight zero', edit: replace('weight: 2', 'weight: 0'), field: 'uplinks[0].weight', problem: /1 to 256/ },
  { name: 'weight above 256', edit: replace('weight: 2', 'weight: 1000'), field: 'uplinks[0].weight', problem: /1 to 256/ },
  { name: 'rule priority above the main rule', edit: append('rules: { priority: 32700 }'), field: 'rules.priority', problem: /1 to 32666/ },
  { name: 'table range over the main table', edit: append('tables: { base: 200 }'), field: 'tables.base', problem: /reserved table 253/ },
  { name: 'probe interval too short', edit: append('health: { interval: 1ms }'), field: 'health.interval', problem: /20ms to 1m/ },
  { name: 'loss above 100 %', edit: append('health: { loss: "150%" }'), field: 'health.loss', problem: /percentage/ },
  { name: 'clients.max zero', edit: append('clients: { max: 0 }'), field: 'clients.max', problem: /1 to 1000000/ },
  { name: 'clients.per_mac negative', edit: append('clients: { per_mac: -5 }'), field: 'clients.per_mac', problem: /1 to 1000000/ },
  { name: 'expiry under a minute', edit: append('clients: { expire: 5s }'), field: 'clients.expire', problem: /a minute or more/ },
  { name: 'mask too narrow for three uplinks', edit: append('marks: { mask: "0x3" }'), field: 'marks.mask', problem: /holds 1 uplinks/ },
  // Duplicates
  { name: 'duplicate uplink name', edit: replace('name: isp2', 'name: isp1'), field: 'uplinks[1].name', problem: /already used/ },
  { name: 'duplicate uplink interface', edit: replace('interface: ppp1', 'interface: ppp0'), field: 'uplinks[1].interface', problem: /already used/ },
  { name: 'duplicate YAML key', edit: append('scan: { schedule: "* * * * *" }'), field: '(YAML line ', problem: /\(YAML line [1-9][0-9]*, column [1-9][0-9]*\): Map keys must be unique/ },
  { name: 'probe target listed twice', edit: replace('targets: [198.51.100.2]', 'targets: [198.51.100.2, 198.51.100.2]'), field: 'uplinks[0].probe.targets[1]', problem: /twice/ },
  // Unknown keys
  { name: 'misspelt top-level key', edit: append('helth: { down: 3 }'), field: 'helth', problem: /did you mean "health"/ },
  { name: 'misspelt uplink key', edit: replace('weight: 2', 'wieght: 2'), field: 'uplinks[0].wieght', problem: /did you mean "weight"/ },
  { name: 'unknown key with control characters', edit: append('"x\\u001b[2Jy": 1'), field: '"x\\u001b[2Jy"', problem: /unknown key/ },
  // Unreachable files
  { name: 'notify hook program missing', edit: (y, dir) => `${y}\nnotify: { exec: [${join(dir, 'no-such-hook')}] }\n`, field: 'notify.exec[0]', problem: /not an executable file \(ENOENT\)/ },
  { name: 'notify hook program not executable', edit: (y, dir) => `${y}\nnotify: { exec: [${join(dir, 'not-executable')}] }\n`, field: 'notify.exec[0]', problem: /not an executable file \(EACCES\)/ },
  { name: 'notify hook path relative', edit: append('notify: { exec: [hooks/on-change] }'), field: 'notify.exec[0]', problem: /not an absolute path/ },
  // Overlapping subnets
  { name: 'overlapping LAN subnets', edit: replace(/subnets: \[([^\]]+)\]/, 'subnets: [$1, 198.18.4.0/24]'), field: 'lan.subnets[1]', problem: /overlaps/ },
  { name: 'gateway inside the LAN', edit: replace(/gateway: 192\.0\.2\.1\b/, 'gateway: 198.18.0.1'), field: 'uplinks[0].gateway', problem: /inside LAN subnet/ },
  // Name collisions
  { name: 'uplink on the LAN interface', edit: replace('interface: ppp1', 'interface: lan0'), field: 'uplinks[1].interface', problem: /also a LAN interface/ },
  { name: 'two uplinks with one ipparam', edit: (y) => y.replace('name: isp1', 'name: isp1\n    ipparam: dsl').replace('name: isp2', 'name: isp2\n    ipparam: dsl'), field: 'uplinks[1].ipparam', problem: /already identifies/ },
  { name: 'static route via an unknown uplink', edit: append('static_routes: [{ destination: 203.0.113.64/26, via: [isp9] }]'), field: 'static_routes[0].via[0]', problem: /no uplink is named "isp9"/ },
  // Policies
  { name: 'policy via an unknown uplink', edit: append('policies: [{ match: { destination: [203.0.113.0/24] }, via: [isp2, isp9] }]'), field: 'policies[0].via[1]', problem: /no uplink is named "isp9"/ },
  {
    name: 'a policy an earlier one hides',
    edit: append('policies:\n  - { match: { destination: [203.0.113.0/24] }, via: [isp2] }\n  - { match: { destination: [203.0.113.8/29], protocol: tcp }, via: [isp3] }'),
    field: 'policies[1].match',
    problem: /can never match: policies\[0\] comes first/,
  },
  { name: 'a policy with ports and icmp', edit: append('policies: [{ match: { protocol: icmp, port: [7] }, via: [isp1] }]'), field: 'policies[0].match.port', problem: /icmp has no ports/ },
  // Collisions with other software in this kernel
  {
    name: 'a foreign ip rule inside our priorities',
    edit: (y) => y,
    field: 'rules.priority',
    problem: /ip rule 4150 .* of other software sits in our priorities 4100–4199/,
    foreign: { add: ['rule add priority 4150 from 198.18.9.0/24 lookup main'], remove: ['rule del priority 4150'] },
  },
  {
    name: 'a foreign ip rule looking up one of our tables',
    edit: (y) => y,
    field: 'tables.base',
    problem: /looks up table 3150, inside our tables 3100–3199/,
    foreign: { add: ['rule add priority 900 from 198.18.9.0/24 lookup 3150'], remove: ['rule del priority 900'] },
  },
  {
    name: 'foreign routes in one of our tables',
    edit: (y) => y,
    field: 'tables.base',
    problem: /routing table 3160, inside our tables 3100–3199, holds routes of other software/,
    foreign: { add: ['route add 203.0.113.0/24 dev lan0 table 3160'], remove: ['route del 203.0.113.0/24 dev lan0 table 3160'] },
  },
  {
    name: "a mask over Tailscale's mark bits",
    edit: append('marks: { mask: "0x00ff0000" }'),
    field: 'marks.mask',
    problem: /fwmark 0x80000\/0xff0000 .* tests mark bits 0xff0000 inside marks.mask 0xff0000/,
    foreign: { add: ['rule add priority 5270 fwmark 0x80000/0xff0000 lookup main'], remove: ['rule del priority 5270'] },
  },
];

describe('invalid configs on a programmed gateway', () => {
  let lab: Lab;
  let valid: string;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, tag: 'bad', config: { schedule: '0 0 1 1 *' } });
    await lab.start();
    await lab.hello(lab.client(0));
    await within(3000, 'a client classified', () => lab.inClientSet(lab.client(0).ip));
    await lab.stop();
    valid = (await lab.runner.run(['cat', lab.files.config])).stdout;
    await writeFile(join(lab.files.dir, 'not-executable'), '#!/bin/sh\n');
    await chmod(join(lab.files.dir, 'not-executable'), 0o644);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test(`there are at least 30 distinct cases (${CASES.length})`, () => {
    expect(new Set(CASES.map((c) => c.name)).size).toBe(CASES.length);
    expect(CASES.length).toBeGreaterThanOrEqual(30);
  });

  test.each(CASES.map((c) => [c.name, c] as const))('%s: exit 2, the field named, the kernel byte for byte unchanged', async (_name, c) => {
    const path = join(lab.files.dir, 'bad.yaml');
    await writeFile(path, c.edit(valid, lab.files.dir));
    try {
      if (c.foreign) for (const line of c.foreign.add) await lab.runIn(lab.topo.gw, ['ip', ...line.split(' ')]);
      const before = await lab.snapshot();
      const result = await lab.cli(['start'], [2], path);
      expect(result.stderr).toContain(`invalid configuration in ${path}:`);
      expect(result.stderr).toContain(`\n  ${c.field}`);
      expect(result.stderr).toMatch(c.problem);
      expect(await lab.snapshot()).toEqual(before);
    } finally {
      if (c.foreign) for (const line of c.foreign.remove) await lab.runIn(lab.topo.gw, ['ip', ...line.split(' ')]);
    }
  });

  test('a config file that cannot be read names --config', async () => {
    const before = await lab.snapshot();
    const missing = await lab.cli(['start'], [2], join(lab.files.dir, 'absent.yaml'));
    expect(missing.stderr).toMatch(/--config: cannot read .*absent\.yaml \(ENOENT\)/);
    await mkdir(join(lab.files.dir, 'a-directory.yaml'));
    const directory = await lab.cli(['start'], [2], join(lab.files.dir, 'a-directory.yaml'));
    expect(directory.stderr).toMatch(/--config: cannot read .*a-directory\.yaml \(EISDIR\)/);
    expect(await lab.snapshot()).toEqual(before);
  });

  test('reload with a bad config, by SIGHUP or by command, keeps the running config and says why', async () => {
    await lab.start();
    const running = await lab.snapshot();
    const pid = (await lab.status()).pid;
    // A config that passes the file check but collides with a foreign route in its new table range.
    await lab.runIn(lab.topo.gw, ['ip', 'route', 'add', '203.0.113.0/24', 'dev', 'lan0', 'table', '5150']);
    try {
      await writeFile(lab.files.config, `${valid}\ntables: { base: 5100 }\n`);
      const before = await lab.snapshot();
      await lab.runner.run(['kill', '-HUP', String(pid)]);
      await within(3000, 'the refusal logged', async () => lab.daemon!.logs.some((l) => l.includes('reload refused') && l.includes('tables.base')));
      expect(await lab.snapshot()).toEqual(before);
      const byCommand = await lab.cli(['reload'], [2]);
      expect(byCommand.stderr).toMatch(/tables\.base: routing table 5150, inside our tables 5100–5199, holds routes of other software/);
      await writeFile(lab.files.config, `${valid}\nclients: { max: many }\n`);
      expect((await lab.cli(['reload'], [2])).stderr).toMatch(/clients\.max/);
      expect(await lab.snapshot()).toEqual(before);
      const status: StatusJson = await lab.status();
      expect(status.pid).toBe(pid);
      expect(status.uplinks.map((u) => u.state)).toEqual(['up', 'up', 'up']);
    } finally {
      await lab.runIn(lab.topo.gw, ['ip', 'route', 'del', '203.0.113.0/24', 'dev', 'lan0', 'table', '5150']);
      await writeFile(lab.files.config, valid);
    }
    expect(running.rules).toBe((await lab.snapshot()).rules);
    await lab.stop();
  });
});

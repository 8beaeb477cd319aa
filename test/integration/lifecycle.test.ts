// The daemon's life on a gateway: first start, new clients picked up from
// netlink events (no scan), operator pins, restart without any change,
// bad configs refused without touching the kernel, flush back to exactly
// what was there before.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { Lab, type PoolsJson, type StatusJson, within } from '../helpers/lab.js';

jest.setTimeout(60_000);

const YEARLY = '0 0 1 1 *'; // the scan never runs during the test: only events can pick clients up

describe('daemon lifecycle in one lab', () => {
  let lab: Lab;
  let pristine: Record<string, string>;
  const assigned = async (): Promise<number> => (await lab.cliJson<PoolsJson>(['pools'])).clients;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 6, config: { schedule: YEARLY } });
    pristine = await lab.snapshot();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('a bad config is refused with exit code 2 and the field named, and the kernel is untouched', async () => {
    const bad = `${lab.files.dir}/bad.yaml`;
    await writeFile(bad, 'lan: { interfaces: [lan0] }\nuplinks:\n  - { name: isp1, interface: ppp0, weight: 0 }\n  - { name: isp2, interface: lan0 }\n');
    const result = await lab.cli(['start'], [2], bad);
    expect(result.stderr).toContain('uplinks[0].weight: must be a whole number from 1 to 256, not 0');
    expect(result.stderr).toContain('uplinks[1].interface: lan0 is also a LAN interface');
    expect(await lab.snapshot()).toEqual(pristine);
  });

  test('start programs the kernel; a second start on the same socket is refused', async () => {
    await lab.start();
    const second = await lab.cli(['start'], [1]);
    expect(second.stderr).toMatch(/another dispatcher is already running on .*dispatcher\.sock/);
    const status = await lab.cliJson<StatusJson>(['status']);
    expect(status.running).toBe(true);
    expect(status.uplinks.map((u) => u.state)).toEqual(['up', 'up', 'up']);
  });

  test('a new client is picked up from the neighbour event in well under a second, without a scan', async () => {
    const timings: number[] = [];
    for (const client of lab.topo.clients.slice(0, 5)) {
      const started = performance.now();
      await lab.hello(client);
      await within(3000, `${client.ip} classified`, () => lab.inClientSet(client.ip));
      timings.push(performance.now() - started);
    }
    expect(await assigned()).toBe(5);
    // From starting the client's first packet (a node process in its namespace) to its address in the kernel's set.
    process.stdout.write(`new-client pickup (hello → classified): ${timings.map((t) => `${t.toFixed(0)} ms`).join(', ')}\n`);
    // Typically 0.3–0.6 s; a busy 2-core CI machine once took 1.2 s for one of five (starting node is most of it).
    const sorted = [...timings].sort((a, b) => a - b);
    expect(sorted[2]).toBeLessThan(1000);
    expect(sorted[4]).toBeLessThan(2500);
  });

  test('a neighbour entry is classified in the kernel within a fraction of a second', async () => {
    // Straight into the gateway's neighbour table, as the kernel does on the first ARP.
    const started = performance.now();
    await lab.runIn(lab.topo.gw, ['ip', 'neigh', 'replace', '198.18.7.7', 'lladdr', '02:00:00:07:07:07', 'dev', 'lan0', 'nud', 'reachable']);
    await within(1000, '198.18.7.7 in the client set', () => lab.inClientSet('198.18.7.7'));
    process.stdout.write(`neighbour entry → ipset member: ${(performance.now() - started).toFixed(0)} ms\n`);
  });

  test('dispatcher assign pins a client; its next connection leaves by that uplink', async () => {
    const client = lab.client(0);
    const before = await lab.leavesBy(client);
    const target = before === 'isp3' ? 'isp2' : 'isp3';
    const out = (await lab.cli(['assign', client.ip, target])).stdout;
    expect(out).toBe(`${client.ip} pinned to ${target}\n`);
    expect(await lab.leavesBy(client)).toBe(target);
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    expect(pools.uplinks.find((u) => u.name === target)?.pinned).toContain(client.ip);
  });

  test('assign refuses an unknown uplink or an address outside the LAN (exit 2)', async () => {
    expect((await lab.cli(['assign', '198.18.0.10', 'nope'], [2])).stderr).toMatch(/no uplink named "nope"; configured: isp1, isp2, isp3/);
    expect((await lab.cli(['assign', '10.9.9.9', 'isp1'], [2])).stderr).toMatch(/outside lan.subnets/);
    expect((await lab.cli(['assign', '198.18.0.999', 'isp1'], [2])).stderr).toMatch(/not a unicast IPv4 address/);
  });

  test('restart: identical assignments and identical kernel state, nothing reloaded', async () => {
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    const kernel = await lab.snapshot();
    expect(await lab.stop()).toBe(0);
    // Stopped: the kernel keeps everything, so clients stay online.
    expect(await lab.snapshot()).toEqual(kernel);
    expect(await lab.leavesBy(lab.client(0))).toBe(pools.uplinks.find((u) => u.pinned.includes(lab.client(0).ip))?.name);
    const offline = await lab.cliJson<PoolsJson>(['pools']);
    expect(offline.source).toBe('store');
    expect(offline.uplinks.map((u) => u.clients)).toEqual(pools.uplinks.map((u) => u.clients));
    await lab.start();
    const after = await lab.cliJson<PoolsJson>(['pools']);
    expect(after.uplinks.map((u) => [u.name, u.clients, u.pinned])).toEqual(pools.uplinks.map((u) => [u.name, u.clients, u.pinned]));
    expect(await lab.snapshot()).toEqual(kernel);
    const status = await lab.cliJson<StatusJson>(['status']);
    expect(status.lastRun).toMatchObject({ ok: true, applied: { ipset: 0, iptables: 0, ip: 0, sysctl: 0 } });
  });

  test('release forgets a client; if present it joins the least-loaded pool again, unpinned', async () => {
    const client = lab.client(0);
    expect((await lab.cli(['release', client.ip])).stdout).toMatch(new RegExp(`^${client.ip.replace(/\./g, '\\.')} released from isp[23]\n$`));
    await lab.cli(['scan']);
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    expect(pools.uplinks.some((u) => u.clients.includes(client.ip))).toBe(true);
    expect(pools.uplinks.flatMap((u) => u.pinned)).not.toContain(client.ip);
  });

  test('SIGHUP with a bad config keeps the running one; a good one is applied', async () => {
    const pid = Number((await lab.cliJson<{ pid: number }>(['status'])).pid);
    const good = await lab.snapshot();
    await writeFile(lab.files.config, 'lan: [broken');
    await lab.runner.run(['kill', '-HUP', String(pid)]);
    await within(3000, 'the refusal logged', async () => lab.daemon!.logs.some((l) => l.includes('reload refused')));
    expect(await lab.snapshot()).toEqual(good);
    await lab.rewriteConfig({ schedule: YEARLY, weights: { isp3: 5 } });
    await lab.runner.run(['kill', '-HUP', String(pid)]);
    await within(3000, 'multipath weight of isp3 is 5', async () => (await lab.runIn(lab.topo.gw, ['ip', 'route', 'show', 'table', '3100'])).stdout.includes('dev wan0 weight 5'));
  });

  test('moving our table and rule ranges while stopped leaves nothing behind in the old ones', async () => {
    const ours = async (): Promise<{ rules: string[]; tables: string[] }> => ({
      rules: (await lab.runIn(lab.topo.gw, ['ip', 'rule'])).stdout
        .split('\n')
        .filter((l) => l.includes('proto 211'))
        .map((l) => l.split(':')[0] as string),
      tables: [...new Set([...(await lab.runIn(lab.topo.gw, ['ip', 'route', 'show', 'table', 'all'])).stdout.matchAll(/table ([0-9]+) proto 211/g)].map((m) => m[1] as string))].sort(),
    });
    await lab.stop();
    await lab.rewriteConfig({ schedule: YEARLY, weights: { isp3: 5 }, extra: 'tables: { base: 5100 }\nrules: { priority: 6100 }' });
    await lab.start();
    const moved = await ours();
    expect(moved.rules.every((p) => p.startsWith('61'))).toBe(true);
    expect(moved.rules).toHaveLength(11);
    expect(moved.tables).toEqual(['5100', '5101', '5102', '5103', '5133', '5134', '5135']);
    await lab.stop();
    await lab.rewriteConfig({ schedule: YEARLY, weights: { isp3: 5 } });
    await lab.start();
    const back = await ours();
    expect(back.rules.every((p) => p.startsWith('41'))).toBe(true);
    expect(back.rules).toHaveLength(11);
    expect(back.tables).toEqual(['3100', '3101', '3102', '3103', '3133', '3134', '3135']);
  });

  test('flush while the daemon runs is refused; after stop, flush restores the kernel exactly', async () => {
    expect((await lab.cli(['flush'], [1])).stderr).toMatch(/daemon is running .* stop it first/);
    await lab.stop();
    const out = (await lab.cli(['flush'])).stdout;
    expect(out).toContain('removed client set: yes');
    expect(await lab.snapshot()).toEqual(pristine);
    expect((await lab.cli(['flush'])).stdout).toBe('nothing to remove: the kernel holds nothing of the dispatcher\n');
  });
});

// Each client's traffic leaves by the MASQUERADE address of its pool's uplink,
// as the internet host reports it; weights set the split; two ppp uplinks with
// the same gateway address both work; the gateway's own traffic is covered.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { AGENT } from '../../src/lab/harness.js';
import { Lab, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(60_000);

describe('three uplinks (two ppp sharing gateway 192.0.2.1, one ethernet), weights 2:1:1, 8 clients', () => {
  let lab: Lab;
  let pools: PoolsJson;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 8 });
    await lab.start();
    // Clients appear one after another, as on a real LAN.
    for (const client of lab.topo.clients) await lab.hello(client);
    await within(5000, 'all 8 clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 8);
    pools = await lab.cliJson<PoolsJson>(['pools']);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('pools --json lists every uplink with its clients, state and weight', () => {
    expect(pools.source).toBe('daemon');
    expect(pools.uplinks.map((u) => [u.name, u.interface, u.state, u.weight, u.clients.length])).toEqual([
      ['isp1', 'ppp0', 'up', 2, 4],
      ['isp2', 'ppp1', 'up', 1, 2],
      ['isp3', 'wan0', 'up', 1, 2],
    ]);
    expect(pools.uplinks.map((u) => u.gateway)).toEqual(['192.0.2.1', '192.0.2.1', '192.0.2.9']);
  });

  test('every client reaches the internet host from the address of its own uplink', async () => {
    const poolOf = new Map(pools.uplinks.flatMap((u) => u.clients.map((c) => [c, u.name] as const)));
    for (const client of lab.topo.clients) {
      expect([client.ip, await lab.leavesBy(client)]).toEqual([client.ip, poolOf.get(client.ip)]);
    }
  });

  test('both uplinks behind the same gateway address carry their own pools', async () => {
    const [isp1, isp2] = pools.uplinks;
    const sawIsp1 = await lab.leavesBy(lab.topo.clients.find((c) => c.ip === isp1!.clients[0])!);
    const sawIsp2 = await lab.leavesBy(lab.topo.clients.find((c) => c.ip === isp2!.clients[0])!);
    expect([sawIsp1, sawIsp2]).toEqual(['isp1', 'isp2']);
  });

  test('the gateway itself reaches the internet, and traffic from an uplink address leaves by that uplink', async () => {
    const own = JSON.parse((await lab.runIn(lab.topo.gw, [process.execPath, AGENT, 'get', `http://${lab.topo.server}/`])).stdout) as { source: string };
    expect(lab.topo.uplinks.map((u) => u.local)).toContain(own.source);
    for (const uplink of lab.topo.uplinks) {
      const bound = JSON.parse((await lab.runIn(lab.topo.gw, [process.execPath, AGENT, 'get', `http://${lab.topo.server}/`, uplink.local])).stdout) as { source: string };
      expect([uplink.name, bound.source]).toEqual([uplink.name, uplink.local]);
    }
  });

  test('the kernel holds one classification rule per LAN interface, not one per client', async () => {
    const saved = (await lab.runIn(lab.topo.gw, ['iptables-save'])).stdout;
    expect(saved.match(/--map-set dispatcher-clients src --map-mark/g)).toHaveLength(1);
    const members = (await lab.runIn(lab.topo.gw, ['ipset', 'save', 'dispatcher-clients'])).stdout.split('\n').filter((l) => l.startsWith('add '));
    expect(members).toHaveLength(8);
  });
});

describe('two uplinks, weights 2:1, 9 clients', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({
      clients: 9,
      uplinks: [
        { name: 'fast', interface: 'ppp0', weight: 2 },
        { name: 'slow', interface: 'eth1', weight: 1 },
      ],
    });
    await lab.start();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('pools fill 6:3 and the internet host sees traffic split 6:3', async () => {
    await Promise.all(lab.topo.clients.map((c) => lab.hello(c)));
    await within(5000, 'all 9 clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 9);
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    expect(pools.uplinks.map((u) => u.clients.length)).toEqual([6, 3]);
    const seen: Record<string, number> = {};
    for (const client of lab.topo.clients) {
      const uplink = await lab.leavesBy(client);
      seen[uplink] = (seen[uplink] ?? 0) + 1;
    }
    expect(seen).toEqual({ fast: 6, slow: 3 });
  });
});

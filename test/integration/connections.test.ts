// A connection stays on the uplink it started on: moving its client to
// another pool changes where new connections go, never where an open one is.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { Lab, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(60_000);

describe('moving a client with an open connection', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2 });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    await within(5000, 'both clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 2);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('the open connection keeps its uplink and keeps working; new connections use the new pool', async () => {
    const client = lab.client(0);
    const home = await lab.leavesBy(client);
    const address = (name: string): string => lab.topo.uplinks.find((u) => u.name === name)!.local;
    const session = await lab.session(client);
    try {
      expect(await session.send('before')).toBe(`${address(home)} before`);
      const target = home === 'isp3' ? 'isp2' : 'isp3';
      await lab.cli(['assign', client.ip, target]);
      // The same TCP connection, after the move: still answered, still from the old uplink's address.
      for (let i = 0; i < 5; i++) expect(await session.send(`after-${i}`)).toBe(`${address(home)} after-${i}`);
      expect(await lab.leavesBy(client)).toBe(target);
      // And back again: the connection still lives on its first uplink.
      await lab.cli(['assign', client.ip, home]);
      expect(await session.send('back')).toBe(`${address(home)} back`);
    } finally {
      session.close();
    }
  });

  test('the connection mark is what pins it: conntrack carries its uplink', async () => {
    const session = await lab.session(lab.client(1));
    try {
      const source = (await session.send('x')).split(' ')[0];
      const uplink = lab.topo.uplinks.findIndex((u) => u.local === source);
      const entries = (await lab.runIn(lab.topo.gw, ['conntrack', '-L', '-p', 'tcp', '--dport', '7'])).stdout;
      const line = entries.split('\n').find((l) => l.includes(`src=${lab.client(1).ip}`) && l.includes('ESTABLISHED'));
      // Upper nibble of the mark: uplink index + 1 (iptables/README.md, "Marks").
      const mark = Number(/mark=([0-9]+)/.exec(line ?? '')?.[1]);
      expect((mark >>> 28) - 1).toBe(uplink);
    } finally {
      session.close();
    }
  });
});

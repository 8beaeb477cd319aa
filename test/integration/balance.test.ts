// balance.mode destination and connection on the real kernel, with both
// netfilter backends. Three lines weighted 2:1:1 (the buckets 32:16:16). The
// client reaches 16 internet addresses by TCP; the echo service says which
// public address each connection came from, so the line is seen from outside.
//
// destination: 16 (and 128) destinations spread over the three lines by weight; one
// destination keeps its line over 50 new connections; when isp2 dies only its
// destinations move, and when it returns exactly those come back.
// connection: 1,000 connections to one address split by weight, and each
// connection's conntrack entry carries the line it left by (its NAT address)
// in its mark, which is what keeps every later packet on that line.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { blackhole } from '../../src/lab/faults.js';
import type { LabClient } from '../../src/lab/topology.js';
import { Lab, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(300_000);

const WEIGHTS = { isp1: 2, isp2: 1, isp3: 1 };
const SHARES: Record<string, number> = { isp1: 0.5, isp2: 0.25, isp3: 0.25 };
const DESTINATIONS = Array.from({ length: 16 }, (_, i) => `203.0.113.${i + 1}`);
/** 128 destinations (the internet host's own 203.0.113.100 among the first 129 is skipped: it is there already). */
const MANY = Array.from({ length: 129 }, (_, i) => `203.0.113.${i + 1}`).filter((a) => a !== '203.0.113.100');
// The tests fail a line on purpose: no flap damping.
const NO_DAMPING = 'health: { damping: { suppress: 100, reuse: 1 } }';

function balancedLab(backend: 'iptables' | 'nftables', mode: 'destination' | 'connection'): Promise<Lab> {
  return Lab.create({ clients: 1, tag: `b${mode[0]}${backend[0]}`, config: { backend, weights: WEIGHTS, extra: `balance: { mode: ${mode} }\n${NO_DAMPING}` } });
}

/** Starts the daemon, makes the client known and gives the internet host the destinations; returns the client. */
async function started(lab: Lab): Promise<LabClient> {
  await lab.start();
  const client = lab.topo.clients[0] as LabClient;
  await lab.hello(client);
  await within(10_000, 'the client assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 1);
  await lab.runner.run(['ip', '-n', lab.topo.inet, '-batch', '-'], { input: MANY.map((a) => `addr add ${a}/32 dev lo\n`).join('') });
  return client;
}

/** The line a public address belongs to. */
const lineOf = (lab: Lab, source: string): string => lab.topo.uplinks.find((u) => u.publicAddress === source)?.name ?? `unknown ${source}`;

function counts(lines: readonly string[]): Record<string, number> {
  const out: Record<string, number> = { isp1: 0, isp2: 0, isp3: 0 };
  for (const line of lines) out[line] = (out[line] ?? 0) + 1;
  return out;
}

describe.each(['iptables', 'nftables'] as const)('balance modes, %s backend', (backend) => {
  describe('destination', () => {
    let lab: Lab;
    let client: LabClient;
    /** Each destination's line, from one new connection to each. */
    const lines = async (): Promise<Map<string, string>> => new Map((await lab.fan(client, DESTINATIONS, 1)).map((c) => [c.address, lineOf(lab, c.first)]));

    beforeAll(async () => {
      lab = await balancedLab(backend, 'destination');
      client = await started(lab);
    });
    afterAll(async () => {
      await lab?.destroy();
    });

    test('16 destinations spread over the lines by weight (each within 4 of its share of 8:4:4), 128 within 10 points of 50:25:25 %; one destination keeps its line over 50 connections; explain --to names the line of each', async () => {
      const first = await lines();
      const spread = counts([...first.values()]);
      process.stdout.write(`${backend} destination mode, 16 destinations: ${JSON.stringify(spread)} (weights 2:1:1)\n`);
      for (const [line, share] of Object.entries(SHARES)) {
        expect(spread[line]).toBeGreaterThanOrEqual(1);
        expect(Math.abs((spread[line] as number) - 16 * share)).toBeLessThanOrEqual(4);
      }
      // explain --to computes the kernel's hash: it names the line each destination was seen on.
      for (const [address, line] of first) {
        const explained = await lab.cliJson<{ to: { bucket: number; pool: string } }>(['explain', client.ip, '--to', address]);
        expect([address, explained.to.pool]).toEqual([address, line]);
      }
      // The same destination, 50 new connections (new source ports): always the same line.
      const repeated = await lab.fan(client, [DESTINATIONS[0] as string], 50);
      expect(new Set(repeated.map((c) => lineOf(lab, c.first)))).toEqual(new Set([first.get(DESTINATIONS[0] as string)]));
      // And the whole map again: unchanged.
      expect(await lines()).toEqual(first);
      // Over 128 destinations the shares come close to the weights (the hash is fixed: the same every run).
      const wide = counts((await lab.fan(client, MANY, 1)).map((c) => lineOf(lab, c.first)));
      process.stdout.write(`${backend} destination mode, 128 destinations: ${JSON.stringify(wide)}\n`);
      for (const [line, share] of Object.entries(SHARES)) expect(Math.abs((wide[line] as number) / MANY.length - share)).toBeLessThanOrEqual(0.1);
    });

    test("a dead line's destinations move to the others, the rest stay; its return brings back exactly those", async () => {
      const before = await lines();
      const onIsp2 = [...before].filter(([, line]) => line === 'isp2').map(([address]) => address);
      expect(onIsp2.length).toBeGreaterThan(0);
      await blackhole(lab.runner, lab.uplink('isp2'), true);
      await within(10_000, 'isp2 down', async () => (await lab.stateOf('isp2')) === 'down');
      const during = await lines();
      for (const [address, line] of before) {
        if (line === 'isp2') expect(during.get(address)).not.toBe('isp2');
        else expect(during.get(address)).toBe(line);
      }
      await blackhole(lab.runner, lab.uplink('isp2'), false);
      await within(10_000, 'isp2 back', async () => (await lab.stateOf('isp2')) === 'up');
      expect(await lines()).toEqual(before);
      process.stdout.write(
        `${backend} destination mode: isp2 died, its ${onIsp2.length} destinations moved (${onIsp2.map((a) => `${a}→${during.get(a)}`).join(', ')}), the other ${16 - onIsp2.length} stayed; all back on return\n`,
      );
    });
    test('a client an operator pinned keeps its line for every destination', async () => {
      await lab.cli(['assign', client.ip, 'isp3']);
      const pinned = counts([...(await lines()).values()]);
      expect(pinned).toEqual({ isp1: 0, isp2: 0, isp3: 16 });
      await lab.cli(['release', client.ip]);
      // Still in the neighbour table: the next scan assigns it again.
      await lab.cli(['scan']);
      await within(10_000, 'the client assigned again', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 1);
    });
  });

  describe('connection', () => {
    let lab: Lab;
    let client: LabClient;

    beforeAll(async () => {
      lab = await balancedLab(backend, 'connection');
      client = await started(lab);
    });
    afterAll(async () => {
      await lab?.destroy();
    });

    test('1,000 connections to one address split by weight (each line within 6 points of 50:25:25 %); each connection is marked with the line it left by', async () => {
      const started = performance.now();
      const connections = await lab.fan(client, [DESTINATIONS[0] as string], 1000, 20);
      const ms = Math.round(performance.now() - started);
      const spread = counts(connections.map((c) => lineOf(lab, c.first)));
      process.stdout.write(`${backend} connection mode, 1000 connections to one address: ${JSON.stringify(spread)} (weights 2:1:1) in ${ms} ms\n`);
      for (const [line, share] of Object.entries(SHARES)) expect(Math.abs((spread[line] as number) / 1000 - share)).toBeLessThanOrEqual(0.06);
      // Both lines of every connection came from one address (its NAT stays).
      expect(connections.filter((c) => c.first !== c.second)).toEqual([]);
      // Every entry's connection mark names the line whose address it is NATed to: later packets follow the mark.
      const entries = (await lab.runIn(lab.topo.gw, ['conntrack', '-L', '-p', 'tcp', '--dport', '7', '-d', DESTINATIONS[0] as string])).stdout.split('\n').filter((l) => l.includes(`src=${client.ip}`));
      expect(entries.length).toBeGreaterThanOrEqual(1000);
      const mismatched = entries.filter((entry) => {
        const natted = /src=\S+ dst=\S+ sport=\d+ dport=\d+ .*src=\S+ dst=(\S+)/.exec(entry)?.[1] ?? '';
        const mark = Number(/mark=(\d+)/.exec(entry)?.[1]);
        // Upper nibble of the mark: uplink index + 1 (iptables/README.md, "Marks").
        return lab.topo.uplinks[(mark >>> 28) - 1]?.publicAddress !== natted;
      });
      expect(mismatched.slice(0, 3)).toEqual([]);
    });
  });
});

// A hostile LAN: a neighbour table flooded with entries — addresses outside
// the LAN subnets, one MAC claiming thousands of addresses, addresses whose
// MAC keeps changing, multicast/broadcast/zero addresses and MACs — and more
// valid clients than clients.max. Only valid clients are assigned, one MAC
// gets at most clients.per_mac, the total stops at clients.max, each cap is
// logged once (not once per address or per scan), memory stays bounded and
// the daemon keeps answering.
// Sizes: 15,000 entries in CI, 100,000 in `npm run test:long`.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFile } from 'node:fs/promises';
import { addNeighbours, benchAddress } from '../../src/bench/clients.js';
import { clientSet, expectConverged } from '../helpers/checks.js';
import { Lab, within, type PoolsJson } from '../helpers/lab.js';
import { scale } from '../helpers/long.js';

const VALID = scale(8000, 60_000);
const CLAIMED = scale(2000, 4000);
const OUTSIDE = scale(5000, 36_000);
const MAX = scale(6000, 50_000);
const PER_MAC = 64;
const CLAIMER = '02:66:66:66:66:66';
jest.setTimeout(scale(120_000, 600_000));

const hex = (n: number): string => n.toString(16).padStart(2, '0');
/** Addresses 198.18.240.0 and up: above every valid client's. */
const claimedAddress = (i: number): string => `198.18.${240 + (i >> 8)}.${i & 255}`;
const outsideAddress = (i: number): string => `198.19.${i >> 8}.${i & 255}`;

/** The neighbour entries that must never become clients, and why. */
const SPECIAL: [string, string, string][] = [
  ['224.0.0.5', '01:00:5e:00:00:05', 'multicast address'],
  ['239.255.255.250', '01:00:5e:7f:ff:fa', 'multicast address'],
  ['255.255.255.255', 'ff:ff:ff:ff:ff:ff', 'limited broadcast'],
  ['0.0.0.0', '02:00:00:00:00:01', 'zero address'],
  ['198.18.255.255', '02:00:00:00:00:02', "the LAN's broadcast address"],
  ['198.18.1.50', '00:00:00:00:00:00', 'zero MAC'],
  ['198.18.1.51', 'ff:ff:ff:ff:ff:ff', 'broadcast MAC'],
  ['198.18.1.52', '01:00:5e:01:02:03', 'multicast MAC'],
  ['198.18.1.53', '33:33:00:00:00:01', 'IPv6 multicast MAC'],
  ['203.0.113.77', '02:00:00:00:00:03', 'outside the LAN subnets'],
];

async function batch(lab: Lab, lines: string[]): Promise<void> {
  await lab.runner.run(['ip', '-n', lab.topo.gw, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function daemonFootprint(pid: number): Promise<{ rssMb: number; cpuS: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  return { rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024, cpuS: (Number(stat[11]) + Number(stat[12])) / 100 };
}

describe(`a hostile LAN (${VALID + CLAIMED + OUTSIDE + SPECIAL.length} neighbour entries)`, () => {
  let lab: Lab;
  let pid: number;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 1, tag: 'host', config: { schedule: '0 0 1 1 *', extra: `clients: { max: ${MAX}, per_mac: ${PER_MAC} }` } });
    await lab.start();
    pid = (await lab.status()).pid;
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  const logged = (text: string): number => lab.daemon!.logs.filter((l) => l.includes(text)).length;

  test('junk and a MAC claiming thousands of addresses: nothing invalid assigned, the claimer capped, one log line', async () => {
    const before = await daemonFootprint(pid);
    const dev = lab.topo.lanInterface;
    await batch(lab, [
      ...SPECIAL.map(([ip, mac]) => `neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`),
      ...Array.from({ length: CLAIMED }, (_, i) => `neigh replace ${claimedAddress(i)} lladdr ${CLAIMER} dev ${dev} nud permanent`),
      ...Array.from({ length: OUTSIDE }, (_, i) => `neigh replace ${outsideAddress(i)} lladdr 02:77:00:00:${hex(i >> 8)}:${hex(i & 255)} dev ${dev} nud permanent`),
    ]);
    await lab.cli(['scan']);
    await lab.cli(['scan']);
    const set = await clientSet(lab);
    expect(set.size).toBe(PER_MAC);
    expect([...set.keys()].every((ip) => ip.startsWith('198.18.24') || ip.startsWith('198.18.25'))).toBe(true);
    for (const [ip, , why] of SPECIAL) expect([ip, why, set.has(ip)]).toEqual([ip, why, false]);
    expect(logged(`clients.per_mac reached: MAC ${CLAIMER}`)).toBe(1);
    const after = await daemonFootprint(pid);
    process.stdout.write(`hostile LAN, junk: ${CLAIMED + OUTSIDE + SPECIAL.length} entries, ${set.size} assigned; daemon RSS ${after.rssMb.toFixed(0)} MB, CPU ${(after.cpuS - before.cpuS).toFixed(2)} s\n`);
  });

  test('more valid clients than clients.max, and addresses flapping between MACs: the total stops at the cap, flappers keep their pool', async () => {
    const before = await daemonFootprint(pid);
    await addNeighbours(lab, VALID);
    await within(30_000, 'the client set full', async () => (await clientSet(lab)).size === MAX);
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    const uplinkOf = new Map(pools.uplinks.flatMap((u) => u.clients.map((ip) => [ip, u.name] as const)));
    // 50 assigned addresses change MAC ten times each, in bursts.
    const flappers = Array.from({ length: 50 }, (_, i) => benchAddress(i * 7));
    for (let round = 0; round < 10; round++) {
      await batch(
        lab,
        flappers.map((ip, i) => `neigh replace ${ip} lladdr 02:f1:${hex(round)}:00:${hex(i >> 8)}:${hex(i & 255)} dev ${lab.topo.lanInterface} nud permanent`),
      );
    }
    await lab.cli(['scan']);
    await lab.cli(['scan']);
    const set = await clientSet(lab);
    expect(set.size).toBe(MAX);
    const after = await lab.cliJson<PoolsJson>(['pools']);
    const uplinkAfter = new Map(after.uplinks.flatMap((u) => u.clients.map((ip) => [ip, u.name] as const)));
    expect(flappers.filter((ip) => uplinkAfter.get(ip) !== uplinkOf.get(ip))).toEqual([]);
    expect(logged('clients.max reached')).toBe(1);
    expect(logged('clients.per_mac reached')).toBe(1);
    await expectConverged(lab);
    const footprint = await daemonFootprint(pid);
    process.stdout.write(`hostile LAN, valid: ${VALID} clients offered, ${set.size} assigned (clients.max ${MAX}); daemon RSS ${footprint.rssMb.toFixed(0)} MB, CPU ${(footprint.cpuS - before.cpuS).toFixed(2)} s\n`);
    // Bounded: the daemon's memory stays far below what a leak per entry would give.
    expect(footprint.rssMb).toBeLessThan(scale(300, 600));
    expect((await lab.status()).running).toBe(true);
  });
});

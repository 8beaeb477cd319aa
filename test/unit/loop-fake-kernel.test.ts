// The whole loop without root: the real daemon (config, store, health probes,
// monitors, reconciler, control socket) and `flush`, against the fake kernel
// that keeps state. What these prove as unit tests the namespace suites prove
// on the real kernel.

import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/load.js';
import { Daemon } from '../../src/engine/daemon.js';
import { loadBackends } from '../../src/engine/backend.js';
import { flush } from '../../src/engine/flush.js';
import { ConfigError } from '../../src/model/errors.js';
import { ask, askDaemon } from '../../src/system/control-client.js';
import { silentLogger } from '../../src/system/logger.js';
import { STORE_FILE, Store } from '../../src/system/store.js';
import { FakeKernel } from '../helpers/fake-kernel.js';

jest.setTimeout(20_000);

/** Two uplinks as in the lab (a ppp line whose peer is the gateway, a cable line) and three LAN clients. */
const CONFIG = `lan:
  interfaces: [lan0]
  subnets: [198.18.0.0/16]
uplinks:
  - name: isp1
    interface: ppp0
    weight: 2
    probe: { targets: [198.51.100.2] }
  - name: isp2
    interface: wan0
    gateway: 192.0.2.5
    weight: 1
    probe: { targets: [198.51.100.6] }
scan: { schedule: "0 0 1 1 *" }
`;

let dir: string;
let fake: FakeKernel;
let daemons: Daemon[];

function gateway(): FakeKernel {
  return FakeKernel.gateway({
    lan: 'lan0',
    uplinks: [
      { name: 'isp1', interface: 'ppp0', weight: 2, gateway: '192.0.2.1' },
      { name: 'isp2', interface: 'wan0', weight: 1 },
    ],
    clients: 3,
  });
}

const paths = () => ({ configPath: join(dir, 'config.yaml'), state: join(dir, 'state'), socket: join(dir, 'ctl.sock') });

function daemon(): Daemon {
  const { configPath, state, socket } = paths();
  const d = new Daemon({ configPath, overrides: { state, socket }, runner: fake, log: silentLogger, version: 'test', readSysctls: (keys) => fake.sysctlValues(keys) });
  daemons.push(d);
  return d;
}

/** Stops a daemon that started (one refused at start never did). */
async function stop(d: Daemon): Promise<void> {
  daemons.splice(daemons.indexOf(d), 1);
  await d.stop('test');
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-fake-loop-'));
  await writeFile(paths().configPath, CONFIG);
  fake = gateway();
  daemons = [];
});

afterEach(async () => {
  for (const d of daemons) await d.stop('test');
  fake.stopAll();
  await rm(dir, { recursive: true, force: true });
});

/** Golden files: set UPDATE_GOLDEN=1 to rewrite them after an intended change, then review the diff. */
function golden(name: string, text: string): void {
  const file = new URL(`../fixtures/golden/${name}.txt`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

/** The uplink each client is in, as the daemon reports it over its control socket. */
async function poolsOf(): Promise<Record<string, string>> {
  const response = (await askDaemon(paths().socket, { cmd: 'pools' })) as { ok: boolean; result: { uplinks: { name: string; clients: (string | { ip: string })[] }[] } };
  expect(response.ok).toBe(true);
  const pools: Record<string, string> = {};
  for (const uplink of response.result.uplinks) for (const client of uplink.clients) pools[typeof client === 'string' ? client : client.ip] = uplink.name;
  return pools;
}

describe('the daemon against the fake kernel', () => {
  test('the first start programs the gateway: golden dump of the 2-uplink, 3-client kernel', async () => {
    const report = await daemon().start();
    expect(report.ok).toBe(true);
    expect(report.added).toBe(3);
    golden('fake-kernel-first-start', fake.dump());
  });

  test('a second full run changes nothing: no write reaches the kernel and its dump is unchanged', async () => {
    await daemon().start();
    const after = fake.dump();
    const writes = fake.writes.length;
    const report = await ask(paths().socket, { cmd: 'scan' });
    expect(report?.ok).toBe(true);
    expect(report?.applied).toEqual({ ipset: 0, iptables: 0, ip: 0, sysctl: 0 });
    expect(fake.writes.slice(writes)).toEqual([]);
    expect(fake.dump()).toBe(after);
  });

  test('flush puts the kernel back exactly as it was before the first start', async () => {
    const before = fake.dump();
    const d = daemon();
    await d.start();
    expect(fake.dump()).not.toBe(before);
    await stop(d);
    const { configPath, state, socket } = paths();
    const report = await flush(fake, await loadConfig(configPath, { state, socket }), await Store.open(state), await loadBackends({ netfilter: { backend: 'iptables' } }));
    expect(report.nothingToDo).toBe(false);
    expect(fake.dump()).toBe(before);
  });

  test('a crash between apply and persist: the next start adopts the clients from the kernel with their uplinks and changes nothing', async () => {
    const storeFile = join(paths().state, STORE_FILE);
    // The store as it is on disk at each kernel write: after the first run's last
    // write, it is what a process killed before persisting would leave behind.
    let onDisk: string | null = null;
    fake.onWrite = () => {
      onDisk = existsSync(storeFile) ? readFileSync(storeFile, 'utf8') : null;
    };
    const first = daemon();
    await first.start();
    fake.onWrite = undefined;
    const pools = await poolsOf();
    expect(Object.keys(pools)).toHaveLength(3);
    const programmed = fake.dump();
    await stop(first);
    // The process "died" before its save: the disk holds what it held then.
    expect(onDisk).not.toBeNull();
    expect(Object.keys((JSON.parse(onDisk as unknown as string) as { clients: object }).clients)).toEqual([]);
    await writeFile(storeFile, onDisk as unknown as string);
    const writes = fake.writes.length;
    const second = daemon();
    const report = await second.start();
    expect(report.ok).toBe(true);
    expect(report.added).toBe(0);
    expect(await poolsOf()).toEqual(pools);
    const status = (await askDaemon(paths().socket, { cmd: 'status' })) as { result: { store: { adopted: number } } };
    expect(status.result.store.adopted).toBe(3);
    expect(fake.writes.slice(writes)).toEqual([]);
    expect(fake.dump()).toBe(programmed);
    // And the adoption was saved: the store knows them again.
    expect(Object.keys((JSON.parse(await readFile(storeFile, 'utf8')) as { clients: object }).clients).sort()).toEqual(Object.keys(pools).sort());
  });

  const foreign: [string, (kernel: FakeKernel) => Promise<unknown>, string][] = [
    ['an ip rule at one of our priorities', (k) => k.run(['ip', '-batch', '-'], { input: 'rule add priority 4150 from all lookup 100\n' }), 'rules.priority'],
    ['a route in one of our tables', (k) => k.run(['ip', '-batch', '-'], { input: 'route add table 3150 default via 192.0.2.5 dev wan0\n' }), 'tables.base'],
    ['an iptables rule using our mark bits', (k) => k.run(['iptables-restore', '--wait', '10', '--noflush'], { input: '*mangle\n-A PREROUTING -i lan0 -j MARK --set-xmark 0x1000000/0xff000000\nCOMMIT\n' }), 'marks.mask'],
  ];

  test.each(foreign)('a collision with %s is refused at start with the kernel unchanged', async (_, install, field) => {
    await install(fake);
    const before = fake.dump();
    const writes = fake.writes.length;
    const d = daemon();
    const refused = await d.start().then(
      () => null,
      (error: unknown) => error,
    );
    daemons.splice(daemons.indexOf(d), 1);
    expect(refused).toBeInstanceOf(ConfigError);
    expect((refused as ConfigError).problems.map((p) => p.field)).toContain(field);
    expect(fake.writes.slice(writes)).toEqual([]);
    expect(fake.dump()).toBe(before);
  });

  test('a client that appears on the LAN is heard on the neighbour monitor and put in a pool', async () => {
    await daemon().start();
    fake.addNeighbour('198.18.0.99', 'lan0');
    const deadline = Date.now() + 5000;
    while (!fake.ipsets.save('dispatcher-clients').includes('198.18.0.99') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(fake.ipsets.save('dispatcher-clients')).toMatch(/^add dispatcher-clients 198\.18\.0\.99 packets 0 bytes 0 skbmark 0x[12]000000\/0xf000000$/m);
  });

  test('a line that stops answering fails over: its pool table points at the survivor and only its connections are forgotten', async () => {
    await daemon().start();
    fake.connections.push(
      { proto: 'tcp', src: '198.18.0.10', dst: '203.0.113.100', sport: 40000, dport: 443, mark: 0x10000000 },
      { proto: 'tcp', src: '198.18.0.11', dst: '203.0.113.100', sport: 40001, dport: 443, mark: 0x20000000 },
    );
    fake.silent.add('198.51.100.2');
    const deadline = Date.now() + 8000;
    while (fake.connections.length === 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    expect(fake.connections.map((c) => c.mark)).toEqual([0x20000000]);
    const routes = fake.routing.dump().routes;
    // isp1's pool table (base + 1 + 32 + 0) now leaves by wan0.
    expect(routes.filter((r) => r.startsWith('table 3133 '))).toEqual(['table 3133 default via 192.0.2.5 dev wan0 onlink proto 211']);
    // The routes moved at once (prepared by the run before); the run the verdict asked for found them in place.
    let last: { reasons: string[]; applied: { ip: number } } | undefined;
    while (!last?.reasons.includes('health: isp1 down') && Date.now() < deadline) {
      last = ((await askDaemon(paths().socket, { cmd: 'status' })) as { result: { lastRun: typeof last } }).result.lastRun;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect(last).toMatchObject({ reasons: ['health: isp1 down'], applied: { ip: 0 } });
  });

  test('a restart over its own programming changes nothing', async () => {
    const first = daemon();
    await first.start();
    const programmed = fake.dump();
    await stop(first);
    const writes = fake.writes.length;
    const report = await daemon().start();
    expect(report.ok).toBe(true);
    expect(fake.writes.slice(writes)).toEqual([]);
    expect(fake.dump()).toBe(programmed);
  });

  test('a reload to other table and priority ranges leaves the kernel as a fresh start with them would', async () => {
    const moved = `${CONFIG}tables: { base: 3200 }\nrules: { priority: 4200 }\n`;
    await daemon().start();
    await writeFile(paths().configPath, moved);
    const response = (await askDaemon(paths().socket, { cmd: 'reload' })) as { ok: boolean };
    expect(response.ok).toBe(true);
    const fresh = gateway();
    const freshDir = await mkdtemp(join(tmpdir(), 'dispatcher-fake-loop-'));
    try {
      await writeFile(join(freshDir, 'config.yaml'), moved);
      const other = new Daemon({ configPath: join(freshDir, 'config.yaml'), overrides: { state: join(freshDir, 'state'), socket: join(freshDir, 'ctl.sock') }, runner: fresh, log: silentLogger, version: 'test' });
      await other.start();
      await other.stop('test');
    } finally {
      fresh.stopAll();
      await rm(freshDir, { recursive: true, force: true });
    }
    expect(fake.dump()).toBe(fresh.dump());
  });

  test('another program reloading its firewall removes our chains: noticed from nft monitor and put back at once, without a scan; only connections started meanwhile are forgotten', async () => {
    await daemon().start();
    const programmed = fake.dump();
    // Opened before the reload (it has its uplink and was translated); while our chains were gone (no uplink
    // of ours); and while they were gone but passed our mark rules since (an uplink, yet never translated).
    fake.connections.push(
      { proto: 'tcp', src: '198.18.0.10', dst: '203.0.113.9', sport: 40000, dport: 443, mark: 0x20000000, nat: '192.0.2.6' },
      { proto: 'tcp', src: '198.18.0.11', dst: '203.0.113.9', sport: 40001, dport: 443, mark: 0 },
      { proto: 'udp', src: '198.18.0.12', dst: '203.0.113.9', sport: 40002, dport: 53, mark: 0x10000000 },
    );
    await fake.run(['iptables-restore'], { input: '*mangle\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n' });
    expect(fake.dump()).not.toBe(programmed);
    const deadline = Date.now() + 5000;
    // The kernel's objects as programmed (the connections are judged below).
    const objects = (): string => fake.dump().split('## conntrack')[0] as string;
    while (objects() !== programmed.split('## conntrack')[0] && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(objects()).toBe(programmed.split('## conntrack')[0]);
    // The run reports its repair once it has saved, a moment after the kernel is loaded.
    let status = await ask(paths().socket, { cmd: 'status' });
    while (status?.repairs.total === 0 && Date.now() < deadline) status = await ask(paths().socket, { cmd: 'status' });
    expect(status?.repairs.total).toBe(1);
    expect(status?.repairs.last?.noticed).toEqual([expect.stringMatching(/^netfilter: flush table ip mangle, by iptables-restor \(pid [0-9]+\)$/)]);
    expect(status?.repairs.last?.what).toEqual([expect.stringMatching(/^iptables: [0-9]+ lines loaded$/)]);
    expect(status?.lastRun?.drift).toBe(true);
    expect(fake.connections.map((c) => c.src)).toEqual(['198.18.0.10']);
  });

  test('another program emptying the client set (no event reports it) is noticed by the check, asked of one ipset kept running, and repaired within the second', async () => {
    await daemon().start();
    const programmed = fake.dump();
    // Processes started (the loader's changes through the same session are calls with input).
    const sessions = (): number => fake.calls.filter((call) => call.argv.join(' ') === 'stdbuf -oL ipset -' && call.input === undefined).length;
    // The check reads its baseline after the first run.
    const ready = Date.now() + 5000;
    while (!fake.calls.some((call) => call.argv.join(' ') === 'ipset list -t') && Date.now() < ready) await new Promise((r) => setTimeout(r, 10));
    await fake.run(['ipset', 'restore'], { input: 'flush dispatcher-clients\n' });
    const flushed = Date.now();
    expect(fake.dump()).not.toBe(programmed);
    while (fake.dump() !== programmed && Date.now() < flushed + 5000) await new Promise((r) => setTimeout(r, 10));
    expect(fake.dump()).toBe(programmed);
    // One check round (0.75 s) and a run; generous for a busy machine.
    expect(Date.now() - flushed).toBeLessThan(2500);
    let status = await ask(paths().socket, { cmd: 'status' });
    while (status?.repairs.total === 0 && Date.now() < flushed + 5000) status = await ask(paths().socket, { cmd: 'status' });
    expect(status?.repairs.last?.noticed).toEqual([expect.stringMatching(/^dispatcher-clients: 1 references, 0 entries; .* \(after our last run: dispatcher-clients: 1 references, 3 entries; /)]);
    // Every check, and the repair's members, went to the one session; no process was started per check.
    expect(sessions()).toBe(1);
    expect(fake.calls.some((call) => call.argv.join(' ') === 'stdbuf -oL ipset -' && call.input?.startsWith('add dispatcher-clients '))).toBe(true);
    expect(fake.calls.filter((call) => call.argv.join(' ') === 'ipset list -t' && call.input === undefined).length).toBeGreaterThan(1);
  });

  test('the client set emptied while our run loaded it (before the check read it) is not taken for ours: the read right after the run is judged against the clients the run loaded', async () => {
    // Another program flushes the set the moment our first run has filled it, before the check's first read.
    const run = fake.run.bind(fake);
    let flushed = false;
    fake.run = async (argv, options) => {
      const result = await run(argv, options);
      if (!flushed && argv.join(' ') === 'ipset -exist restore' && options?.input?.includes('add dispatcher-clients ')) {
        flushed = true;
        await run(['ipset', 'restore'], { input: 'flush dispatcher-clients\n' });
      }
      return result;
    };
    await daemon().start();
    expect(flushed).toBe(true);
    const deadline = Date.now() + 5000;
    let status = await ask(paths().socket, { cmd: 'status' });
    while (status?.repairs.total === 0 && Date.now() < deadline) status = await ask(paths().socket, { cmd: 'status' });
    expect(status?.repairs.last?.noticed).toEqual(['dispatcher-clients holds 0 entries, our run loaded 3 (read right after our run)']);
    expect(fake.dump()).toContain('add dispatcher-clients 198.18.0.10');
  });

  test("our own netfilter changes are not taken for another program's: a second run and a new client count no repair", async () => {
    await daemon().start();
    fake.neighbours.push({ ip: '198.18.0.99', dev: 'lan0', mac: '02:00:00:00:00:99', state: 'REACHABLE' });
    const response = (await askDaemon(paths().socket, { cmd: 'scan' })) as { result: { ok: boolean; added: number } };
    expect(response.result).toMatchObject({ ok: true, added: 1 });
    await new Promise((r) => setTimeout(r, 1200));
    const status = await ask(paths().socket, { cmd: 'status' });
    expect(status?.repairs).toEqual({ total: 0, last: null, fighting: null });
    expect(status?.lastRun?.drift).toBe(false);
  });

  test('carrier lost moves the pool to the survivor, carrier back brings it home; flush afterwards still restores the kernel exactly', async () => {
    const pristine = fake.dump();
    const d = daemon();
    await d.start();
    const programmed = fake.dump();
    const until = async (done: () => boolean): Promise<void> => {
      const deadline = Date.now() + 8000;
      while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    };
    const poolTable = () => fake.routing.dump().routes.find((r) => r.startsWith('table 3134 '));
    fake.setCarrier('wan0', false);
    await until(() => poolTable()?.includes('dev ppp0') === true);
    expect(poolTable()).toBe('table 3134 default via 192.0.2.1 dev ppp0 onlink proto 211');
    fake.setCarrier('wan0', true);
    await until(() => fake.dump() === programmed);
    expect(fake.dump()).toBe(programmed);
    await stop(d);
    const { configPath, state, socket } = paths();
    await flush(fake, await loadConfig(configPath, { state, socket }), await Store.open(state), await loadBackends({ netfilter: { backend: 'iptables' } }));
    expect(fake.dump()).toBe(pristine);
  });
});

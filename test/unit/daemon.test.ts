import { afterEach, beforeEach, expect, jest, test } from '@jest/globals';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { poolsReportSchema, statusSchema } from '../../src/schema/control.js';
import { askDaemon } from '../../src/system/control-client.js';
import { Daemon } from '../../src/engine/daemon.js';
import { silentLogger } from '../../src/system/logger.js';
import { fixture } from '../helpers/fixtures.js';
import { capturedGatewayRunner } from '../helpers/scenario.js';

/** Self-repair reads sysctls from /proc/sys: this test process's are not the fake gateway's. */
const hostless = async (): Promise<Record<string, string>> => ({});

jest.setTimeout(15_000);

let dir: string;
let daemon: Daemon | null;

const NEW_CLIENT = '198.18.3.33 dev lan0 lladdr 02:00:00:00:03:21 REACHABLE \n';

async function writeConfig(schedule: string, extra = ''): Promise<string> {
  const lab = await readFile(new URL('../../pools/lab.yaml', import.meta.url), 'utf8');
  const path = join(dir, 'config.yaml');
  await writeFile(path, `${lab.replace(/scan: .*\n/, `scan: { schedule: "${schedule}" }\n`)}${extra}`);
  return path;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-daemon-'));
  daemon = null;
});

afterEach(async () => {
  await daemon?.stop('test');
  await rm(dir, { recursive: true, force: true });
});

// While the neighbour monitor runs, a scheduled scan reads the table at least every tenth of clients.expire (engine/reconciler.ts
// NEIGHBOUR_RESYNC_MS): with the shortest, a minute, every 6 s, so a client no event reported is found within that.
test('the scan schedule reads the neighbour table without any event and assigns what it finds', async () => {
  let arp = fixture('ip-neigh.txt');
  const runner = capturedGatewayRunner(() => arp);
  const config = await writeConfig('* * * * * *', 'clients: { expire: 1m }\n');
  const socket = join(dir, 'ctl.sock');
  daemon = new Daemon({ configPath: config, overrides: { state: join(dir, 'state'), socket }, runner, log: silentLogger, version: 'test', readSysctls: hostless });
  const first = await daemon.start();
  // The captured kernel already holds the lab's 8 clients in its set; with no
  // store they are adopted with their uplinks, not assigned afresh.
  expect(first.added).toBe(0);
  const status = await askDaemon(socket, { cmd: 'status' });
  expect(status).toMatchObject({ ok: true, result: { clients: 8, store: { adopted: 8, store: null } } });
  // What the daemon answers is what the protocol defines (schema/control.ts), field for field.
  for (const [cmd, schema] of [
    ['status', statusSchema],
    ['pools', poolsReportSchema],
  ] as const) {
    const response = await askDaemon(socket, { cmd });
    expect(response?.ok && schema.safeParse(response.result).error).toBeUndefined();
  }
  // The monitor was started before the first scan, so nothing between the two is missed.
  const monitor = runner.calls.findIndex((c) => c.argv.join(' ').endsWith('monitor neigh'));
  const firstScan = runner.calls.findIndex((c) => c.argv.join(' ') === 'ip -4 neigh show');
  expect(monitor).toBeGreaterThanOrEqual(0);
  expect(monitor).toBeLessThan(firstScan);
  arp += NEW_CLIENT;
  const deadline = Date.now() + 10_000;
  while (!runner.writes().some((c) => c.input?.includes('198.18.3.33')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  // The fake kernel never changes, so a scheduled run that comes before this check re-sends the same add
  // (a busy CI machine made two of them): each is the one client's add to the one pool it was given.
  const lines = runner.writes().flatMap((c) => (c.input ?? '').split('\n'));
  const adds = lines.filter((l) => l.includes('198.18.3.33'));
  expect(adds[0]).toMatch(/^add dispatcher-clients 198\.18\.3\.33 skbmark 0x[123]000000\/0xf000000( -exist)?$/);
  expect(new Set(adds.map((l) => l.replace(/ -exist$/, '')))).toEqual(new Set([adds[0]?.replace(/ -exist$/, '')]));
});

test('neighbour events lost to a netlink buffer overrun are repaired by a full scan', async () => {
  let arp = fixture('ip-neigh.txt');
  const runner = capturedGatewayRunner(() => arp);
  daemon = new Daemon({ configPath: await writeConfig('0 0 1 1 *'), overrides: { state: join(dir, 'state'), socket: join(dir, 'ctl.sock') }, runner, log: silentLogger, version: 'test', readSysctls: hostless });
  await daemon.start();
  const monitor = runner.spawned.find((s) => s.argv.join(' ').endsWith('monitor neigh'));
  // Its events never arrive (they were dropped); only the overrun report does.
  arp += NEW_CLIENT;
  monitor?.options.onErrorLine?.('netlink receive error No buffer space available (105)');
  const deadline = Date.now() + 3000;
  while (!runner.writes().some((c) => c.input?.includes('198.18.3.33')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  expect(runner.writes().some((c) => c.input?.includes('add dispatcher-clients 198.18.3.33'))).toBe(true);
});

test('stop releases the socket and the signal handlers', async () => {
  const runner = capturedGatewayRunner();
  const socket = join(dir, 'ctl.sock');
  const before = process.listenerCount('SIGHUP');
  daemon = new Daemon({ configPath: await writeConfig('0 0 1 1 *'), overrides: { state: join(dir, 'state'), socket }, runner, log: silentLogger, version: 'test', readSysctls: hostless });
  await daemon.start();
  expect(process.listenerCount('SIGHUP')).toBe(before + 1);
  expect((await askDaemon(socket, { cmd: 'ping' }))?.ok).toBe(true);
  await daemon.stop('test');
  expect(await daemon.done).toBe(0);
  expect(process.listenerCount('SIGHUP')).toBe(before);
  expect(await askDaemon(socket, { cmd: 'ping' })).toBeNull();
  daemon = null;
});

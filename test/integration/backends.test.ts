// The same gateway with either netfilter backend (netfilter.backend):
// iptables + ipset, or nftables' table inet dispatcher. Clients leave by their
// pools, bytes are counted per pool and per client (kept when the client
// moves), a dead line fails over and comes home,
// `exec --uplink` works, a restart changes nothing, other software's reload is
// repaired, and flush leaves the kernel exactly as before the first start.
// Then a gateway with nothing but nft: no iptables, no ipset on its PATH.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { blackhole } from '../../src/lab/faults.js';
import { AGENT } from '../../src/lab/harness.js';
import { runTempDir } from '../../src/lab/leftovers.js';
import { ask } from '../../src/system/control-client.js';
import { findTool } from '../../src/system/tools.js';
import { arrivals, Lab, longestGap, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(120_000);

const YEARLY = '0 0 1 1 *';
/** The dashboard inside the gateway namespace: its clients table is where a client's bytes are shown. */
const WEB = '127.0.0.1:8391';
const BACKENDS = ['iptables', 'nftables'] as const;

describe.each(BACKENDS)('the %s backend', (backend) => {
  let lab: Lab;
  let pristine: Record<string, string>;
  let pools: PoolsJson;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 3, tag: backend === 'nftables' ? 'nft' : 'ipt', config: { backend, schedule: YEARLY, extra: `web: { listen: "${WEB}" }\n` } });
    pristine = await lab.snapshot();
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    await within(5000, 'every client assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 3);
    pools = await lab.cliJson<PoolsJson>(['pools']);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  const poolOf = (ip: string): string => pools.uplinks.find((u) => u.clients.includes(ip))?.name as string;

  test('only its own objects: our table or our chains and set, not the other', async () => {
    const snapshot = await lab.snapshot();
    if (backend === 'nftables') {
      expect(snapshot.nft).toContain('table inet dispatcher');
      expect(snapshot.iptables).not.toContain('DISPATCHER');
      expect(snapshot.ipset).toBe('');
    } else {
      expect(snapshot.iptables).toContain('DISPATCHER-PRE');
      expect(snapshot.nft).not.toContain('table inet dispatcher');
    }
    for (const client of lab.topo.clients) expect(await lab.inClientSet(client.ip)).toBe(true);
  });

  test('every client leaves by its pool, and the bytes are counted per pool', async () => {
    for (const client of lab.topo.clients) expect(await lab.leavesBy(client)).toBe(poolOf(client.ip));
    const traffic = await ask(lab.files.socket, { cmd: 'traffic' });
    const busy = new Set(lab.topo.clients.map((c) => poolOf(c.ip)));
    for (const name of busy) {
      expect(traffic?.pools[name]?.sent).toBeGreaterThan(0);
      expect(traffic?.pools[name]?.received).toBeGreaterThan(0);
    }
    const explained = await lab.cli(['explain', lab.client(0).ip]);
    expect(explained.stdout).toContain(poolOf(lab.client(0).ip));
  });

  test('dispatcher exec --uplink sends a command by that uplink', async () => {
    for (const uplink of ['isp2', 'isp3']) {
      const result = await lab.cli(['exec', '--uplink', uplink, '--', process.execPath, AGENT, 'get', `http://${lab.topo.server}/`]);
      expect((JSON.parse(result.stdout) as { source: string }).source).toBe(lab.uplink(uplink).local);
    }
  });

  test('a silent blackhole fails over within 2 s, and the pool comes home', async () => {
    const client = lab.topo.clients.find((c) => poolOf(c.ip) === 'isp1') ?? lab.client(0);
    const home = poolOf(client.ip);
    const uplink = lab.uplink(home);
    const sending = lab.stream(client, `bh-${backend}`, 100, 5);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await blackhole(lab.runner, uplink, true);
    await sending;
    await new Promise((resolve) => setTimeout(resolve, 200));
    const gap = longestGap(arrivals(lab, `bh-${backend}`));
    process.stdout.write(`${backend}: blackhole on ${home}: stream gap ${gap.ms} ms (${gap.before} -> ${gap.after})\n`);
    expect(gap.ms).toBeLessThan(2000);
    expect(gap.after).not.toBe(uplink.local);
    await blackhole(lab.runner, uplink, false);
    await within(10_000, `${home} back`, async () => (await lab.stateOf(home)) === 'up');
    expect(await lab.leavesBy(client)).toBe(home);
  });

  test("another program's reload (nft flush ruleset) is repaired at once", async () => {
    const before = (await lab.status()).repairs.total;
    await lab.runIn(lab.topo.gw, ['nft', 'flush', 'ruleset']);
    await within(3000, 'repaired', async () => (await lab.status()).repairs.total > before);
    for (const client of lab.topo.clients) expect(await lab.leavesBy(client)).toBe(poolOf(client.ip));
  });

  test("each client's bytes come from its own entry in the client set or map, and stay when it moves to another pool", async () => {
    const client = lab.client(0);
    const row = async (): Promise<{ pool: string; bytes: number | null }> => {
      const body = (await lab.runIn(lab.topo.gw, [process.execPath, AGENT, 'get', `http://${WEB}/api/clients?order=bytes&q=${client.ip}`])).stdout;
      const rows = (JSON.parse(body) as { rows: { ip: string; pool: string; bytes: number | null }[] }).rows;
      return rows.find((r) => r.ip === client.ip) ?? { pool: 'missing', bytes: null };
    };
    const before = (await row()).bytes ?? 0;
    // 100 datagrams, each at least its IP and UDP headers (28 bytes) as the kernel counts it.
    await lab.stream(client, `bytes-${backend}`, 100, 1);
    let counted = 0;
    await within(12_000, 'the datagrams counted on the client', async () => {
      counted = (await row()).bytes ?? 0;
      return counted >= before + 100 * 28;
    });
    const home = poolOf(client.ip);
    const other = home === 'isp2' ? 'isp3' : 'isp2';
    await lab.cli(['assign', client.ip, other]);
    // A reading after the move (the dashboard reads the counters at most every 5 s): the new pool, the bytes kept.
    await within(12_000, `moved to ${other}`, async () => (await row()).pool === other);
    await new Promise((resolve) => setTimeout(resolve, 5_500));
    const moved = await row();
    process.stdout.write(`${backend}: ${client.ip} ${before} → ${counted} bytes after 100 datagrams; ${moved.bytes} after its move to ${other}\n`);
    expect(moved).toMatchObject({ pool: other });
    expect(moved.bytes).toBeGreaterThanOrEqual(counted);
    // Home again (pinned there, so the restart below finds everything as it was).
    await lab.cli(['assign', client.ip, home]);
    expect(await lab.leavesBy(client)).toBe(home);
  });

  test('a restart over its own programming loads nothing, and flush leaves the kernel as it was before the first start', async () => {
    await lab.stop();
    const programmed = await lab.snapshot();
    await lab.start();
    const lastRun = (await lab.status()).lastRun;
    expect(Object.values(lastRun?.applied ?? {}).reduce((a, b) => a + b, 0)).toBe(0);
    expect(await lab.snapshot()).toEqual(programmed);
    await lab.stop();
    await lab.cli(['flush']);
    expect(await lab.snapshot()).toEqual(pristine);
  });
});

describe('a gateway with nft but neither iptables nor ipset', () => {
  let lab: Lab;
  let bin: string;

  beforeAll(async () => {
    // A PATH with the tools the nftables backend needs and nothing else.
    bin = await runTempDir('nftonly');
    for (const tool of ['ip', 'nft', 'conntrack', 'ping', 'sysctl']) {
      const found = await findTool(tool);
      if (!found) throw new Error(`${tool} is not installed`);
      await symlink(found, join(bin, tool));
    }
    lab = await Lab.create({ clients: 2, tag: 'nftonly', config: { backend: 'nftables', schedule: YEARLY }, path: bin });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
  });

  afterAll(async () => {
    await lab?.destroy();
    await rm(bin, { recursive: true, force: true });
  });

  test('clients are pooled and leave by their pools; the daemon logged no failure', async () => {
    await within(5000, 'both clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 2);
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    for (const client of lab.topo.clients) expect(await lab.leavesBy(client)).toBe(pools.uplinks.find((u) => u.clients.includes(client.ip))?.name);
    const status = await lab.status();
    expect(status.lastRun?.ok).toBe(true);
    expect(lab.daemon?.logs.filter((line) => /"level":"error"/.test(line))).toEqual([]);
  });
});

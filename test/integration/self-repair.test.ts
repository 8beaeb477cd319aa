// Other software undoing ours while clients are online: a firewall reload of
// whole tables (netfilter-persistent, ufw), nftables.service's `flush
// ruleset`, a network manager deleting "foreign" ip rules or flushing routing
// tables, a script resetting ip_forward. Each is noticed at once (not by the
// scan, which is hourly here) and repaired; a client's stream through the
// gateway is silent for at most 2 s, and afterwards the client leaves by its
// own uplink again.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { ROUTE_PROTOCOL } from '../../src/core/contract.js';
import type { LabClient } from '../../src/lab/topology.js';
import { arrivals, Lab, longestGap, type PoolsJson, type Session, within } from '../helpers/lab.js';

jest.setTimeout(90_000);

const RATE = 100;
const GAP_LIMIT_MS = 2000;

describe('self-repair while a client streams', () => {
  let lab: Lab;
  let client: LabClient;
  let home: string;
  let session: Session;
  let repairs = 0;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 1, tag: 'repair', config: { schedule: '0 0 * * * *' } });
    await lab.start();
    client = lab.client(0);
    await lab.hello(client);
    await within(5000, 'the client assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 1);
    home = (await lab.cliJson<PoolsJson>(['pools'])).uplinks.find((u) => u.clients.includes(client.ip))?.name as string;
    session = await lab.session(client);
  });

  afterAll(async () => {
    session?.close();
    await lab?.destroy();
  });

  const address = (uplink: string): string => lab.uplink(uplink).local;

  /**
   * Streams from the client while `fault` runs 1 s in; returns the longest
   * gap, once the repair it caused has been counted.
   */
  async function repaired(tag: string, fault: () => Promise<unknown>): Promise<{ gapMs: number; what: readonly string[] }> {
    const sending = lab.stream(client, tag, RATE, 4);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await fault();
    await sending;
    await new Promise((resolve) => setTimeout(resolve, 200));
    await within(5000, 'the repair counted', async () => (await lab.status()).repairs.total > repairs);
    const status = await lab.status();
    repairs = status.repairs.total;
    const stream = arrivals(lab, tag);
    expect(stream.length).toBeGreaterThan(RATE * 2);
    // It started on the client's own uplink and still flows. (A datagram that left by another line in the
    // window makes the kernel drop its masqueraded connection, nf_nat_oif_changed: its next one starts a new
    // connection on whatever line that window gave it, which it then keeps. New connections go home: below.)
    expect(stream[0]?.source).toBe(address(home));
    expect(lab.topo.uplinks.map((u) => u.local)).toContain(stream.at(-1)?.source);
    expect(stream.at(-1)?.at ?? 0).toBeGreaterThan((stream[0]?.at ?? 0) + 3500);
    const gap = longestGap(stream);
    process.stdout.write(`self-repair, ${tag}: stream gap ${gap.ms} ms; noticed: ${status.repairs.last?.noticed.join('; ')}; put back: ${status.repairs.last?.what.join('; ')}\n`);
    return { gapMs: gap.ms, what: status.repairs.last?.noticed ?? [] };
  }

  async function afterwards(connectionKept: boolean): Promise<void> {
    expect(await lab.leavesBy(client)).toBe(home);
    if (connectionKept) expect(await session.send(`still-${repairs}`)).toBe(`${address(home)} still-${repairs}`);
    expect((await lab.status()).repairs.fighting).toBeNull();
  }

  test('a firewall reload of whole tables (iptables-restore of mangle and nat, as netfilter-persistent and ufw do)', async () => {
    const reload =
      '*mangle\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';
    const { gapMs, what } = await repaired('reload', () => lab.runner.run(['ip', 'netns', 'exec', lab.topo.gw, 'iptables-restore'], { input: reload }));
    expect(gapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(what.join('\n')).toMatch(/^netfilter: .* by iptables-restor \(pid [0-9]+\)$/m);
    await afterwards(false);
  });

  test('nftables.service reloading: nft flush ruleset', async () => {
    const { gapMs, what } = await repaired('flush', () => lab.runIn(lab.topo.gw, ['nft', 'flush', 'ruleset']));
    expect(gapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(what.join('\n')).toMatch(/ by nft \(pid [0-9]+\)$/m);
    await afterwards(false);
  });

  test('our ip rules deleted (systemd-networkd without ManageForeignRoutingPolicyRules=no); the open TCP connection survives', async () => {
    expect(await session.send('before-rules')).toBe(`${address(home)} before-rules`);
    const { gapMs, what } = await repaired('rules', () => lab.runIn(lab.topo.gw, ['ip', 'rule', 'flush', 'protocol', String(ROUTE_PROTOCOL)]));
    expect(gapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(what.join('\n')).toMatch(/^ip rule [0-9]+ \(lookup [0-9a-z]+\) deleted$/m);
    await afterwards(true);
  });

  test('our routing tables flushed; the open TCP connection survives', async () => {
    const tables = [...new Set((await lab.runIn(lab.topo.gw, ['ip', 'route', 'show', 'table', 'all', 'proto', String(ROUTE_PROTOCOL)])).stdout.match(/table [0-9]+/g) ?? [])].map((t) => t.split(' ')[1] as string);
    expect(tables.length).toBeGreaterThan(2);
    const { gapMs, what } = await repaired('routes', async () => {
      for (const table of tables) await lab.runIn(lab.topo.gw, ['ip', 'route', 'flush', 'table', table]);
    });
    expect(gapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(what.join('\n')).toMatch(/^route default in table [0-9]+ deleted$/m);
    await afterwards(true);
  });

  test('the client set flushed (a firewall’s ipset plugin reloading its sets), which no event reports: noticed by the set’s check, asked of one ipset kept running', async () => {
    const { gapMs, what } = await repaired('set', () => lab.runIn(lab.topo.gw, ['ipset', 'flush', 'dispatcher-clients']));
    expect(gapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(what.join('\n')).toMatch(/^dispatcher-clients: [0-9]+ references, 0 entries; .*\(after our last run: dispatcher-clients: [0-9]+ references, 1 entries; /m);
    // The check's one ipset session, a child of the daemon; no `ipset list` process per check.
    const children = (await lab.runIn(lab.topo.gw, ['ps', '-o', 'args=', '--ppid', String(lab.daemon?.process.pid)])).stdout;
    expect(children.split('\n').filter((line) => /^(stdbuf -oL )?ipset -$/.test(line.trim()))).toHaveLength(1);
    await afterwards(true);
  });

  test('ip_forward reset to 0; the open TCP connection survives', async () => {
    const { gapMs, what } = await repaired('forward', () => lab.runIn(lab.topo.gw, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=0']));
    expect(gapMs).toBeLessThanOrEqual(GAP_LIMIT_MS);
    expect(what).toContain('sysctl net.ipv4.ip_forward is 0 (ours: 1)');
    expect((await lab.runIn(lab.topo.gw, ['sysctl', '-n', 'net.ipv4.ip_forward'])).stdout.trim()).toBe('1');
    await afterwards(true);
  });

  test('something that keeps undoing ours is a fight: repairs are backed off (never a busy loop), status and doctor say so, and the gateway is put right once it stops', async () => {
    const before = await lab.status();
    // A fighter: a firewall script that reloads whole tables every 200 ms for 6 s and at least 30 times
    // (a busy machine slows each reload down), 20 s at most.
    const reload = '*mangle\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n*nat\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n';
    const started = performance.now();
    let reloads = 0;
    const fighting = (): boolean => performance.now() - started < 20_000 && (performance.now() - started < 6000 || reloads < 30);
    while (fighting()) {
      await lab.runner.run(['ip', 'netns', 'exec', lab.topo.gw, 'iptables-restore'], { input: reload });
      reloads++;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const during = await lab.status();
    expect(during.repairs.fighting).toMatchObject({ by: ['iptables-restor'] });
    const repairsInFight = during.repairs.total - before.repairs.total;
    // Immediate until the limit (10 within a minute, counting the tests above), then one per back-off
    // (2 s, 4 s, …): far fewer repairs than the fighter's reloads, and no storm of runs.
    expect(reloads).toBeGreaterThan(20);
    expect(repairsInFight).toBeGreaterThan(0);
    expect(repairsInFight).toBeLessThan(reloads / 2);
    expect(during.runs - before.runs).toBeLessThanOrEqual(2 * repairsInFight + 5);
    const doctor = await lab.cli(['doctor'], [0, 1, 2]);
    expect(doctor.exitCode).toBe(2);
    expect(doctor.stdout).toContain('iptables-restor');
    // The fighter has stopped: the next (backed-off) repair puts our chains back.
    await within(20_000, 'our chains back', async () => (await lab.runIn(lab.topo.gw, ['iptables', '-t', 'mangle', '-S', 'DISPATCHER-PRE'], [0, 1])).exitCode === 0);
    expect(await lab.leavesBy(client)).toBe(home);
  });
});

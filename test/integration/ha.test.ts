// A pair of gateways with the real keepalived and conntrackd (src/lab/ha-pair.ts:
// the pair `dispatcher lab --ha` shows): three lines, one of each kind a pair
// has — isp1 with a shared address (its connections survive a takeover),
// isp2 where each gateway has its own address, isp3 a session only the
// master holds (the new master dials). What `dispatcher ha render` writes is
// what the tools run with.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type GatewayName, HaPair, PAIR_LAN_ADDRESS, PAIR_SHARED, type PairClient, type TakeoverFigures } from '../../src/lab/ha-pair.js';
import { waitFor } from '../../src/lab/harness.js';
import { requireRoot, within } from '../helpers/lab.js';

jest.setTimeout(120_000);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether a gateway's session line (isp3, ppp0) is up with its address. */
async function dialled(pair: HaPair, name: GatewayName): Promise<boolean> {
  return (await pair.runner.run(['ip', '-n', pair.gateway(name).ns, '-4', '-o', 'addr', 'show', 'dev', 'ppp0'])).stdout.includes('192.0.2.2');
}

/** Every client leaves by the line of its pool, as the given gateway has them. */
async function everyoneOnTheirLine(pair: HaPair, pools: Map<string, string>): Promise<boolean> {
  for (const client of pair.clients) if ((await pair.leavesBy(client).catch(() => undefined)) !== pools.get(client.ip)) return false;
  return true;
}

/**
 * Clients on each line (isp1 the first, whose TCP connection through the
 * shared address is watched over the takeover), pinned on the master; the
 * backup has them within 1 s.
 */
async function spreadClients(pair: HaPair, master: GatewayName): Promise<Map<string, string>> {
  const backup = pair.other(master);
  await pair.hello();
  await within(10_000, 'the master assigns every client', async () => (await pair.pools(master)).size === pair.clients.length);
  const lines = ['isp1', 'isp2', 'isp3'];
  for (const [i, client] of pair.clients.entries()) await pair.cli(master, ['assign', client.ip, lines[i % lines.length] as string]);
  const wanted = await pair.pools(master);
  await within(3_000, 'the backup holds the same pools', async () => JSON.stringify([...(await pair.pools(backup))].sort()) === JSON.stringify([...wanted].sort()));
  return wanted;
}

/** What a takeover measured, in the test's output. */
function report(figures: TakeoverFigures, what: string): void {
  const { from, to, movedMs, tcp, gaps } = figures;
  process.stdout.write(
    `ha: ${from}, ${what}: ${to} holds the addresses after ${movedMs.toFixed(0)} ms, the TCP connection through isp1 answered after ${tcp?.ms.toFixed(0)} ms; each client's longest gap: ${gaps.map((g) => `${g.client} ${g.gapMs} ms (then by ${g.last})`).join(', ')}\n`,
  );
}

/** Traffic flows again within 3 s for every client; the connection through the shared address answers, from it, never reset. */
function expectKept(figures: TakeoverFigures, pools: ReadonlyMap<string, string>): void {
  expect(figures.movedMs).toBeLessThan(3000);
  for (const { gapMs } of figures.gaps) expect(gapMs).toBeLessThan(3000);
  // The lines whose address is there on the new master carry their streams to the end (isp3's waits for its dial: its stream took another line meanwhile, and keeps it).
  for (const { client, last } of figures.gaps) if (pools.get(client) !== 'isp3') expect([client, last]).toEqual([client, pools.get(client)]);
  expect(figures.tcp).toMatchObject({ source: PAIR_SHARED, reset: false });
}

describe('a pair of gateways: keepalived and conntrackd run with what dispatcher ha render writes', () => {
  let pair: HaPair;
  let master: GatewayName;
  let pools: Map<string, string>;

  beforeAll(async () => {
    requireRoot();
    pair = await HaPair.create({ clients: 3 });
  });

  afterAll(async () => {
    await pair?.destroy();
  });

  test('each gateway renders its files; keepalived accepts its config; conntrackd starts with its own and answers on its socket', async () => {
    await pair.startConntrackd();
    for (const gw of pair.gateways) {
      const { rendered } = pair.files(gw.name);
      expect((await pair.runner.run(['cat', join(rendered, 'conntrackd.conf')])).stdout).toContain(`IPv4_address ${gw.sync.split('/')[0]}\n`);
      // keepalived's own check of the file (-t): exit 0 when it takes every line.
      await pair.runner.run(['ip', 'netns', 'exec', gw.ns, 'keepalived', '-t', '-f', join(rendered, 'keepalived.conf')]);
    }
  });

  test('one master: it alone holds the addresses, has its fence down and dialled the session line; the backup holds its clients within 1 s and refuses to assign', async () => {
    for (const gw of pair.gateways) await pair.startDispatcher(gw.name);
    for (const gw of pair.gateways) pair.startKeepalived(gw.name);
    master = await waitFor('one master, its fence lifted', 15_000, async () => {
      const held = await pair.holders(PAIR_LAN_ADDRESS);
      return held.length === 1 && (await pair.role(held[0] as GatewayName)) === 'master' && !(await pair.fenced(held[0] as GatewayName)) ? (held[0] as GatewayName) : null;
    });
    const backup = pair.other(master);
    expect(await pair.holders(PAIR_SHARED)).toEqual([master]);
    expect(await pair.fenced(backup)).toBe(true);
    await within(10_000, 'the master dialled isp3; the backup did not', async () => (await dialled(pair, master)) && !(await dialled(pair, backup)));

    pools = await spreadClients(pair, master);
    // The master's own figure: from sending a change to the backup's answer that its kernel holds it.
    const lag = (await pair.status(master)).ha?.lagMs;
    process.stdout.write(`ha: an assignment on ${master} applied on ${backup} ${lag} ms after it was sent\n`);
    expect(lag).toBeLessThan(1000);
    expect((await pair.status(master)).ha).toMatchObject({ role: 'master', sending: true });
    expect((await pair.status(backup)).ha).toMatchObject({ role: 'backup', sending: false, lastReceived: expect.any(String) });
    expect((await pair.cli(backup, ['status'])).stdout).toContain('pair: backup (fenced: forwards nothing); hearing the master; its last change applied at');
    // The backup's own probes of the shared line are answered (its own packets keep its own address): the line is up there too, ready.
    await within(10_000, 'isp1 up on the backup', async () => (await pair.status(backup)).uplinks.find((u) => u.name === 'isp1')?.state === 'up');
    // doctor on each: the pair's checks pass on a running pair (the files current, keepalived and conntrackd running, the sync link, the key, the role).
    for (const gw of [master, backup]) {
      const { findings } = JSON.parse((await pair.cli(gw, ['doctor', '--json'], [0, 1, 2])).stdout) as { findings: { check: string; severity: string; summary: string }[] };
      const ours = findings.filter((f) => f.check.startsWith('ha:') || f.check === 'tool:keepalived' || f.check === 'tool:conntrackd');
      expect(ours.map((f) => f.check)).toEqual(
        expect.arrayContaining(['tool:keepalived', 'tool:conntrackd', 'ha:file:keepalived.conf', 'ha:file:conntrackd.conf', 'ha:file:notify', 'ha:keepalived', 'ha:conntrackd', 'ha:interface:sync0', 'ha:key', 'ha:role']),
      );
      expect(ours.filter((f) => f.severity !== 'ok')).toEqual([]);
    }
    await pair.startServers();
    await within(15_000, 'every client leaves by the line of its pool', async () => everyoneOnTheirLine(pair, pools));
    // The backup takes its clients from the master alone: a pin there is refused, and says where to make it.
    const refused = await pair.cli(backup, ['assign', pair.clients[0]?.ip as string, 'isp2'], [0, 1, 2]);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr).toContain('assign and release on the master');
  });

  test('the master’s keepalived and dispatcher killed: the backup carries the clients within 3 s, nobody changes line, a TCP connection through the shared address goes on, the session line is dialled again', async () => {
    const backup = pair.other(master);
    const figures = await pair.takeover(master, 'kill', pools);
    report(figures, 'its keepalived and dispatcher killed');
    expectKept(figures, pools);
    expect(figures.tcp?.ms).toBeLessThan(3000);
    // Nobody changed pool; the new master dialled isp3 (the dead one's session is replaced), and every client leaves by its own line again.
    expect(await pair.pools(backup)).toEqual(pools);
    await within(10_000, `${backup} dialled isp3`, async () => dialled(pair, backup));
    const lines = performance.now();
    await within(15_000, 'every client leaves by the line of its pool', async () => everyoneOnTheirLine(pair, pools));
    process.stdout.write(`ha: every client leaves by its own line again ${(performance.now() - lines).toFixed(0)} ms after isp3 was dialled\n`);
  });

  test('a connection with another key on the state channel is refused, and the gateway says so', async () => {
    const target = pair.gateway(pair.other(master));
    const from = pair.gateway(master);
    const attempt = `const s = require('net').connect(7790, '${target.sync.split('/')[0]}');
require('readline').createInterface({ input: s }).on('line', (line) => {
  const message = JSON.parse(line);
  if (message.nonce) s.write(JSON.stringify({ auth: '00'.repeat(32) }) + '\\n');
  if (message.refused) { console.log(line); process.exit(0); }
});
setTimeout(() => process.exit(1), 5000);`;
    const answer = (await pair.runner.run(['ip', 'netns', 'exec', from.ns, process.execPath, '-e', attempt])).stdout;
    expect(JSON.parse(answer)).toEqual({ refused: 'wrong key' });
    expect((await pair.status(target.name)).ha?.refused).toMatchObject({ why: 'wrong key', from: expect.stringMatching(new RegExp(`^${from.sync.split('/')[0]?.replaceAll('.', '\\.')}:`)) });
  });

  test('the old master comes back (its dispatcher, then keepalived): backup (no preempt), fenced, its session hung up, with the new master’s clients; nobody moves', async () => {
    const back = master;
    master = pair.other(back);
    await pair.startDispatcher(back);
    pair.startKeepalived(back);
    await within(10_000, `${back} back as backup, fenced`, async () => (await pair.role(back)) === 'backup' && (await pair.fenced(back)));
    // Its stale addresses and session (it was killed, not stopped) are gone; the master keeps them and its role.
    await within(
      5_000,
      `only ${master} holds the addresses, ${back} hung up`,
      async () => (await pair.holders(PAIR_SHARED)).join() === master && (await pair.holders(PAIR_LAN_ADDRESS)).join() === master && !(await dialled(pair, back)),
    );
    expect(await pair.role(master)).toBe('master');
    expect(await pair.fenced(master)).toBe(false);
    expect(await dialled(pair, master)).toBe(true);
    await within(5_000, `${back} has the master's clients`, async () => JSON.stringify([...(await pair.pools(back))].sort()) === JSON.stringify([...pools].sort()));
    expect(await pair.pools(master)).toEqual(pools);
  });

  test('the master’s dispatcher restarts under its running keepalived (which says nothing again): it resumes master from the role file, its fence never goes up, a connection of a line whose address stays is kept', async () => {
    const client = pair.clients.find((c) => pools.get(c.ip) === 'isp2') as PairClient;
    const tcp = await pair.connection(client);
    const before = await tcp.say(5_000);
    expect(before).toMatch(/^198\.51\.100\.6[67]$/);
    pair.dispatchers.get(master)?.stop('SIGKILL');
    await pair.dispatchers.get(master)?.ended;
    const restarted = performance.now();
    let fencedMeanwhile = false;
    const watch = (async () => {
      while (performance.now() - restarted < 8_000) {
        if (await pair.fenced(master)) fencedMeanwhile = true;
        await sleep(50);
      }
    })();
    await pair.startDispatcher(master, 'master');
    await watch;
    expect(fencedMeanwhile).toBe(false);
    expect((await pair.cli(master, ['events'])).stdout).toContain('resumed master');
    // Nothing was taken over again: the connection through isp2 (forgotten on a takeover) answers, from the same address.
    expect(await tcp.say(5_000)).toBe(before);
    tcp.close();
    // The state channel is back too: the backup hears it.
    await within(10_000, 'the backup hears the master again', async () => (await pair.status(pair.other(master))).ha?.hearing === true);
  });

  test('a reload that changes the state channel (ha.port) is refused, naming the field; the daemon goes on', async () => {
    const { config } = pair.files(master);
    const text = await readFile(config, 'utf8');
    await writeFile(config, text.replace('interface: sync0,', 'interface: sync0, port: 7791,'));
    try {
      const refused = await pair.cli(master, ['reload'], [0, 1, 2]);
      expect(refused.exitCode).toBe(2);
      expect(`${refused.stdout}${refused.stderr}`).toMatch(/ha\.port.*cannot change while running/s);
    } finally {
      await writeFile(config, text);
    }
    expect((await pair.status(master)).ha?.role).toBe('master');
  });

  test('the sync link cut for 30 s: still one gateway routes for the LAN, the master says the backup is not kept up to date; back, the backup catches up', async () => {
    const backup = pair.other(master);
    const client = pair.clients[0] as PairClient;
    await pair.runner.run(['ip', '-n', pair.gateway(master).ns, 'link', 'set', 'sync0', 'down']);
    const cut = performance.now();
    try {
      await within(10_000, 'the master says its channel is down, the backup that it hears nothing', async () => !(await pair.status(master)).ha?.sending && (await pair.status(backup)).ha?.hearing === false);
      expect((await pair.cli(master, ['status'])).stdout).toContain('the backup is not kept up to date');
      // A change the backup cannot hear now.
      await pair.cli(master, ['assign', client.ip, 'isp2']);
      while (performance.now() - cut < 30_000) {
        // VRRP speaks on the LAN: the cut changes no role; one gateway alone holds the addresses and forwards.
        expect(await pair.holders(PAIR_LAN_ADDRESS)).toEqual([master]);
        expect(await pair.holders(PAIR_SHARED)).toEqual([master]);
        expect(await pair.fenced(backup)).toBe(true);
        await sleep(2000);
      }
      expect((await pair.pools(backup)).get(client.ip)).toBe('isp1');
    } finally {
      await pair.runner.run(['ip', '-n', pair.gateway(master).ns, 'link', 'set', 'sync0', 'up']);
    }
    const restored = performance.now();
    await within(15_000, 'the backup caught up', async () => (await pair.status(master)).ha?.sending === true && (await pair.pools(backup)).get(client.ip) === 'isp2');
    process.stdout.write(`ha: sync link back; the backup caught up ${(performance.now() - restored).toFixed(0)} ms later\n`);
    await pair.cli(master, ['assign', client.ip, 'isp1']);
    pools.set(client.ip, 'isp1');
  });

  test('the master’s links all go down: the backup carries the clients within 3 s, nobody changes line, the TCP connection goes on; links back, it stays backup', async () => {
    const backup = pair.other(master);
    await within(3_000, 'the backup has the pools', async () => JSON.stringify([...(await pair.pools(backup))].sort()) === JSON.stringify([...pools].sort()));
    try {
      const figures = await pair.takeover(master, 'links', pools);
      report(figures, 'every link down');
      expectKept(figures, pools);
      // keepalived on the dead one saw its LAN link go: fault, fenced, its session hung up.
      await within(10_000, `${master} in fault, fenced`, async () => (await pair.role(master)) === 'fault' && (await pair.fenced(master)) && !(await dialled(pair, master)));
      expect(await pair.pools(backup)).toEqual(pools);
      await within(15_000, 'every client leaves by the line of its pool', async () => everyoneOnTheirLine(pair, pools));
    } finally {
      await pair.links(master, true);
    }
    await within(10_000, `${master} back as backup, fenced`, async () => (await pair.role(master)) === 'backup' && (await pair.fenced(master)));
    expect(await pair.role(backup)).toBe('master');
    expect(await pair.pools(master)).toEqual(pools);
    master = backup;
  });
});

describe('a pair with preempt: the gateway of higher priority takes the role back when it returns', () => {
  let pair: HaPair;

  beforeAll(async () => {
    requireRoot();
    pair = await HaPair.create({ clients: 3, preempt: true, tag: 'hap' });
  });

  afterAll(async () => {
    await pair?.destroy();
  });

  test('a (priority 150) killed, b takes over; a returns, catches up, takes the role back after the delay; nobody changes line', async () => {
    // Whichever starts first may be master for the delay; then a, of higher priority, takes the role.
    await pair.start();
    await within(15_000, 'a master, b backup', async () => (await pair.role('a')) === 'master' && (await pair.role('b')) === 'backup' && !(await pair.fenced('a')) && (await pair.fenced('b')));
    const pools = await spreadClients(pair, 'a');
    await pair.startServers();
    pair.kill('a');
    await within(10_000, 'b master', async () => (await pair.role('b')) === 'master' && !(await pair.fenced('b')));
    // A change while a is away: a must have it before it takes the role back.
    const client = pair.clients[1] as PairClient;
    await pair.cli('b', ['assign', client.ip, 'isp1']);
    pools.set(client.ip, 'isp1');
    await pair.startDispatcher('a');
    pair.startKeepalived('a');
    const back = performance.now();
    await within(10_000, 'a has b’s clients', async () => (await pair.pools('a')).get(client.ip) === 'isp1');
    await within(20_000, 'a master again, b backup', async () => (await pair.role('a')) === 'master' && (await pair.role('b')) === 'backup' && !(await pair.fenced('a')) && (await pair.fenced('b')));
    process.stdout.write(`ha: preempt — a took the role back ${(performance.now() - back).toFixed(0)} ms after its keepalived started\n`);
    expect(await pair.holders(PAIR_SHARED)).toEqual(['a']);
    expect(await pair.pools('a')).toEqual(pools);
    await within(10_000, 'a dialled isp3, b hung up', async () => (await dialled(pair, 'a')) && !(await dialled(pair, 'b')));
    await within(15_000, 'every client leaves by the line of its pool', async () => everyoneOnTheirLine(pair, pools));
  });
});

// A topology built here with plain `ip` commands, independent of src/lab:
// two LAN segments on two interfaces, no lan.subnets, gateways discovered
// from the default routes a DHCP client left in the main table, several
// clients per host, and another program's marks, chain and rule already in
// place. The dispatcher is driven only through its config file and CLI.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DISPATCHER_BIN } from '../../src/lab/harness.js';
import { ExecaRunner, type Process } from '../../src/system/exec.js';
import { requireRoot, within } from '../helpers/lab.js';
import { runPrefix, runTempDir } from '../../src/lab/leftovers.js';
import { fetchFrom, plainNamespaces, sourceEchoServer } from '../helpers/namespaces.js';

jest.setTimeout(60_000);

const run = new ExecaRunner();
// Named for this process (core/run-names.ts): a later run removes them if this one dies.
const P = runPrefix('i');
const NS = { router: `${P}r`, hostA: `${P}ha`, hostB: `${P}hb`, ispA: `${P}ia`, ispB: `${P}ib`, net: `${P}n` };
const SERVER = '198.51.100.200';
const CLIENTS_A = ['198.19.1.10', '198.19.1.11', '198.19.1.12'];
const CLIENTS_B = ['198.19.2.10', '198.19.2.11'];
const UPLINK_ADDRESS: Record<string, string> = { alpha: '192.0.2.66', beta: '192.0.2.70' };

// A datagram from a chosen local address to the gateway (its neighbour entry); the server and the fetch are the shared helpers'.
const helloFrom = (address: string, gateway: string): string => `const s = require('dgram').createSocket('udp4'); s.bind(0, '${address}', () => s.send('hi', 9, '${gateway}', () => s.close()))`;

const { ip, inNs, teardown } = plainNamespaces(run, Object.values(NS));

async function build(): Promise<void> {
  for (const ns of Object.values(NS)) await run.run(['ip', 'netns', 'add', ns]);
  // Router: two LAN legs, two uplinks. Names chosen unlike the lab's.
  await ip(
    NS.router,
    'link set lo up',
    `link add name inside1 type veth peer name eth0 netns ${NS.hostA}`,
    `link add name inside2 type veth peer name eth0 netns ${NS.hostB}`,
    `link add name uplinkA type veth peer name tocpe netns ${NS.ispA}`,
    `link add name uplinkB type veth peer name tocpe netns ${NS.ispB}`,
    'addr add 198.19.1.1/24 dev inside1',
    'addr add 198.19.2.1/24 dev inside2',
    'addr add 192.0.2.66/30 dev uplinkA',
    'addr add 192.0.2.70/30 dev uplinkB',
    'link set inside1 up',
    'link set inside2 up',
    'link set uplinkA up',
    'link set uplinkB up',
    // What a DHCP client on each uplink would have installed.
    'route add default via 192.0.2.65 dev uplinkA',
    'route add default via 192.0.2.69 dev uplinkB metric 100',
    // Another program's policy routing, at its own priority and mark bits.
    'rule add priority 1000 fwmark 0x100/0x3f00 lookup 100',
    'route add default via 192.0.2.65 dev uplinkA table 100',
  );
  await inNs(NS.router, ['iptables', '-t', 'mangle', '-N', 'other_hook']);
  await inNs(NS.router, ['iptables', '-t', 'mangle', '-A', 'PREROUTING', '-i', 'inside2', '-j', 'other_hook']);
  await inNs(NS.router, ['iptables', '-t', 'mangle', '-A', 'other_hook', '-p', 'udp', '--dport', '5353', '-j', 'MARK', '--set-xmark', '0x100/0x3f00']);
  for (const [host, clients, gateway] of [
    [NS.hostA, CLIENTS_A, '198.19.1.1'],
    [NS.hostB, CLIENTS_B, '198.19.2.1'],
  ] as const) {
    await ip(host, 'link set lo up', ...clients.map((c) => `addr add ${c}/24 dev eth0`), 'link set eth0 up', `route add default via ${gateway}`);
  }
  for (const [isp, mine, theirs, transit, netSide] of [
    [NS.ispA, '192.0.2.65', '192.0.2.66', '203.0.113.2', '203.0.113.1'],
    [NS.ispB, '192.0.2.69', '192.0.2.70', '203.0.113.6', '203.0.113.5'],
  ] as const) {
    await ip(
      isp,
      'link set lo up',
      `link add name core type veth peer name from-${isp.slice(-2)} netns ${NS.net}`,
      `addr add ${mine}/30 dev tocpe`,
      `addr add ${transit}/30 dev core`,
      'link set tocpe up',
      'link set core up',
      `route add default via ${netSide}`,
    );
    await inNs(isp, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
    await ip(NS.net, `addr add ${netSide}/30 dev from-${isp.slice(-2)}`, `link set from-${isp.slice(-2)} up`, `route add ${theirs}/32 via ${transit}`);
  }
  await ip(NS.net, 'link set lo up', `addr add ${SERVER}/32 dev lo`);
}

async function kernel(): Promise<string> {
  const parts = await Promise.all([
    inNs(NS.router, ['iptables-save']).then((t) =>
      t
        .split('\n')
        .filter((l) => !l.startsWith('#'))
        .join('\n'),
    ),
    inNs(NS.router, ['ipset', 'save']),
    inNs(NS.router, ['ip', 'rule']),
    inNs(NS.router, ['ip', '-4', 'route', 'show', 'table', 'all']),
  ]);
  return parts.join('\n----\n');
}

describe('an independently built gateway, driven only through config and CLI', () => {
  let dir: string;
  let config: string;
  let daemon: Process | null = null;
  let server: Process | null = null;
  let before: string;
  const cli = async (args: string[], ok: number[] = [0]): Promise<string> => inNs(NS.router, [process.execPath, DISPATCHER_BIN, '--config', config, ...args], ok);
  const pools = async (): Promise<{ uplinks: { name: string; gateway: string; gatewaySource: string; clients: string[] }[] }> => JSON.parse(await cli(['pools', '--json']));

  beforeAll(async () => {
    requireRoot();
    await teardown();
    await build();
    dir = await runTempDir('i');
    config = join(dir, 'gateway.yaml');
    await writeFile(
      config,
      ['lan:', '  interfaces: [inside1, inside2]', 'uplinks:', '  - name: alpha', '    interface: uplinkA', '  - name: beta', '    interface: uplinkB', `state: ${dir}/state`, `socket: ${dir}/ctl.sock`, ''].join('\n'),
    );
    let up = false;
    server = run.spawn(['ip', 'netns', 'exec', NS.net, process.execPath, '-e', sourceEchoServer([SERVER])], { onLine: () => (up = true) });
    await within(5000, 'server up', async () => up);
    before = await kernel();
  });

  afterAll(async () => {
    daemon?.stop('SIGKILL');
    server?.stop('SIGKILL');
    await teardown();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('gateways are discovered from the main table and every client leaves by its pool uplink', async () => {
    daemon = run.spawn(['ip', 'netns', 'exec', NS.router, process.execPath, DISPATCHER_BIN, '--config', config, 'start']);
    await within(10_000, 'the daemon answers', async () => (await cli(['status'], [0, 1])).startsWith('dispatcher '));
    for (const c of CLIENTS_A) await inNs(NS.hostA, [process.execPath, '-e', helloFrom(c, '198.19.1.1')]);
    for (const c of CLIENTS_B) await inNs(NS.hostB, [process.execPath, '-e', helloFrom(c, '198.19.2.1')]);
    await within(5000, 'five clients in pools', async () => (await pools()).uplinks.flatMap((u) => u.clients).length === 5);
    const report = await pools();
    expect(report.uplinks.map((u) => [u.name, u.gateway, u.gatewaySource])).toEqual([
      ['alpha', '192.0.2.65', 'route'],
      ['beta', '192.0.2.69', 'route'],
    ]);
    expect(report.uplinks.map((u) => u.clients.length).sort()).toEqual([2, 3]);
    for (const uplink of report.uplinks) {
      for (const client of uplink.clients) {
        const host = CLIENTS_A.includes(client) ? NS.hostA : NS.hostB;
        const seen = (await inNs(host, [process.execPath, '-e', fetchFrom(SERVER, client)])).trim();
        expect([client, seen]).toEqual([client, UPLINK_ADDRESS[uplink.name]]);
      }
    }
  });

  test("the other program's chain, mark rule and table are untouched while running", async () => {
    const rules = await inNs(NS.router, ['ip', 'rule']);
    expect(rules).toContain('1000:\tfrom all fwmark 0x100/0x3f00 lookup 100');
    const saved = await inNs(NS.router, ['iptables-save', '-t', 'mangle']);
    expect(saved).toContain('-A PREROUTING -i inside2 -j other_hook');
    expect(saved).toContain('-A other_hook -p udp -m udp --dport 5353 -j MARK --set-xmark 0x100/0x3f00');
    expect(await inNs(NS.router, ['ip', 'route', 'show', 'table', '100'])).toBe('default via 192.0.2.65 dev uplinkA \n');
    expect(await inNs(NS.router, ['ip', 'route', 'show', 'default'])).toContain('default via 192.0.2.65 dev uplinkA');
  });

  test("a silent blackhole at alpha's ISP moves alpha's clients to beta within 2 s, and back", async () => {
    const report = await pools();
    const alphaClients = report.uplinks.find((u) => u.name === 'alpha')?.clients ?? [];
    const drop = ['iptables', '-t', 'raw', '-I', 'PREROUTING', '-i', 'tocpe', '-j', 'DROP'];
    const started = performance.now();
    await inNs(NS.ispA, drop);
    // Probed at its discovered gateway (no targets configured): the gateway stops answering too.
    // (Polled through the CLI, which takes ~0.3 s per call; the traffic gap itself is measured in failover.test.ts.)
    await within(3000, 'alpha down', async () => JSON.parse(await cli(['status', '--json'])).uplinks[0].state === 'down');
    process.stdout.write(`independent topology: alpha declared down ${(performance.now() - started).toFixed(0)} ms after the blackhole\n`);
    for (const client of alphaClients) {
      const host = CLIENTS_A.includes(client) ? NS.hostA : NS.hostB;
      expect([client, (await inNs(host, [process.execPath, '-e', fetchFrom(SERVER, client)])).trim()]).toEqual([client, UPLINK_ADDRESS.beta]);
    }
    await inNs(NS.ispA, ['iptables', '-t', 'raw', '-D', 'PREROUTING', '-i', 'tocpe', '-j', 'DROP']);
    await within(5000, 'alpha up', async () => JSON.parse(await cli(['status', '--json'])).uplinks[0].state === 'up');
    for (const client of alphaClients) {
      const host = CLIENTS_A.includes(client) ? NS.hostA : NS.hostB;
      expect((await inNs(host, [process.execPath, '-e', fetchFrom(SERVER, client)])).trim()).toBe(UPLINK_ADDRESS.alpha);
    }
  });

  test('stop and flush: the kernel is exactly as it was before the first start', async () => {
    daemon?.stop('SIGTERM');
    expect(await daemon?.ended).toBe(0);
    daemon = null;
    await cli(['flush']);
    expect(await kernel()).toBe(before);
  });
});

// Coexistence with other software on the same gateway: mwan3's mark bits
// (0x3f00), chains and rules, Tailscale's (0xff0000) chains in three tables,
// ip rules and its table 52 are all in place before the dispatcher starts,
// and survive start, reload and flush byte for byte; with the nftables
// backend, firewalld's and Tailscale's nftables tables do the same, and
// Tailscale's marks survive our chains. The control socket is
// root's alone (0600) and turns malformed, oversized and ill-typed requests
// into errors without falling over.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { MAX_REQUEST_BYTES } from '../../src/schema/control.js';
import { expectConverged } from '../helpers/checks.js';
import { fixture } from '../helpers/fixtures.js';
import { Lab, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(90_000);

/** Other software's objects, as they would install them (iptables argv per line, then `ip` argv per line). */
const FOREIGN_IPTABLES = [
  // mwan3: mark bits 0x3f00 in mangle, restored from and saved to the connmark (its own interface,
  // wwan0, is absent here: its table 1 would otherwise take the lab's replies, as it would on a real box).
  '-t mangle -N mwan3_hook',
  '-t mangle -N mwan3_ifaces_in',
  '-t mangle -A PREROUTING -j mwan3_hook',
  '-t mangle -A OUTPUT -j mwan3_hook',
  '-t mangle -A mwan3_hook -j CONNMARK --restore-mark --nfmask 0x3f00 --ctmask 0x3f00',
  '-t mangle -A mwan3_hook -m mark --mark 0x0/0x3f00 -j mwan3_ifaces_in',
  '-t mangle -A mwan3_ifaces_in -i wwan0 -m mark --mark 0x0/0x3f00 -j MARK --set-xmark 0x100/0x3f00',
  '-t mangle -A mwan3_hook -j CONNMARK --save-mark --nfmask 0x3f00 --ctmask 0x3f00',
  // Tailscale: 0xff0000 in filter, mangle-free, nat.
  '-t filter -N ts-input',
  '-t filter -N ts-forward',
  '-t filter -A INPUT -j ts-input',
  '-t filter -A FORWARD -j ts-forward',
  '-t filter -A ts-input -i tailscale0 -j ACCEPT',
  '-t filter -A ts-forward -i tailscale0 -j MARK --set-xmark 0x40000/0xff0000',
  '-t filter -A ts-forward -m mark --mark 0x40000/0xff0000 -j ACCEPT',
  '-t nat -N ts-postrouting',
  '-t nat -A POSTROUTING -j ts-postrouting',
  '-t nat -A ts-postrouting -m mark --mark 0x40000/0xff0000 -j MASQUERADE',
];
const FOREIGN_IP = [
  'rule add priority 2001 fwmark 0x100/0x3f00 lookup 1',
  'rule add priority 2061 fwmark 0x3f00/0x3f00 blackhole',
  'route add blackhole default table 1',
  'rule add priority 5210 fwmark 0x80000/0xff0000 lookup main',
  'rule add priority 5250 fwmark 0x80000/0xff0000 unreachable',
  'rule add priority 5270 lookup 52',
  'route add throw 203.0.113.0/24 table 52',
];

/** The snapshot with everything of ours taken out: what other software sees. */
function foreignOnly(snapshot: Record<string, string>): Record<string, string> {
  // Multipath nexthops print on continuation lines: keep them with their route.
  const keep = (text: string | undefined, ours: RegExp): string =>
    (text ?? '')
      .replace(/\n\t/g, ' \t')
      .split('\n')
      .filter((l) => !ours.test(l))
      .join('\n');
  return {
    iptables: keep(snapshot.iptables, /DISPATCHER|^:(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /),
    rules: keep(snapshot.rules, /proto 211/),
    routes: keep(snapshot.routes, /proto 211|table 3[0-9]{3}\b/),
  };
}

describe('other software on the same gateway', () => {
  let lab: Lab;
  let pristine: Record<string, string>;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, tag: 'coex' });
    for (const line of FOREIGN_IPTABLES) await lab.runIn(lab.topo.gw, ['iptables', ...line.split(' ')]);
    for (const line of FOREIGN_IP) await lab.runIn(lab.topo.gw, ['ip', ...line.split(' ')]);
    pristine = await lab.snapshot();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test("mwan3's and Tailscale's chains, rules, marks and tables survive start, traffic and reload untouched", async () => {
    const foreign = foreignOnly(pristine);
    expect(foreign.iptables).toContain('--set-xmark 0x100/0x3f00');
    expect(foreign.iptables).toContain('--set-xmark 0x40000/0xff0000');
    await lab.start();
    for (const client of lab.topo.clients) expect(await lab.leavesBy(client)).toMatch(/^isp[123]$/);
    expect(foreignOnly(await lab.snapshot())).toEqual(foreign);
    await lab.cli(['reload']);
    expect(foreignOnly(await lab.snapshot())).toEqual(foreign);
    await expectConverged(lab);
  });

  test('the control socket is root-owned 0600; malformed, oversized and ill-typed requests get errors, not a crash', async () => {
    const info = await stat(lab.files.socket);
    expect(info.uid).toBe(0);
    expect(info.mode & 0o777).toBe(0o600);
    const ask = (payload: string): Promise<string> =>
      new Promise((resolve, reject) => {
        const socket = connect(lab.files.socket);
        let answer = '';
        socket.setEncoding('utf8');
        socket.on('data', (chunk: string) => {
          answer += chunk;
          if (answer.includes('\n')) {
            socket.destroy();
            resolve(answer.trim());
          }
        });
        socket.on('error', reject);
        socket.write(payload);
      });
    const cases: [string, RegExp][] = [
      ['not json at all\n', /request is not JSON/],
      ['[1,2,3]\n', /must be a JSON object/],
      ['{"cmd":"format-disk"}\n', /unknown command/],
      ['{"cmd":"status","extra":1}\n', /unexpected field/],
      ['{"cmd":"assign","ip":"198.18.0.10; reboot","uplink":"isp1"}\n', /not a unicast IPv4 address/],
      ['{"cmd":"assign","ip":"198.18.0.10","uplink":{"$gt":""}}\n', /not an uplink name/],
      ['{"cmd":"hook","event":"ip-up","interface":"ppp0\\nrm -rf /","tty":"x","speed":"1","local":"","remote":""}\n', /not an interface name/],
      [`${'x'.repeat(MAX_REQUEST_BYTES + 10)}\n`, new RegExp(`larger than ${MAX_REQUEST_BYTES} bytes`)],
      [`{"cmd":"status","pad":"${'y'.repeat(MAX_REQUEST_BYTES * 4)}"`, new RegExp(`larger than ${MAX_REQUEST_BYTES} bytes`)],
    ];
    for (const [payload, expected] of cases) {
      const answer = JSON.parse(await ask(payload)) as { ok: boolean; error?: { kind: string; message: string } };
      expect([payload.slice(0, 60), answer.ok, answer.error?.kind]).toEqual([payload.slice(0, 60), false, 'request']);
      expect(answer.error?.message).toMatch(expected);
    }
    expect((await lab.status()).running).toBe(true);
  });

  test('flush removes exactly what is ours: the kernel is byte for byte as before the first start', async () => {
    await lab.stop();
    await lab.cli(['flush']);
    expect(await lab.snapshot()).toEqual(pristine);
  });
});

/**
 * Tailscale's nftables mode, as it installs itself: tables of its own at the
 * filter and srcnat hooks, its mark bits 0xff0000. Here it also marks the
 * LAN's packets before us (priority raw) and counts them in forward: our
 * chains change only our bits, so what it marked still carries its mark
 * when its own chains look again.
 */
const TAILSCALE_NFT = [
  'table ip ts-filter {',
  '  chain ts-pre {',
  '    type filter hook prerouting priority raw; policy accept;',
  '    iifname "lan0" meta mark set meta mark | 0x00040000',
  '  }',
  '  chain ts-input {',
  '    type filter hook input priority filter; policy accept;',
  '    iifname "tailscale0" accept',
  '  }',
  '  chain ts-forward {',
  '    type filter hook forward priority filter; policy accept;',
  '    iifname "lan0" meta mark & 0x00ff0000 == 0x00040000 counter comment "its-mark-kept"',
  '    iifname "tailscale0" meta mark set meta mark & 0xff00ffff | 0x00040000',
  '  }',
  '}',
  'table ip ts-nat {',
  '  chain ts-postrouting {',
  '    type nat hook postrouting priority srcnat; policy accept;',
  '    iifname "tailscale0" meta mark & 0x00ff0000 == 0x00040000 masquerade',
  '  }',
  '}',
  '',
].join('\n');

const FOREIGN_TABLES = [
  ['inet', 'firewalld'],
  ['ip', 'ts-filter'],
  ['ip', 'ts-nat'],
] as const;

describe('other software on the same gateway, with the nftables backend', () => {
  let lab: Lab;
  let pristine: Record<string, string>;

  /** Other software's tables as nft lists them, counters left out. */
  const foreignTables = async (): Promise<string[]> => Promise.all(FOREIGN_TABLES.map(async ([family, name]) => (await lab.runIn(lab.topo.gw, ['nft', '-s', 'list', 'table', family, name])).stdout));

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, tag: 'coexnft', config: { backend: 'nftables' } });
    // firewalld with the recipe that lets the LAN out (test/fixtures/firewalls/README.md), then Tailscale.
    for (const text of [fixture('firewalls/firewalld.nft'), fixture('firewalls/firewalld-lan-policy.nft'), TAILSCALE_NFT]) {
      await lab.runner.run(['ip', 'netns', 'exec', lab.topo.gw, 'nft', '-f', '-'], { input: text });
    }
    pristine = await lab.snapshot();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test("firewalld's and Tailscale's tables survive start, traffic, reload and restart untouched; Tailscale's mark bits survive our chains", async () => {
    const foreign = await foreignTables();
    expect(foreign[0]).toContain('filter_FWD_internal');
    await lab.start();
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    for (const client of lab.topo.clients) {
      await lab.hello(client);
      await within(5000, `${client.ip} assigned`, async () => (await lab.cliJson<PoolsJson>(['pools'])).uplinks.some((u) => u.clients.includes(client.ip)));
      const home = (await lab.cliJson<PoolsJson>(['pools'])).uplinks.find((u) => u.clients.includes(client.ip))?.name;
      expect(await lab.leavesBy(client)).toBe(home);
    }
    expect(pools.uplinks.length).toBe(3);
    expect(await foreignTables()).toEqual(foreign);
    const counted = JSON.parse((await lab.runIn(lab.topo.gw, ['nft', '-j', 'list', 'chain', 'ip', 'ts-filter', 'ts-forward'])).stdout) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
    const packets = counted.nftables.flatMap((item) => item.rule?.expr ?? []).find((expr) => expr.counter)?.counter?.packets ?? 0;
    expect(packets).toBeGreaterThan(0);
    await lab.cli(['reload']);
    expect(await foreignTables()).toEqual(foreign);
    await lab.stop();
    await lab.start();
    expect(await foreignTables()).toEqual(foreign);
    await expectConverged(lab);
  });

  test('flush removes exactly what is ours: our table, and nothing of theirs', async () => {
    await lab.stop();
    await lab.cli(['flush']);
    expect(await lab.snapshot()).toEqual(pristine);
    expect((await lab.runIn(lab.topo.gw, ['nft', 'list', 'tables'])).stdout).not.toContain('dispatcher');
  });
});

// Health judged on real lines: random loss does not fail a line over (nor does
// the passive signal, on by default, whose stalls a burst must confirm), a
// flapping line is held down, a ppp link that returns under another name is
// found by its identity, and a gateway comes from a DHCP lease.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { blackhole, loss } from '../../src/lab/faults.js';
import { Lab, type PoolsJson, within } from '../helpers/lab.js';

jest.setTimeout(180_000);

const TWO_PPP = [
  { name: 'isp1', interface: 'ppp0', weight: 1, gateway: '192.0.2.1' },
  { name: 'isp2', interface: 'ppp1', weight: 1, gateway: '192.0.2.1' },
];

/** An internet address (topology.ts SITE_ADDRESS) whose ICMP echo is rate-limited in the second test. */
const LIMITED = '203.0.113.200';
/** The ICMP limit a public target applies to a ping it deprioritises: one answer a second. */
const RATE_LIMIT = ['INPUT', '-d', LIMITED, '-p', 'icmp', '--icmp-type', 'echo-request'];

describe('60 s of 10 % random loss each way on one line, and ICMP rate-limited to 1/s on one of two targets of the other', () => {
  let lab: Lab;

  beforeAll(async () => {
    // isp1 probes its ISP's core router (198.51.100.2, topology.ts) and the internet host, as the
    // defaults recommend (two targets: silent ones corroborate); isp2 its core router and the rate-limited address.
    lab = await Lab.create({ clients: 1, uplinks: TWO_PPP, config: { targets: { isp1: '[198.51.100.2, 203.0.113.100]', isp2: `[198.51.100.6, ${LIMITED}]` } } });
    await lab.start();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('no failover: both lines stay up with no transition; the rate-limited target alone is dead', async () => {
    await loss(lab.runner, lab.uplink('isp1'), 0.1, true);
    await lab.runIn(lab.topo.inet, ['iptables', '-I', ...RATE_LIMIT, '-j', 'DROP']);
    await lab.runIn(lab.topo.inet, ['iptables', '-I', ...RATE_LIMIT, '-m', 'limit', '--limit', '1/s', '--limit-burst', '1', '-j', 'ACCEPT']);
    const seen: number[] = [];
    for (let second = 0; second < 60; second += 5) {
      await new Promise((resolve) => setTimeout(resolve, 5000));
      const uplinks = (await lab.status()).uplinks;
      expect(uplinks.map((u) => u.state)).toEqual(['up', 'up']);
      seen.push(uplinks[0]?.health?.targets[0]?.lossPercent ?? 0);
    }
    await loss(lab.runner, lab.uplink('isp1'), 0.1, false);
    const [isp1, isp2] = (await lab.status()).uplinks;
    const limited = isp2?.health?.targets.find((t) => t.target === LIMITED);
    process.stdout.write(
      `60 s at 10 % loss each way: probe loss seen over the last 50 probes ${seen.map((l) => `${l}%`).join(', ')}; transitions ${isp1?.health?.transitions}; passive stalls a burst answered ${isp1?.health?.passive?.answered}, unanswered ${isp1?.health?.passive?.silent}\n` +
        `60 s with ICMP to one of two targets limited to 1/s: that target ${limited?.alive ? 'alive' : 'dead'} (${limited?.lossPercent}% lost); transitions ${isp2?.health?.transitions}\n`,
    );
    expect(isp1?.health?.transitions).toBe(0);
    expect(isp2?.health?.transitions).toBe(0);
    // The passive signal is on (the default) and the lossy line stalls now and then; every burst was answered.
    expect(isp1?.health?.passive?.silent).toBe(0);
    // The loss and the limit were real: the probes saw them.
    expect(Math.max(...seen)).toBeGreaterThan(5);
    expect(limited?.alive).toBe(false);
    expect(lab.daemon!.logs.filter((l) => l.includes('"msg":"uplink state changed"'))).toEqual([]);
  });
});

describe('a flapping line', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, uplinks: TWO_PPP });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('is held down after its third quick fall, and its pool stays on the survivor', async () => {
    const isp2 = lab.uplink('isp2');
    for (let i = 0; i < 3; i++) {
      await blackhole(lab.runner, isp2, true);
      await within(4000, `fall ${i + 1}`, async () => (await lab.stateOf('isp2')) === 'down');
      await blackhole(lab.runner, isp2, false);
      if (i < 2) await within(4000, `recovery ${i + 1}`, async () => (await lab.stateOf('isp2')) === 'up');
    }
    // The line is fine again, but it stays down: damping.
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const status = (await lab.status()).uplinks.find((u) => u.name === 'isp2');
    process.stdout.write(`flapping isp2: ${status?.state}, "${status?.reason}", transitions ${status?.health?.transitions}\n`);
    expect(status).toMatchObject({ state: 'down', reason: expect.stringMatching(/flapping: held down for \d+ s more/) });
    expect(status?.health).toMatchObject({ suppressed: true, transitions: 5 });
    const pool = (await lab.runIn(lab.topo.gw, ['ip', 'route', 'show', 'table', '3134'])).stdout;
    expect(pool).toContain('dev ppp0');
  });
});

describe('a ppp uplink that comes back under another name', () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, uplinks: TWO_PPP });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    await within(5000, 'clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 2);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('ppp0 → ppp5 is matched by its ipparam, rebound, and kept across a restart', async () => {
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    const client = lab.topo.clients.find((c) => pools.uplinks[0]?.clients.includes(c.ip))!;
    const args = (iface: string): string[] => [iface, '/dev/ttyS0', '115200', '192.0.2.2', '192.0.2.1', 'isp1'];
    await lab.cli(['hook', 'ip-down', ...args('ppp0')]);
    // pppd reconnects; the kernel hands out another unit number.
    for (const step of [
      ['set', 'dev', 'ppp0', 'down'],
      ['set', 'dev', 'ppp0', 'name', 'ppp5'],
      ['set', 'dev', 'ppp5', 'up'],
    ]) {
      await lab.runner.run(['ip', '-n', lab.topo.gw, 'link', ...step]);
    }
    expect((await lab.cli(['hook', 'ip-up', ...args('ppp5')])).stdout).toBe('ip-up on ppp5: passed to the daemon (uplink isp1)\n');
    await within(5000, 'isp1 up on ppp5', async () => {
      const uplink = (await lab.cliJson<PoolsJson>(['pools'])).uplinks[0];
      return uplink?.interface === 'ppp5' && uplink.state === 'up';
    });
    expect(await lab.leavesBy(client)).toBe('isp1');
    const saved = (await lab.runIn(lab.topo.gw, ['iptables-save'])).stdout;
    expect(saved).toContain('-A DISPATCHER-NAT -o ppp5 -j MASQUERADE');
    expect(saved).not.toContain('ppp0');
    // ppp1 (isp2) was never mistaken for it: no prefix matching.
    expect((await lab.cliJson<PoolsJson>(['pools'])).uplinks[1]).toMatchObject({ name: 'isp2', interface: 'ppp1', state: 'up' });
    await lab.stop();
    await lab.start();
    expect((await lab.cliJson<PoolsJson>(['pools'])).uplinks[0]).toMatchObject({ interface: 'ppp5', state: 'up' });
    expect(await lab.leavesBy(client)).toBe('isp1');
  });

  test('a hook for an interface that belongs to another uplink is refused', async () => {
    const refused = await lab.cli(['hook', 'ip-up', 'ppp1', '/dev/ttyS0', '115200', '192.0.2.2', '192.0.2.1', 'isp1'], [2]);
    expect(refused.stderr).toMatch(/ppp1 belongs to isp2; not rebinding isp1/);
  });
});

describe('gateway discovery from a DHCP lease', () => {
  let lab: Lab;
  let lease: string;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, uplinks: [TWO_PPP[0] as (typeof TWO_PPP)[0], { name: 'cable', interface: 'wan0', weight: 1 }] });
    lease = join(lab.files.dir, 'dhclient.wan0.leases');
    await lab.rewriteConfig({ discoverGateways: true, extra: '' });
    // The lease file is named per uplink; rewrite the config with it.
    const text = (await lab.runner.run(['cat', lab.files.config])).stdout.replace('interface: wan0', `interface: wan0\n    lease: ${lease}`);
    await writeFile(lab.files.config, text);
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('without a lease the line has no gateway; a lease and an address change bring it up', async () => {
    const cable = async (): Promise<PoolsJson['uplinks'][number] & { gatewaySource?: string; reason?: string }> => (await lab.cliJson<PoolsJson>(['pools'])).uplinks[1] as never;
    expect(await cable()).toMatchObject({ state: 'down', gateway: null });
    const gateway = lab.uplink('cable').gateway;
    await writeFile(
      lease,
      `lease {\n  interface "wan0";\n  fixed-address ${lab.uplink('cable').local};\n  option subnet-mask 255.255.255.252;\n  option routers ${gateway};\n  renew 3 2099/01/01 00:00:00;\n  expire 3 2099/01/01 00:00:00;\n}\n`,
    );
    // dhclient renews: the address is set again, which the daemon sees as a link event.
    await lab.runner.run(['ip', '-n', lab.topo.gw, 'addr', 'replace', `${lab.uplink('cable').local}/30`, 'dev', 'wan0', 'valid_lft', '600', 'preferred_lft', '600']);
    await within(5000, 'cable up with the leased gateway', async () => (await cable()).state === 'up');
    expect(await cable()).toMatchObject({ gateway, gatewaySource: 'dhcp-lease' });
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    const client = lab.topo.clients.find((c) => pools.uplinks[1]?.clients.includes(c.ip));
    if (client) expect(await lab.leavesBy(client)).toBe('cable');
    expect((await lab.runIn(lab.topo.gw, ['ip', 'route', 'show', 'table', '3102'])).stdout).toContain(`default via ${gateway} dev wan0`);
  });
});

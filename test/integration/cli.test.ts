// The CLI as operators use it: JSON shapes, exit codes, the control socket's
// permissions, and `plan`, which changes nothing and needs no root.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { chmod, copyFile, rm, stat } from 'node:fs/promises';
import { inNamespace } from '../../src/lab/topology.js';
import { Lab, type PoolsJson, within } from '../helpers/lab.js';
import { readableCopy } from '../helpers/readable-copy.js';

jest.setTimeout(60_000);

describe('CLI against a lab gateway', () => {
  let lab: Lab;
  let pristine: Record<string, string>;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 3 });
    pristine = await lab.snapshot();
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('status without a daemon says so and exits 1; pools still answer from the store', async () => {
    const status = await lab.cli(['status'], [1]);
    expect(status.stdout).toMatch(/^dispatcher is not running \(no daemon on .*dispatcher\.sock\)/);
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    expect(pools.source).toBe('store');
    expect(pools.uplinks.map((u) => [u.name, u.state, u.clients])).toEqual([
      ['isp1', 'up', []],
      ['isp2', 'up', []],
      ['isp3', 'up', []],
    ]);
  });

  test('plan prints the full payloads on a pristine gateway and changes nothing', async () => {
    const out = (await lab.cli(['plan'])).stdout;
    expect(out).toContain('# sysctl -w\nnet.ipv4.ip_forward=1');
    expect(out).toContain('create dispatcher-clients hash:ip family inet');
    expect(out).toContain('-A DISPATCHER-NAT -o ppp1 -j MASQUERADE');
    expect(out).toContain('route replace table 3102 default proto 211 via 192.0.2.1 dev ppp1 onlink');
    expect(await lab.snapshot()).toEqual(pristine);
  });

  test('plan works without root: it says what it could not read and changes nothing', async () => {
    const config = `/tmp/dispatcher-plan-${process.pid}.yaml`;
    await copyFile(lab.files.config, config);
    await chmod(config, 0o644);
    // nobody may not be able to read the checkout (root's home is 0700): run a copy it can read.
    const program = await readableCopy();
    try {
      const argv = inNamespace(lab.topo.gw, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...program.argv(['--config', config, 'plan'])]);
      const out = (await lab.runner.run(argv)).stdout;
      expect(out).toMatch(/# note: could not read iptables-save, ip6tables-save, ipset .*: treated as empty/);
      expect(out).toContain('# uplink isp1 (ppp0): up, link up');
      expect(out).toContain('-A DISPATCHER-PRE -i lan0 -j SET --map-set dispatcher-clients src --map-mark');
    } finally {
      await rm(config, { force: true });
      await program.remove();
    }
    expect(await lab.snapshot()).toEqual(pristine);
  });

  test('pools --json has the documented shape; the socket is root-only', async () => {
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
    await within(5000, 'clients assigned', async () => (await lab.cliJson<PoolsJson>(['pools'])).clients === 3);
    const pools = await lab.cliJson<PoolsJson>(['pools']);
    for (const uplink of pools.uplinks) {
      expect(Object.keys(uplink)).toEqual(expect.arrayContaining(['name', 'interface', 'state', 'weight', 'clients']));
    }
    expect(pools.uplinks[0]).toMatchObject({ name: 'isp1', interface: 'ppp0', state: 'up', weight: 2 });
    expect(pools.uplinks.flatMap((u) => u.clients).sort()).toEqual(lab.topo.clients.map((c) => c.ip).sort());
    expect(((await stat(lab.files.socket)).mode & 0o777).toString(8)).toBe('600');
  });

  test('plan against a running, converged gateway has nothing to change', async () => {
    const out = (await lab.cli(['plan'])).stdout;
    expect(out).toContain('# nothing to change: the kernel already matches the plan');
  });

  test('text output for people', async () => {
    const pools = (await lab.cli(['pools'])).stdout;
    expect(pools.split('\n')[0]).toBe('UPLINK  INTERFACE  STATE  TIER  WEIGHT  ADDRESS     GATEWAY    CLIENTS');
    expect(pools).toMatch(/^isp2    ppp1       up     1     1       192\.0\.2\.6   192\.0\.2\.1  1$/m);
    const status = (await lab.cli(['status'])).stdout;
    expect(status).toMatch(/^dispatcher \d+\.\d+\.\d+, pid \d+, up \d+ s, config /);
    expect(status).toMatch(/last run: .*: ok in \d+ ms/);
  });

  test('usage errors exit 2', async () => {
    expect((await lab.cli(['frobnicate'], [2])).stderr).toMatch(/unknown command 'frobnicate'/);
    expect((await lab.cli(['assign', '198.18.0.10'], [2])).stderr).toMatch(/missing required argument 'uplink'/);
    expect((await lab.cli(['release', 'not-an-ip'], [2])).stderr).toMatch(/not a unicast IPv4 address/);
  });
});

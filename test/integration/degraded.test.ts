// A degraded line on the real kernel: 10 % loss each way on isp1 (the
// statistic match in its ISP's namespace) with `health.degraded.loss: 5%` makes
// it degraded — up all along, shown in status, pools and metrics, its share of
// the multipath route lowered in the kernel — and well again with its weights
// back once the loss is gone.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { loss } from '../../src/lab/faults.js';
import { AGENT } from '../../src/lab/harness.js';
import type { UplinkHealthSnapshot } from '../../src/schema/control.js';
import { Lab, within, type PoolsJson } from '../helpers/lab.js';

jest.setTimeout(120_000);

const METRICS = '127.0.0.1:9109';

describe('a degraded line', () => {
  let lab: Lab;

  const health = async (uplink: string): Promise<UplinkHealthSnapshot> => (await lab.status()).uplinks.find((u) => u.name === uplink)?.health as UplinkHealthSnapshot;
  /** The weight of each uplink's next hop in the multipath table, by interface. */
  const multipathWeights = async (): Promise<Record<string, number>> => {
    const text = (await lab.runIn(lab.topo.gw, ['ip', '-d', 'route', 'show', 'table', '3100'])).stdout;
    return Object.fromEntries([...text.matchAll(/dev (\S+) weight (\d+)/g)].map((m) => [m[1] as string, Number(m[2])]));
  };

  beforeAll(async () => {
    lab = await Lab.create({ clients: 1, tag: 'degr', config: { extra: `health: { degraded: { loss: 5% } }\nmetrics: { listen: "${METRICS}" }\n` } });
    await lab.start();
    for (const uplink of ['isp1', 'isp2', 'isp3']) await within(10_000, `${uplink} up`, async () => (await lab.stateOf(uplink)) === 'up');
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('10 % loss each way: degraded but up, its multipath share lowered in the kernel; well again when the loss ends', async () => {
    expect(await multipathWeights()).toEqual({ ppp0: 2, ppp1: 1, wan0: 1 });
    const isp1 = lab.uplink('isp1');
    await loss(lab.runner, isp1, 0.1, true);
    try {
      // A full window of 50 probes (5 s) at 19 % round-trip loss is far over 5 %.
      await within(20_000, 'isp1 degraded', async () => (await health('isp1')).degraded !== null);
      const degraded = await health('isp1');
      expect(degraded.state).toBe('up');
      expect(degraded.degraded).toMatch(/% of probes lost \(degraded above 5%\)/);
      expect(degraded.transitions).toBe(0);
      // Healthy lines count four times: the kernel's multipath route says so.
      await within(5000, 'the weights lowered', async () => JSON.stringify(await multipathWeights()) === JSON.stringify({ ppp0: 2, ppp1: 4, wan0: 4 }));
      const pools = await lab.cliJson<PoolsJson & { uplinks: { name: string; degraded: string | null; weight: number }[] }>(['pools']);
      expect(pools.uplinks.map((u) => [u.name, u.degraded !== null, u.weight])).toEqual([
        ['isp1', true, 2],
        ['isp2', false, 4],
        ['isp3', false, 4],
      ]);
      expect((await lab.cli(['status'])).stdout).toMatch(/isp1: up but DEGRADED \(/);
      const metrics = (await lab.runIn(lab.topo.gw, [process.execPath, AGENT, 'get', `http://${METRICS}/metrics`])).stdout;
      expect(metrics).toContain('dispatcher_uplink_degraded{uplink="isp1"} 1');
      expect(metrics).toContain('dispatcher_uplink_degraded{uplink="isp2"} 0');
    } finally {
      await loss(lab.runner, isp1, 0.1, false);
    }
    // Clean for a full window and then the 10 s hold.
    await within(40_000, 'isp1 well again', async () => (await health('isp1')).degraded === null);
    await within(5000, 'the weights back', async () => JSON.stringify(await multipathWeights()) === JSON.stringify({ ppp0: 2, ppp1: 1, wan0: 1 }));
    const after = await health('isp1');
    expect(after.state).toBe('up');
    expect(after.transitions).toBe(0);
  });
});

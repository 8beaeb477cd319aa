// A flap storm: one uplink's line drops and returns every 500 ms. Damping
// must hold it down after a few falls (so its clients are not bounced back
// and forth twice a second), nothing may get stuck, and once the storm ends
// and the penalty fades the line comes back and every pool is where it
// belongs. 15 s with an 8 s half-life in CI; 60 s with the default 30 s
// half-life in `npm run test:long`.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { cut } from '../../src/lab/faults.js';
import { expectConverged, expectNoDuplicates, sleep } from '../helpers/checks.js';
import { Lab, within } from '../helpers/lab.js';
import { LONG, scale } from '../helpers/long.js';

const STORM_MS = scale(15_000, 60_000);
const TOGGLE_MS = 500;
// 8 s, not less: the slow flap below falls every 3 s, and with a 5 s half-life the penalty reached
// the suppress level (2.5) only at the fifth fall, by 0.07 — one late fall and it missed the window.
// With 8 s it is 2.8 at the fourth fall.
const HALF_LIFE_S = scale(8, 30);
const SLOW_MS = scale(20_000, 60_000);
jest.setTimeout(Math.max(STORM_MS, SLOW_MS) + HALF_LIFE_S * 4000 + 60_000);

describe(`an uplink toggling every ${TOGGLE_MS} ms for ${STORM_MS / 1000} s`, () => {
  let lab: Lab;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 2, tag: 'flap', config: { extra: LONG ? '' : `health: { damping: { half_life: ${HALF_LIFE_S}s } }` } });
    await lab.start();
    for (const client of lab.topo.clients) await lab.hello(client);
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  const pool = async (): Promise<string> => (await lab.runIn(lab.topo.gw, ['ip', 'route', 'show', 'table', '3133'])).stdout;

  /** Flips isp1's line on a fixed cadence for a while, sampling its health meanwhile; ends with the line up. */
  async function flap(downMs: number, upMs: number, forMs: number): Promise<{ toggles: number; suppressedSeen: boolean; upInSecondHalf: number; upWhileSuppressed: number; poolViaIsp1InSecondHalf: number; transitions: number }> {
    const isp1 = lab.uplink('isp1');
    const transitionsBefore = (await lab.status()).uplinks[0]?.health?.transitions ?? 0;
    const started = performance.now();
    let toggles = 0;
    // The flips keep their cadence however long the status checks take.
    const storm = (async () => {
      while (performance.now() - started < forMs) {
        await cut(lab.runner, isp1, toggles % 2 === 0);
        toggles++;
        const cycle = Math.floor(toggles / 2) * (downMs + upMs) + (toggles % 2) * downMs;
        await sleep(started + cycle - performance.now());
      }
      if (toggles % 2 === 1) await cut(lab.runner, isp1, false);
    })();
    let suppressedSeen = false;
    let upInSecondHalf = 0;
    let upWhileSuppressed = 0;
    let poolViaIsp1InSecondHalf = 0;
    while (performance.now() - started < forMs) {
      const now = (await lab.status()).uplinks.find((u) => u.name === 'isp1');
      const secondHalf = performance.now() - started > forMs / 2;
      suppressedSeen ||= now?.health?.suppressed === true;
      if (secondHalf && now?.state === 'up') upInSecondHalf++;
      if (suppressedSeen && now?.state === 'up') upWhileSuppressed++;
      // Sampled during the storm: once it ends, the line may rightly come back within a second.
      if (secondHalf && (await pool()).includes('dev ppp0')) poolViaIsp1InSecondHalf++;
    }
    await storm;
    return { toggles, suppressedSeen, upInSecondHalf, upWhileSuppressed, poolViaIsp1InSecondHalf, transitions: ((await lab.status()).uplinks[0]?.health?.transitions ?? 0) - transitionsBefore };
  }

  /** Not stuck: once the line is stable it comes back, and everything is where it belongs. */
  async function expectRecovered(): Promise<number> {
    const back = await within(HALF_LIFE_S * 4000 + 10_000, 'isp1 back up after the storm', async () => (await lab.stateOf('isp1')) === 'up');
    expect(await pool()).toContain('dev ppp0');
    expect((await lab.status()).uplinks.map((u) => u.state)).toEqual(['up', 'up', 'up']);
    await expectNoDuplicates(lab);
    await expectConverged(lab);
    return back;
  }

  test(`every ${TOGGLE_MS} ms: never let back during the storm, a handful of transitions, back and correct afterwards`, async () => {
    const storm = await flap(TOGGLE_MS, TOGGLE_MS, STORM_MS);
    // Up for 500 ms is never enough to pass revival (10 answers in a row), and damping covers what does.
    expect(storm.upInSecondHalf).toBe(0);
    expect(storm.transitions).toBeLessThanOrEqual(6);
    expect(storm.poolViaIsp1InSecondHalf).toBe(0);
    const back = await expectRecovered();
    process.stdout.write(`flap storm: ${storm.toggles} toggles in ${STORM_MS / 1000} s, ${storm.transitions} transitions${storm.suppressedSeen ? ', damped' : ''}; back ${(back / 1000).toFixed(1)} s after it ended\n`);
  });

  test('a slower flap that revival alone would let through is held down by damping', async () => {
    // Down 1 s, up 2 s: each up phase outlasts revival (10 fresh answers), so only damping can hold the line.
    const slow = await flap(1000, 2000, SLOW_MS);
    expect(slow.suppressedSeen).toBe(true);
    expect(slow.upWhileSuppressed).toBe(0);
    // Held from the third fall with the default half-life (30 s), from the fourth with CI's 8 s.
    expect(slow.transitions).toBeLessThanOrEqual(LONG ? 6 : 10);
    const back = await expectRecovered();
    process.stdout.write(`slow flap: ${slow.toggles} toggles in ${SLOW_MS / 1000} s, ${slow.transitions} transitions, held down by damping; back ${(back / 1000).toFixed(1)} s after it ended (half-life ${HALF_LIFE_S} s)\n`);
  });
});

// The web dashboard as a user meets it: `dispatcher lab --hold` prints the
// page's address on the host and its token; headless Chromium (Debian's)
// opens it, finds every line and client, sees a blackholed line turn down
// without a reload, is refused an action without the token and allowed one
// with it, and shows no console error. The screenshot it takes is
// test/output/dashboard.png (docs/dashboard.png is one of them).

import { expect, jest, test } from '@jest/globals';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { blackhole } from '../../src/lab/faults.js';
import { DISPATCHER_BIN, waitFor } from '../../src/lab/harness.js';
import { DEFAULT_UPLINKS, describeTopology } from '../../src/lab/topology.js';
import type { TimelineEventView } from '../../src/schema/control.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { launchChromium } from '../helpers/browser.js';
import { requireRoot, within } from '../helpers/lab.js';

jest.setTimeout(240_000);

const OUTPUT = fileURLToPath(new URL('../output/', import.meta.url));
const CLIENTS = 4;

const stateOf = (page: Page, uplink: string): Promise<string | null> => page.locator(`[data-uplink="${uplink}"] .state`).textContent();

test("the lab's dashboard in headless Chromium: every line and client, a blackholed line down within 3 s of the verdict without a reload, actions only with the token, no console errors", async () => {
  requireRoot();
  const runner = new ExecaRunner();
  const output: string[] = [];
  const lab = runner.spawn([process.execPath, DISPATCHER_BIN, 'lab', '--hold', '--clients', String(CLIENTS)], { onLine: (line) => output.push(line) });
  let browser: Browser | null = null;
  let prefix: string | undefined;
  try {
    await waitFor('the lab to hold', 180_000, async () => (output.some((line) => line.startsWith('press Ctrl-C')) ? true : null));
    const text = output.join('\n');
    const url = /Open (http:\/\/127\.0\.0\.1:[0-9]+\/) in a browser \(the token for its actions: ([0-9a-f]{32})\)/.exec(text);
    prefix = /namespaces (dsplab-[0-9]+-[0-9]+-)\*/.exec(text)?.[1];
    expect(url).not.toBeNull();
    expect(prefix).toBeDefined();
    const [, address, token] = url as unknown as [string, string, string];
    const isp1 = describeTopology({ prefix: prefix as string, clients: CLIENTS, uplinks: DEFAULT_UPLINKS, ipv6: true }).uplinks[0];
    if (!isp1) throw new Error('no isp1 in the lab');

    browser = await launchChromium();
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    page.on('pageerror', (error) => problems.push(String(error)));
    const loaded = Date.now();
    await page.goto(address);

    // Every line, up, and every client in the table; the lab's failovers are in the timeline.
    const rows = (): Promise<number> => page.locator('#clients tbody tr').count();
    const notice = async (): Promise<string> => (await page.locator('#notice').textContent()) ?? '';
    for (const name of ['isp1', 'isp2', 'isp3']) await within(10_000, `${name} shown up`, async () => (await stateOf(page, name)) === 'up');
    await within(10_000, 'every client in the table', async () => (await rows()) === CLIENTS);
    expect(await page.locator('#live').textContent()).toBe('live');
    expect(await page.locator('#events li[data-kind="failover"]').count()).toBeGreaterThanOrEqual(1);
    // The filter narrows the table as one types.
    await page.locator('#filter').fill('198.18.0.11');
    await within(5_000, 'one row left by the filter', async () => (await rows()) === 1);
    expect(await page.locator('#clients tbody tr td').first().textContent()).toBe('198.18.0.11');
    await page.locator('#filter').fill('');
    await within(5_000, 'every row back', async () => (await rows()) === CLIENTS);
    // Busiest first: the client that streamed in the lab's demonstrations leads, with its bytes (each cell's title
    // has the exact count), the others after it in falling order; then address order again.
    const firstCell = async (cell: string): Promise<string> => (await page.locator(`#clients tbody tr td${cell}`).first().textContent()) ?? '';
    const counts = async (): Promise<number[]> => (await page.locator('#clients tbody tr td.bytes').evaluateAll((cells) => cells.map((cell) => cell.getAttribute('title') ?? ''))).map((title) => Number.parseInt(title, 10));
    await page.locator('#by-bytes').click();
    await within(5_000, 'the busiest client first, with its bytes', async () => /^[0-9.]+ (kB|MB)$/.test(await firstCell('.bytes')) && (await page.locator('#by-bytes').getAttribute('aria-pressed')) === 'true');
    const busiest = await counts();
    expect(busiest).toHaveLength(CLIENTS);
    expect(busiest[0]).toBeGreaterThan(10_000);
    expect(busiest).toEqual([...busiest].sort((a, b) => b - a));
    await page.locator('#by-address').click();
    await within(5_000, 'address order again', async () => (await firstCell('')) === '198.18.0.10');

    // Without the token, an action is refused, and says so.
    await page.locator('#rebalance').click();
    await within(5_000, 'the refusal shown', async () => (await notice()).includes('refused: this needs the token'));

    // isp1 dies silently: the page shows it down, unreloaded, soon after the daemon's verdict.
    const cutAt = Date.now();
    await blackhole(runner, isp1, true);
    let shownAt = 0;
    try {
      await page.waitForFunction(() => document.querySelector('[data-uplink="isp1"] .state')?.textContent === 'down', null, { timeout: 15_000, polling: 50 });
      shownAt = Date.now();
      expect(await page.locator('#events li[data-kind="failover"]').count()).toBeGreaterThanOrEqual(2);
    } finally {
      await blackhole(runner, isp1, false);
    }
    const events = (await page.evaluate(async () => (await (await fetch('/api/events')).json()) as { events: TimelineEventView[] })).events;
    const verdict = events.find((e) => e.kind === 'verdict' && e.uplink === 'isp1' && e.text.startsWith('isp1 up → down') && Date.parse(e.at) >= cutAt - 50);
    expect(verdict).toBeDefined();
    const lag = shownAt - Date.parse(verdict?.at as string);
    expect(lag).toBeLessThan(3000);
    process.stdout.write(`dashboard: isp1 cut at +${cutAt - loaded} ms, verdict ${Date.parse(verdict?.at as string) - cutAt} ms later, shown ${lag} ms after the verdict\n`);
    await within(15_000, 'isp1 shown up again', async () => (await stateOf(page, 'isp1')) === 'up');

    // With the token, the same action is done.
    await page.locator('#token').fill(token);
    await page.locator('#token-form button').click();
    await page.locator('#rebalance').click();
    await within(10_000, 'the rebalance done', async () => /^rebalance: [0-9]+ clients moved$/.test(await notice()));

    // A row explains its client.
    await page.locator('#clients tbody tr').first().click();
    await within(5_000, 'the explanation shown', async () => ((await page.locator('#explain').textContent()) ?? '').startsWith('198.18.0.10: assigned'));
    expect(await page.locator('#explain').textContent()).toContain('kernel: ip -o route get');

    await mkdir(OUTPUT, { recursive: true });
    await page.screenshot({ path: `${OUTPUT}dashboard.png`, fullPage: true });
    // Chromium logs every refused request; the one refused action is the only thing in its console.
    expect(problems).toEqual(['Failed to load resource: the server responded with a status of 401 (Unauthorized)']);
  } finally {
    await browser?.close();
    lab.stop('SIGTERM');
    await lab.ended;
  }
  expect(output.join('\n')).toContain('done: nothing of the lab is left.');
  expect((await runner.run(['ip', 'netns', 'list'])).stdout).not.toContain(prefix ?? 'dsplab-none');
});

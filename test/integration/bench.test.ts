// The benchmark suite works: `--quick` runs every scenario in its namespace
// labs and writes results.json, RESULTS.md and a chart per scenario with real
// figures. Whether a target was met is the benchmark's report, not a test
// verdict (timings on a shared CI machine are noise, DESIGN.md rule 6).

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResults } from '../../src/bench/report.js';
import { requireRoot } from '../../src/lab/lab.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { runTempDir } from '../../src/lab/leftovers.js';

jest.setTimeout(240_000);

const MAIN = fileURLToPath(new URL('../../dist/bench/main.js', import.meta.url));
const SCENARIOS = ['programming', 'backends', 'forwarding', 'pickup', 'failover', 'restart', 'footprint', 'cli-start'];

describe('npm run bench -- --quick', () => {
  let out: string;
  let results: BenchResults;
  let log: string;

  beforeAll(async () => {
    requireRoot();
    out = await runTempDir('bench');
    const run = await new ExecaRunner().run([process.execPath, MAIN, '--quick', '--out', out], { timeoutMs: 230_000, okExitCodes: [0, 1] });
    log = run.stdout + run.stderr;
    results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as BenchResults;
  });

  afterAll(async () => {
    await rm(out, { recursive: true, force: true });
  });

  test('every scenario ran and produced figures with their baselines', () => {
    expect(results.quick).toBe(true);
    expect(results.scenarios.map((s) => s.id)).toEqual(SCENARIOS);
    for (const scenario of results.scenarios) {
      expect({ id: scenario.id, failed: scenario.notes.filter((n) => n.startsWith('failed')) }).toEqual({ id: scenario.id, failed: [] });
      expect(scenario.figures.length).toBeGreaterThan(0);
      for (const f of scenario.figures) {
        expect(Number.isFinite(f.value)).toBe(true);
        expect(f.value).toBeGreaterThanOrEqual(0);
        // A figure without a baseline says why.
        if (f.baseline === null) expect(f.baselineNote).toBeTruthy();
        else expect(f.baseline).toBeGreaterThan(0);
      }
    }
    expect(log).toContain('written to');
  });

  test('figures that must be measured are: classification, rates, pickup, gaps, restart, footprint, CLI start-up', () => {
    const byId = Object.fromEntries(results.scenarios.map((s) => [s.id, s]));
    const value = (id: string, name: RegExp): number => byId[id]?.figures.find((f) => name.test(f.name))?.value ?? Number.NaN;
    expect(value('programming', /^5,000 clients/)).toBeGreaterThan(0);
    expect(value('backends', /^iptables: 5,000 clients/)).toBeGreaterThan(0);
    expect(value('backends', /^nftables: 5,000 clients/)).toBeGreaterThan(0);
    expect(value('forwarding', /^dispatcher \(iptables\), /)).toBeGreaterThan(1000);
    expect(value('forwarding', /^dispatcher \(nftables\), /)).toBeGreaterThan(1000);
    expect(value('pickup', /^p95$/)).toBeGreaterThan(0);
    expect(value('pickup', /^among 5,000: p99$/)).toBeGreaterThan(0);
    expect(value('failover', /blackhole \(busy line\): failover gap/)).toBeGreaterThan(0);
    expect(value('failover', /blackhole \(idle line\): pool moved/)).toBeGreaterThan(0);
    expect(value('failover', /passive off: pool moved/)).toBeGreaterThan(0);
    expect(value('failover', /^probe traffic per line/)).toBeGreaterThan(0);
    expect(value('restart', /until reconciled/)).toBeGreaterThan(0);
    expect(value('footprint', /^RSS/)).toBeGreaterThan(10);
    expect(value('cli-start', /^dispatcher hook$/)).toBeGreaterThan(0);
    expect(value('cli-start', /^dispatcher status$/)).toBeGreaterThan(0);
    // Restart correctness is not a timing: nothing moves, nothing is rewritten.
    expect(value('restart', /clients moved/)).toBe(0);
    expect(value('restart', /kernel lines changed/)).toBe(0);
  });

  test('RESULTS.md lists every scenario with its chart, and every chart is an SVG with bars', async () => {
    const md = await readFile(join(out, 'RESULTS.md'), 'utf8');
    for (const scenario of results.scenarios) {
      expect(md).toContain(`(${scenario.id}.svg)`);
      const svg = await readFile(join(out, `${scenario.id}.svg`), 'utf8');
      expect(svg).toMatch(/^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
      expect(svg.match(/class="ours"/g)?.length).toBe(scenario.figures.length);
    }
  });
});

// `npm run bench` (root): runs every scenario in its own namespace lab and
// writes results.json, RESULTS.md and one SVG chart per scenario.
//   node dist/bench/main.js [--quick] [--out DIR] [--only id,id]
// A scenario that fails is reported (and the exit code says so); the others
// still run, and every lab is deleted either way.

import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderChart } from './chart.js';
import { cliStart } from './cli-start.js';
import { FULL, QUICK, type BenchContext } from './context.js';
import { failover } from './failover.js';
import { footprint } from './footprint.js';
import { forwarding } from './forwarding.js';
import { pickup } from './pickup.js';
import { programming } from './programming.js';
import { backends } from './backends.js';
import { renderMarkdown, type BenchResults, type ScenarioResult } from './report.js';
import { restart } from './restart.js';

/** In order: programming measures the per-client baseline that pickup and restart reuse. */
const SCENARIOS: readonly [string, (ctx: BenchContext) => Promise<ScenarioResult>][] = [
  ['programming', programming],
  ['backends', backends],
  ['forwarding', forwarding],
  ['pickup', pickup],
  ['failover', failover],
  ['restart', restart],
  ['footprint', footprint],
  ['cli-start', cliStart],
];

function parseArgs(argv: readonly string[]): { quick: boolean; out: string; only: string[] | null } {
  const value = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const only = value('--only')?.split(',') ?? null;
  const unknown = only?.filter((id) => !SCENARIOS.some(([name]) => name === id)) ?? [];
  if (unknown.length > 0) throw new Error(`unknown scenario(s) ${unknown.join(', ')}; known: ${SCENARIOS.map(([n]) => n).join(', ')}`);
  return { quick: argv.includes('--quick'), out: value('--out') ?? fileURLToPath(new URL('../../bench/', import.meta.url)), only };
}

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    process.stderr.write('the benchmark needs root: it builds network namespaces (and changes nothing outside them)\n');
    return 2;
  }
  const args = parseArgs(process.argv.slice(2));
  const started = new Date();
  const ctx: BenchContext = {
    quick: args.quick,
    sizes: args.quick ? QUICK : FULL,
    log: (message) => process.stdout.write(`[${((Date.now() - started.getTime()) / 1000).toFixed(1)} s] ${message}\n`),
  };
  const scenarios: ScenarioResult[] = [];
  let failed = 0;
  for (const [id, run] of SCENARIOS) {
    if (args.only && !args.only.includes(id)) continue;
    ctx.log(`scenario ${id}`);
    try {
      scenarios.push(await run(ctx));
    } catch (error) {
      failed++;
      ctx.log(`scenario ${id} failed: ${(error as Error).stack ?? String(error)}`);
      scenarios.push({ id, title: `${id}: failed`, baseline: '—', figures: [], notes: [`failed: ${(error as Error).message}`] });
    }
  }
  const results: BenchResults = {
    started: started.toISOString(),
    durationS: (Date.now() - started.getTime()) / 1000,
    quick: args.quick,
    machine: { cpus: cpus().length, kernel: release(), node: process.version },
    scenarios,
  };
  await mkdir(args.out, { recursive: true });
  await writeFile(join(args.out, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  await writeFile(join(args.out, 'RESULTS.md'), renderMarkdown(results));
  for (const scenario of scenarios) await writeFile(join(args.out, `${scenario.id}.svg`), renderChart(scenario));
  process.stdout.write(`\n${renderMarkdown(results)}\nwritten to ${args.out}\n`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error: Error) => {
    process.stderr.write(`${error.message}\n`);
    process.exit(2);
  },
);

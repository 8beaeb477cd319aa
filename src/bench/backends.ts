// Scenario: the two netfilter backends side by side, each against its floor
// measured in the same run: many clients appearing at once until every one is
// classified, beside the bare load of the same number of entries with the
// backend's own tool and nothing else (`ipset restore` of a hash:ip counters skbinfo
// set; `nft -f` of a table with a counting verdict map) — what no daemon built on that
// tool can beat.

import { join } from 'node:path';
import { writeFile } from 'node:fs/promises';
import { Lab } from '../lab/lab.js';
import { addNeighbours, benchAddress, removeNeighbours, resetGateway, untilClassified } from './clients.js';
import type { BenchContext } from './context.js';
import { figure, type Figure, type ScenarioResult } from './report.js';
import { median } from './stats.js';

const BACKENDS = ['iptables', 'nftables'] as const;
type Backend = (typeof BACKENDS)[number];

const TARGETS: Record<number, { text: string; max: number }> = { 50_000: { text: '50k in ≤ 1 s', max: 1000 } };

/** Rounds per size, each figure their median: one burst's time varies by a factor of two from run to run here. */
const ROUNDS = 3;

interface Round {
  /** The floor, the kernel's insertion alone, ours from the first client, ours after the last appeared (ms). */
  readonly bare: number;
  readonly insertion: number;
  readonly ms: number;
  readonly after: number;
  readonly inserted: number;
}

/** The bare load of `count` entries with the backend's tool, in the gateway namespace; removed again. */
async function floor(lab: Lab, backend: Backend, count: number): Promise<number> {
  const addresses = Array.from({ length: count }, (_, i) => benchAddress(i));
  const file = join(lab.files.dir, `floor-${backend}-${count}`);
  if (backend === 'iptables') {
    await writeFile(file, [`create bench-floor hash:ip family inet hashsize 65536 maxelem ${count + 1} counters skbinfo`, ...addresses.map((a) => `add bench-floor ${a} skbmark 0x1000000/0xf000000`), ''].join('\n'));
    const started = performance.now();
    await lab.runIn(lab.topo.gw, ['ipset', 'restore', '-file', file]);
    const ms = performance.now() - started;
    await lab.runIn(lab.topo.gw, ['ipset', 'destroy', 'bench-floor']);
    return ms;
  }
  await writeFile(
    file,
    [
      'table inet benchfloor {',
      `  map m { type ipv4_addr : verdict; size ${count + 1}; counter; }`,
      '  chain p {',
      '    meta mark set meta mark and 0xf0ffffff or 0x01000000',
      '  }',
      '}',
      `add element inet benchfloor m { ${addresses.map((a) => `${a} : jump p`).join(', ')} }`,
      '',
    ].join('\n'),
  );
  const started = performance.now();
  await lab.runIn(lab.topo.gw, ['nft', '-f', file]);
  const ms = performance.now() - started;
  await lab.runIn(lab.topo.gw, ['nft', 'delete', 'table', 'inet', 'benchfloor']);
  return ms;
}

/**
 * The kernel inserting `count` neighbour entries by one `ip -batch`, with no
 * daemon running: the clients cannot appear faster than this, so no daemon
 * can classify the last of them sooner after the first. Removed again.
 */
async function neighboursAlone(lab: Lab, count: number): Promise<number> {
  const started = performance.now();
  await addNeighbours(lab, count);
  const ms = performance.now() - started;
  await removeNeighbours(lab);
  return ms;
}

export async function backends(ctx: BenchContext): Promise<ScenarioResult> {
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const backend of BACKENDS) {
    const lab = await Lab.create({ clients: 1, tag: 'b', config: { schedule: '0 0 * * * *', backend } });
    try {
      for (const count of ctx.sizes.programming) {
        const rounds: Round[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          const bare = await floor(lab, backend, count);
          const insertion = await neighboursAlone(lab, count);
          await lab.start();
          const started = performance.now();
          await addNeighbours(lab, count);
          const inserted = performance.now() - started;
          const ms = await untilClassified(lab, count, started, 120_000);
          rounds.push({ bare, insertion, ms, after: ms - inserted, inserted });
          await resetGateway(lab);
        }
        const of = (key: keyof Round): number => median(rounds.map((r) => r[key]));
        const [bare, insertion, ms, after] = [of('bare'), of('insertion'), of('ms'), of('after')];
        const each = rounds.map((r) => r.after.toFixed(0)).join(', ');
        ctx.log(
          `${backend}: ${count} clients at once classified ${after.toFixed(0)} ms after the last appeared (rounds: ${each}; floor: ${bare.toFixed(0)} ms), ${ms.toFixed(0)} ms after the first (the kernel's insertion alone: ${insertion.toFixed(0)} ms)`,
        );
        const name = `${backend}: ${count.toLocaleString('en-US')} clients at once`;
        figures.push(
          figure({ name: `${name}, after the last appeared`, unit: 'ms', value: after, baseline: bare, baselineNote: 'floor', ...(TARGETS[count] ? { target: TARGETS[count] } : {}) }),
          figure({ name: `${name}, from the first`, unit: 'ms', value: ms, baseline: insertion, baselineNote: 'insertion alone' }),
        );
        notes.push(`${backend}, ${count} clients: ${(after / bare).toFixed(1)}× the floor after the last appeared (rounds: ${each} ms); inserting them took ${of('inserted').toFixed(0)} ms with the daemon at work`);
      }
    } finally {
      await lab.destroy();
    }
  }
  return {
    id: 'backends',
    title: 'The two netfilter backends: clients appearing at once until classified, against the bare load with their own tool',
    baseline:
      'the floor: the same number of entries loaded by the backend’s tool alone, in the same gateway namespace (ipset restore of a hash:ip counters skbinfo set; nft -f of a table with a counting verdict map); for the clock from the first client, the kernel inserting the neighbour entries alone',
    figures,
    notes: [
      'Clients appear by one `ip -batch` of permanent neighbour entries; classified: the kernel classifies every client (`ipset list -t` entries, or the elements of `map inet dispatcher clients`), counted once the daemon says it holds them all; the time is the earlier of that count and the end of the daemon’s last run as it reports it (`untilClassified` in src/bench/clients.ts says why). Two clocks: from the end of the batch (the last client has appeared) against the floor, the bare load of as many entries with the backend’s tool; and from its start (the first client) against the kernel inserting the entries with no daemon running, which no daemon can beat. The ratio is the baseline over ours: below 1, and the closer to 1 the nearer the limit (the issue asks for ours ≤ 2× the floor, a ratio ≥ 0.5).',
      `Each figure is the median of ${ROUNDS} rounds (the gateway reset between them); the notes give each round's time after the last appeared.`,
      ...notes,
    ],
  };
}

// Many clients for the benchmark: permanent neighbour entries on the
// gateway's LAN interface, loaded by one `ip -batch` (as a switch coming up
// would cause; permanent entries do not count against gc_thresh), and the
// kernel's view of how many are classified.

import { rm } from 'node:fs/promises';
import type { Lab } from '../lab/lab.js';
import { waitFor } from '../lab/harness.js';
import { ask } from '../system/control-client.js';

/** Client i: 198.18.4.0 onwards (clear of the lab's own clients), up to 64,512 of them. */
export function benchAddress(i: number): string {
  const n = 1024 + i;
  return `198.18.${n >> 8}.${n & 255}`;
}

/** The original design's classification: one mangle MARK rule per client, in a chain of its own. */
export const NAIVE_CHAIN = 'BENCH-NAIVE';

/** Client i's rule in NAIVE_CHAIN, as arguments after `-A`/`-t mangle -A`. */
export function naiveRule(i: number): string {
  return `${NAIVE_CHAIN} -s ${benchAddress(i)}/32 -j MARK --set-xmark 0x1000000/0xf000000`;
}

export function benchMac(i: number): string {
  return `02:be:00:${[(i >> 16) & 255, (i >> 8) & 255, i & 255].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
}

export function neighbourBatch(dev: string, count: number, from = 0): string {
  const lines: string[] = [];
  for (let i = from; i < from + count; i++) lines.push(`neigh replace ${benchAddress(i)} lladdr ${benchMac(i)} dev ${dev} nud permanent`);
  return `${lines.join('\n')}\n`;
}

/**
 * A generous timeout: on a 2-core machine the batch may wait for CPU behind
 * hundreds of processes a test starts at the same moment (the project's CI once
 * saw 200 neighbours take longer than the runner's default 30 s there).
 */
const NEIGHBOURS_TIMEOUT_MS = 120_000;

export async function addNeighbours(lab: Lab, count: number, from = 0): Promise<void> {
  await lab.runner.run(['ip', '-n', lab.topo.gw, '-batch', '-'], { input: neighbourBatch(lab.topo.lanInterface, count, from), timeoutMs: NEIGHBOURS_TIMEOUT_MS });
}

export async function removeNeighbours(lab: Lab): Promise<void> {
  await lab.runIn(lab.topo.gw, ['ip', 'neigh', 'flush', 'dev', lab.topo.lanInterface, 'nud', 'permanent']);
}

/** Clients the kernel classifies: entries in the client set, or elements of the nftables map (0 when absent). */
export async function classifiedCount(lab: Lab): Promise<number> {
  if (lab.backend === 'nftables') {
    const result = await lab.runIn(lab.topo.gw, ['nft', '-j', 'list', 'map', 'inet', 'dispatcher', 'clients'], [0, 1]);
    if (result.exitCode !== 0) return 0;
    const items = (JSON.parse(result.stdout) as { nftables: { map?: { elem?: unknown[] } }[] }).nftables;
    return items.find((item) => item.map)?.map?.elem?.length ?? 0;
  }
  const result = await lab.runIn(lab.topo.gw, ['ipset', 'list', '-t', 'dispatcher-clients'], [0, 1]);
  return Number(/Number of entries: (\d+)/.exec(result.stdout)?.[1] ?? 0);
}

/**
 * Polls until at least `count` clients are classified; returns the milliseconds since `since` (a
 * performance.now() reading). The kernel is asked only once the daemon, asked over its socket (no
 * process started), holds that many: listing the nftables map costs 1.3–1.5 s of CPU at 50,000
 * elements here, and polling it while the daemon loads competed with the daemon for the two cores
 * and made every figure a multiple of that. The time is the earlier of the kernel's count reaching
 * `count` and the end of the daemon's last run as it reports it (that run, or one before it, loaded
 * the last of them): both are at or after the moment the kernel classified the last client.
 */
export async function untilClassified(lab: Lab, count: number, since: number, timeoutMs: number): Promise<number> {
  const sinceEpoch = Date.now() - (performance.now() - since);
  const left = (): number => Math.max(0, timeoutMs - (performance.now() - since));
  await waitFor(`the daemon to hold ${count} clients`, left(), async () => (((await ask<'status'>(lab.files.socket, { cmd: 'status' }))?.clients ?? 0) >= count ? true : null));
  await waitFor(`the kernel to classify ${count} clients`, left(), async () => ((await classifiedCount(lab)) >= count ? true : null));
  const confirmed = performance.now() - since;
  const last = (await ask<'status'>(lab.files.socket, { cmd: 'status' }))?.lastRun;
  const runEnded = last ? Date.parse(last.at) + last.durationMs - sinceEpoch : Number.POSITIVE_INFINITY;
  return Math.min(confirmed, runEnded);
}

/** Starts the daemon and gives it `count` clients at once; resolves once the kernel classifies them all. */
export async function startWithClients(lab: Lab, count: number, timeoutMs = 120_000): Promise<void> {
  await lab.start();
  await addNeighbours(lab, count);
  await untilClassified(lab, count, performance.now(), timeoutMs);
}

/**
 * How long a scenario that measures the gateway at rest waits after a burst of
 * 50,000 clients is classified. The kernel has them all by then, but the
 * daemon is not done with them: with nftables its `nft monitor` still prints
 * the burst's 50,000 element events and the daemon reads them (measured here:
 * 0.58 s of CPU in the first second after, next to nothing from the second on),
 * and the run's store write and collection follow. A figure of the gateway at
 * rest (forwarding, one more client) starts after them.
 */
export const AFTER_BURST_MS = 3000;

/** Waits AFTER_BURST_MS (see there). */
export function afterBurst(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, AFTER_BURST_MS));
}

/** Stops the daemon, removes what it programmed and its store, and the benchmark's neighbours: a clean gateway. */
export async function resetGateway(lab: Lab): Promise<void> {
  await lab.stop();
  await lab.cli(['flush']);
  await rm(lab.files.state, { recursive: true, force: true });
  await removeNeighbours(lab);
}

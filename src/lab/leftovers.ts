// What a lab, a test or a doctor check leaves behind when it dies without
// cleaning up (SIGKILL, the OOM killer, a CI time-out), and its removal:
// network namespaces (with what still runs in them) and temporary
// directories named for a run (core/run-names.ts) whose owner is gone. A live
// run's things are never touched, nor anything not named this way.

import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { isLeftover, ownerOf, runName } from '../core/run-names.js';
import type { Runner } from '../system/exec.js';
import { startedAt } from '../system/process-start.js';
import { destroyTopology } from './topology.js';

const NETNS_DIR = '/run/netns';
let runs = 0;

/** The prefix of one run's names, owned by this process: `dsp<tag>-<pid>-<n>-`. */
export function runPrefix(tag: string): string {
  runs += 1;
  return runName(tag, process.pid, runs);
}

/** A temporary directory named for a run of this process (removed as a leftover if the process dies). */
export function runTempDir(tag: string): Promise<string> {
  return mkdtemp(join(tmpdir(), runPrefix(tag)));
}

export interface Leftover {
  readonly kind: 'namespace' | 'directory';
  /** The namespace's name, or the directory's path. */
  readonly name: string;
  readonly owner: number;
}

/** Our names in a directory with when each was made (mtime: a namespace file's is its creation). */
async function candidates(dir: string): Promise<{ name: string; path: string; owner: number; madeMs: number }[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const found = await Promise.all(
    names.map(async (name) => {
      const owner = ownerOf(name);
      if (owner === null) return null;
      const info = await stat(join(dir, name)).catch(() => null);
      return info ? { name, path: join(dir, name), owner, madeMs: info.mtimeMs } : null;
    }),
  );
  return found.filter((c) => c !== null);
}

/** Our namespaces and temporary directories, namespaces first. */
async function ours(): Promise<(Leftover & { madeMs: number })[]> {
  const [namespaces, directories] = await Promise.all([candidates(NETNS_DIR), candidates(tmpdir())]);
  return [...namespaces.map((c) => ({ kind: 'namespace' as const, name: c.name, owner: c.owner, madeMs: c.madeMs })), ...directories.map((c) => ({ kind: 'directory' as const, name: c.path, owner: c.owner, madeMs: c.madeMs }))];
}

/** Every leftover namespace and temporary directory, namespaces first. */
export async function findLeftovers(): Promise<Leftover[]> {
  const starts = new Map<number, number | null>();
  const left: Leftover[] = [];
  for (const { madeMs, ...thing } of await ours()) {
    if (!starts.has(thing.owner)) starts.set(thing.owner, await startedAt(thing.owner));
    if (isLeftover(madeMs, starts.get(thing.owner) ?? null)) left.push(thing);
  }
  return left;
}

/**
 * Everything named for one of this process's runs (a runPrefix), including
 * what its own records do not know of yet: a lab ended by a signal while it
 * was still building its namespaces.
 */
export async function removeRun(runner: Runner, prefix: string): Promise<void> {
  await removeLeftovers(
    runner,
    (await ours()).filter((thing) => (thing.kind === 'namespace' ? thing.name : basename(thing.name)).startsWith(prefix)),
  );
}

/** Kills what still runs in the namespaces and deletes them (as a lab's own teardown does), removes the directories. */
export async function removeLeftovers(runner: Runner, leftovers: readonly Leftover[]): Promise<void> {
  await destroyTopology(runner, { namespaces: leftovers.filter((l) => l.kind === 'namespace').map((l) => l.name) });
  for (const l of leftovers) if (l.kind === 'directory') await rm(l.name, { recursive: true, force: true });
}

/** Finds and removes leftovers; returns what was removed. */
export async function cleanLeftovers(runner: Runner): Promise<Leftover[]> {
  const leftovers = await findLeftovers();
  await removeLeftovers(runner, leftovers);
  return leftovers;
}

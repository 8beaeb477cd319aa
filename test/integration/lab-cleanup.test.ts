// However the lab ends, nothing of it is left: a signal (SIGHUP when the
// terminal goes, SIGINT after its output pipe has closed) makes it clean up
// itself; what a SIGKILL leaves is removed by `dispatcher lab --clean` (and by
// the next lab, and the test suite's set-up), never what a live run owns.

import { afterAll, expect, jest, test } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { DISPATCHER_BIN, waitFor } from '../../src/lab/harness.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { Lab, requireRoot } from '../helpers/lab.js';

jest.setTimeout(180_000);

const runner = new ExecaRunner();

interface HeldLab {
  readonly child: ChildProcess;
  /** The lab's run prefix, as it printed it. */
  readonly prefix: string;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

/** `dispatcher lab --hold`, run to the point where it holds (its demo done); IPv4 only unless `dualStack` (quicker, where IPv6 adds nothing to what is tested). */
async function holdLab(dualStack = false): Promise<HeldLab> {
  const child = spawn(process.execPath, [DISPATCHER_BIN, 'lab', '--hold', '--clients', '1', ...(dualStack ? [] : ['--ipv4-only'])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  let ended = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      ended = true;
      resolve(code);
    }),
  );
  await waitFor('the lab to hold', 120_000, async () => {
    if (ended) throw new Error(`the lab ended before holding:\n${text}`);
    return text.includes('press Ctrl-C to stop') ? true : null;
  }).catch((error: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${error.message}\n${text}`);
  });
  const prefix = /namespaces (dsplab-[0-9]+-[0-9]+-)\*/.exec(text)?.[1];
  if (!prefix) throw new Error(`the lab did not say its namespaces:\n${text}`);
  return { child, prefix, output: () => text, exited };
}

async function namespacesOf(prefix: string): Promise<string[]> {
  return (await runner.run(['ip', 'netns', 'list'])).stdout
    .split('\n')
    .map((line) => line.split(' ')[0] ?? '')
    .filter((ns) => ns.startsWith(prefix));
}

async function tempDirsOf(prefix: string): Promise<string[]> {
  return (await readdir(tmpdir())).filter((name) => name.startsWith(prefix));
}

/** The lab's exit code, once it has ended (at most a minute). */
async function ended(lab: HeldLab): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the lab did not end:\n${lab.output()}`)), 60_000);
  });
  try {
    return await Promise.race([lab.exited, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether a process exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

// Whatever a failed test left of its held lab.
const started: HeldLab[] = [];
afterAll(async () => {
  for (const lab of started) if (lab.child.exitCode === null) lab.child.kill('SIGTERM');
  await Promise.all(started.map((lab) => ended(lab).catch(() => null)));
});

test('a held lab sent SIGHUP (the terminal went away) cleans up and exits 129', async () => {
  requireRoot();
  const lab = await holdLab();
  started.push(lab);
  expect((await namespacesOf(lab.prefix)).length).toBeGreaterThan(5);
  expect(await tempDirsOf(lab.prefix)).toHaveLength(1);
  lab.child.kill('SIGHUP');
  expect(await ended(lab)).toBe(129);
  expect(lab.output()).toContain('done: nothing of the lab is left.');
  expect(await namespacesOf(lab.prefix)).toEqual([]);
  expect(await tempDirsOf(lab.prefix)).toEqual([]);
});

test('a held lab whose output pipe has closed, then sent SIGINT, still cleans up (EPIPE stops its printing, not its cleaning)', async () => {
  requireRoot();
  const lab = await holdLab();
  started.push(lab);
  expect((await namespacesOf(lab.prefix)).length).toBeGreaterThan(5);
  // As `lab --hold | tee log` when Ctrl-C ends tee first: nobody reads its output any more.
  lab.child.stdout?.destroy();
  lab.child.stderr?.destroy();
  lab.child.kill('SIGINT');
  expect(await ended(lab)).toBe(130);
  expect(await namespacesOf(lab.prefix)).toEqual([]);
  expect(await tempDirsOf(lab.prefix)).toEqual([]);
});

test('what a lab killed with SIGKILL leaves, `dispatcher lab --clean` removes (its processes too) and says so; a live lab is untouched', async () => {
  requireRoot();
  const live = await Lab.create({ clients: 1, tag: 'live' });
  try {
    await live.start();
    const liveBefore = await namespacesOf(live.topo.prefix);
    // Dual-stack: its radvd processes and their configs are among what it leaves.
    const lab = await holdLab(true);
    started.push(lab);
    const gw = `${lab.prefix}gw`;
    const inside = (await runner.run(['ip', 'netns', 'pids', gw])).stdout.split('\n').filter(Boolean).map(Number);
    expect(inside.length).toBeGreaterThan(1); // its dispatcher daemon and the LAN's radvd, at least
    lab.child.kill('SIGKILL');
    await ended(lab);
    // SIGKILL gives no chance to clean up: all of it is still there.
    const left = await namespacesOf(lab.prefix);
    expect(left.length).toBeGreaterThan(5);
    // Its files (config, state, socket) and its radvd configs.
    expect(await tempDirsOf(lab.prefix)).toHaveLength(2);
    expect(inside.every(alive)).toBe(true);

    const cleaned = await runner.run([process.execPath, DISPATCHER_BIN, 'lab', '--clean']);
    for (const ns of left) expect(cleaned.stdout).toContain(`removed namespace ${ns}, left by process ${lab.child.pid}, which is gone`);
    expect(cleaned.stdout).toMatch(new RegExp(`removed directory \\S*/${lab.prefix}\\S+, left by process ${lab.child.pid}`));
    expect(cleaned.stdout).not.toContain(live.topo.prefix);
    expect(await namespacesOf(lab.prefix)).toEqual([]);
    expect(await tempDirsOf(lab.prefix)).toEqual([]);
    await waitFor('the killed lab’s processes to be gone', 5000, async () => (inside.some(alive) ? null : true));
    // The live lab kept everything, and its daemon still answers.
    expect(await namespacesOf(live.topo.prefix)).toEqual(liveBefore);
    expect((await live.status()).running).toBe(true);
    // Nothing is left to clean.
    expect((await runner.run([process.execPath, DISPATCHER_BIN, 'lab', '--clean'])).stdout).not.toContain('removed');
  } finally {
    await live.destroy();
  }
});

test("the test suite's set-up removes what a test run killed mid-way left, not a live run's", async () => {
  requireRoot();
  // A stand-in for a test run: it names a namespace and a directory for itself, as Lab does, then is killed.
  const script = `
    import(${JSON.stringify(new URL('../../dist/core/run-names.js', import.meta.url).href)}).then(({ runName }) => {
      const prefix = runName('t', process.pid, 1);
      require('node:child_process').execFileSync('ip', ['netns', 'add', prefix + 'x']);
      require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), prefix));
      console.log(prefix);
      setInterval(() => {}, 1000);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let prefix = '';
  child.stdout?.on('data', (chunk: Buffer) => (prefix += chunk.toString().trim()));
  await waitFor('the stand-in to make its namespace', 10_000, async () => (prefix ? true : null));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  expect(await namespacesOf(prefix)).toEqual([`${prefix}x`]);
  const live = await Lab.create({ clients: 1, tag: 'live' });
  try {
    const liveBefore = await namespacesOf(live.topo.prefix);
    const setUpModule = new URL('../global-setup.mjs', import.meta.url).href;
    const { default: setUp } = (await import(setUpModule)) as { default: () => Promise<void> };
    await setUp();
    expect(await namespacesOf(prefix)).toEqual([]);
    expect(await tempDirsOf(prefix)).toEqual([]);
    expect(await namespacesOf(live.topo.prefix)).toEqual(liveBefore);
    expect(await tempDirsOf(live.topo.prefix)).toHaveLength(1);
  } finally {
    await live.destroy();
  }
});

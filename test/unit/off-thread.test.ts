// A command whose output is read on a worker thread (Runner.spawn with
// offThread, src/system/off-thread.ts): its pipe keeps draining while the
// main thread is busy, which is what keeps `ip monitor neigh` from losing a
// burst's events (the namespace proof is in many-clients). Real processes,
// no namespace: seq writes far more than a pipe holds.

import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { ExecaRunner, type Process } from '../../src/system/exec.js';

/** seq's output: 400,000 lines, about 2.7 MB, some forty times what a pipe holds. */
const LINES = 400_000;

/** The process's state letter from /proc (R, S, Z...), or 'gone' once it is reaped. */
function state(pid: number): string {
  try {
    return /^\d+ \(.*\) (\S)/.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';
  } catch {
    return 'gone';
  }
}

/** Starts seq, waits for its first line, then keeps this thread busy for `ms` and says what seq was doing at the end. */
async function busyWhileSeqWrites(offThread: boolean, ms: number): Promise<{ state: string; lines: number; last: string; process: Process }> {
  let lines = 0;
  let last = '';
  let first: () => void = () => undefined;
  const started = new Promise<void>((resolve) => {
    first = resolve;
  });
  const process = new ExecaRunner().spawn(['seq', '1', String(LINES)], {
    offThread,
    onLine: (line) => {
      lines += 1;
      last = line;
      first();
    },
  });
  await started;
  const pid = process.pid;
  if (pid === undefined) throw new Error('seq has no pid');
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // Busy, as a run planning 50,000 clients is: no callback of this thread runs meanwhile.
  }
  return { state: state(pid), lines, last, process };
}

describe('a command read off the main thread', () => {
  test('its output keeps draining while the main thread is busy; read on the main thread, the command blocks on its full pipe', async () => {
    const off = await busyWhileSeqWrites(true, 1500);
    // Done writing: exited (a zombie until reaped) or reaped already.
    expect(['Z', 'gone']).toContain(off.state);
    expect(await off.process.ended).toBe(0);
    const on = await busyWhileSeqWrites(false, 1500);
    // The contrast that makes the first check mean something: read here, seq waits on the pipe (S) all along.
    expect(on.state).toBe('S');
    expect(await on.process.ended).toBe(0);
  }, 30_000);

  test('every line arrives, in order, and the exit code once they have', async () => {
    const seen: number[] = [];
    const process = new ExecaRunner().spawn(['seq', '1', String(LINES)], { offThread: true, onLine: (line) => seen.push(Number(line)) });
    expect(await process.ended).toBe(0);
    expect(seen.length).toBe(LINES);
    expect(seen.every((n, i) => n === i + 1)).toBe(true);
  });

  test('stderr lines, stdin, a failing exit code and stop', async () => {
    const errors: string[] = [];
    const failing = new ExecaRunner().spawn(['ls', '/nonexistent-dispatcher-test'], { offThread: true, onLine: () => undefined, onErrorLine: (line) => errors.push(line) });
    expect(await failing.ended).toBe(2);
    expect(errors.join('\n')).toMatch(/nonexistent-dispatcher-test/);

    const echoed: string[] = [];
    const cat = new ExecaRunner().spawn(['cat'], { offThread: true, onLine: (line) => echoed.push(line) });
    cat.write('one\ntwo\n');
    const deadline = Date.now() + 10_000;
    while (echoed.length < 2 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(echoed).toEqual(['one', 'two']);
    cat.stop();
    expect(await cat.ended).toBeNull();
  });

  test('a command that cannot start ends with null, as one killed does', async () => {
    const missing = new ExecaRunner().spawn(['dispatcher-no-such-program'], { offThread: true, onLine: () => undefined });
    expect(await missing.ended).toBeNull();
  });
});

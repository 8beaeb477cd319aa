// A command's output read when asked (Runner.spawn with readWhenAsked,
// src/system/polled-output.ts): the probes' ping prints into a FIFO that the
// health monitor reads on its tick, so a line does not wake the daemon. Real
// processes, no namespace.

import { describe, expect, test } from '@jest/globals';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { ExecaRunner } from '../../src/system/exec.js';

const wait = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const fifoDirs = (): string[] => [tmpdir(), '/dev/shm'].flatMap((dir) => readdirSync(dir).filter((name) => name.startsWith('dispatcher-output-')));

/** node printing `a`, then `b` without its newline, then (after `pauseMs`) the rest of `b` and `c`. */
const PRINTER = (pauseMs: number): string[] => [process.execPath, '-e', `process.stdout.write('a\\nb'); setTimeout(() => process.stdout.write('-end\\nc\\n'), ${pauseMs});`];

describe('output read when asked', () => {
  test('lines wait for drain; a line split between reads is joined; what is left when the command ends arrives then', async () => {
    const lines: string[] = [];
    const before = fifoDirs();
    const process = new ExecaRunner().spawn(PRINTER(1500), { readWhenAsked: true, onLine: (line) => lines.push(line) });
    // The FIFO's name is gone as soon as both ends are open.
    expect(fifoDirs()).toEqual(before);
    await wait(800);
    // Printed, but nothing read yet.
    expect(lines).toEqual([]);
    process.drain?.();
    expect(lines).toEqual(['a']);
    await expect(process.ended).resolves.toBe(0);
    expect(lines).toEqual(['a', 'b-end', 'c']);
    // Drained after the end: nothing more, and no error.
    process.drain?.();
    expect(lines).toEqual(['a', 'b-end', 'c']);
  }, 20_000);

  test('stop ends it (null: by a signal); a command that cannot start ends with null too', async () => {
    const runner = new ExecaRunner();
    const sleeper = runner.spawn(['sleep', '30'], { readWhenAsked: true, onLine: () => undefined });
    sleeper.stop('SIGKILL');
    await expect(sleeper.ended).resolves.toBeNull();
    const missing = runner.spawn(['/nonexistent/dispatcher-no-such-command'], { readWhenAsked: true, onLine: () => undefined });
    await expect(missing.ended).resolves.toBeNull();
    missing.drain?.();
  }, 20_000);
});

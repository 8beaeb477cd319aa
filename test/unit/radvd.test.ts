// The radvd adapter (src/system/radvd.ts) against a stand-in: a real process
// whose command line names the config (as radvd's does) and which counts the
// SIGHUPs it gets. What is checked: started once and adopted by its pid file,
// reloaded only on a change, stopped with its files, and a failed start held
// back rather than retried at every run. The namespace test
// (test/integration/ipv6-prefix.test.ts) runs the real radvd.

import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Announcement } from '../../src/model/plan.js';
import type { RunOptions, RunResult, Runner } from '../../src/system/exec.js';
import { Radvd } from '../../src/system/radvd.js';

const ANNOUNCEMENT: Announcement = { interface: 'lan0', prefixes: [{ uplink: 'isp1', prefix: '2001:db8:1:100::/64', preferred: true }] };

/** A runner whose `radvd --config C --pidfile P …` starts the stand-in and writes its pid to P; `fail` makes it exit 1 instead. */
class StandInRunner implements Runner {
  readonly started: ChildProcess[] = [];
  fail = false;
  constructor(private readonly hups: string) {}
  async run(argv: readonly string[], _options?: RunOptions): Promise<RunResult> {
    if (argv[0] !== 'radvd') throw new Error(`unexpected ${argv.join(' ')}`);
    if (this.fail) throw new Error('radvd failed (exit 1): cannot parse config');
    const conf = argv[argv.indexOf('--config') + 1] as string;
    const pidFile = argv[argv.indexOf('--pidfile') + 1] as string;
    // Like radvd, it writes its pid file itself once it is ready (its SIGHUP handler in place).
    const fs = "require('fs')";
    const script = `process.on('SIGHUP', () => ${fs}.appendFileSync(${JSON.stringify(this.hups)}, 'hup\\n')); ${fs}.writeFileSync(${JSON.stringify(pidFile)}, process.pid + '\\n'); setInterval(() => {}, 1000);`;
    this.started.push(spawn(process.execPath, ['-e', script, '--', '--config', conf], { stdio: 'ignore' }));
    return { stdout: '', stderr: '', exitCode: 0 };
  }
  spawn(): never {
    throw new Error('not used');
  }
}

describe('the radvd adapter', () => {
  let dir: string;
  let runner: StandInRunner;
  const hups = async (): Promise<number> => (await readFile(join(dir, 'hups'), 'utf8').catch(() => '')).split('\n').filter(Boolean).length;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-radvd-'));
    runner = new StandInRunner(join(dir, 'hups'));
  });

  afterEach(async () => {
    for (const child of runner.started) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  test('started once; the same config changes nothing; a change is one SIGHUP; a second adapter (a restarted daemon) adopts the same process; stopped with its files', async () => {
    const radvd = new Radvd(runner, dir);
    expect(await radvd.sync(ANNOUNCEMENT)).toBe('started');
    expect(await readFile(join(dir, 'radvd.conf'), 'utf8')).toContain('prefix 2001:db8:1:100::/64');
    expect(await radvd.sync(ANNOUNCEMENT)).toBe('unchanged');
    const deprecated = { ...ANNOUNCEMENT, prefixes: [{ ...ANNOUNCEMENT.prefixes[0], preferred: false }] } as Announcement;
    expect(await radvd.sync(deprecated)).toBe('reloaded');
    expect(await readFile(join(dir, 'radvd.conf'), 'utf8')).toContain('AdvPreferredLifetime 0;');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(await hups()).toBe(1);
    const pid = await radvd.running();
    expect(pid).toBe(runner.started[0]?.pid);
    expect(await new Radvd(runner, dir).sync(deprecated)).toBe('unchanged');
    expect(runner.started).toHaveLength(1);
    expect(await new Radvd(runner, dir).sync(null)).toBe('stopped');
    expect(existsSync(join(dir, 'radvd.conf'))).toBe(false);
    expect(existsSync(join(dir, 'radvd.pid'))).toBe(false);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    expect(await radvd.sync(null)).toBe('unchanged');
  });

  test('a pid file naming another program is not ours: a radvd is started, nothing is signalled', async () => {
    await writeFile(join(dir, 'radvd.pid'), `${process.pid}\n`);
    const radvd = new Radvd(runner, dir);
    expect(await radvd.running()).toBeNull();
    expect(await radvd.sync(ANNOUNCEMENT)).toBe('started');
    expect(await radvd.running()).toBe(runner.started[0]?.pid);
  });

  test('a failed start is said, and held back for a while instead of being tried (and waited for) at every run', async () => {
    runner.fail = true;
    const radvd = new Radvd(runner, dir);
    await expect(radvd.sync(ANNOUNCEMENT)).rejects.toThrow('cannot parse config');
    runner.fail = false;
    await expect(radvd.sync(ANNOUNCEMENT)).rejects.toThrow(/cannot parse config \(tried again within 30 s\)/);
    expect(runner.started).toHaveLength(0);
  });
});

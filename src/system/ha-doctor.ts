// `dispatcher doctor` on one gateway of a pair, the gathering part
// (core/ha-doctor.ts judges): the files the last `dispatcher ha render`
// wrote, read and rendered again in memory by the same renderers; whether
// a keepalived runs with them (/proc); what conntrackd answers through the
// rendered config's socket; the key file's mode and length (never its
// content beyond that).

import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { HaDoctorFacts } from '../core/ha-doctor.js';
import type { Config } from '../model/config.js';
import type { Link } from '../model/kernel.js';
import { conntrackdComplaint, parseConntrackdStats } from '../parse/conntrackd-stats.js';
import { haRuntimeDir } from '../render/conntrackd-conf.js';
import { haFiles } from '../render/ha-files.js';
import type { PppHookPaths } from '../render/ppp-hook.js';
import type { Status } from '../schema/control.js';
import { askConntrackdStats, recordedConntrackdConf } from './conntrackd.js';
import { type Runner, whatItSaid } from './exec.js';

/** What the CLI knows beside the config: the paths the notify script runs, and the running daemon's pair status. */
export interface HaDoctorInput {
  /** What `ha render` would put into the notify script when run as this doctor is (cli/commands/ha.ts passes the same). */
  readonly notify: PppHookPaths;
  readonly daemon: Status['ha'] | null;
  /** Whether conntrackd is installed (doctor's tool check): it is asked only then. */
  readonly conntrackdInstalled: boolean;
}

async function readFacts(path: string): Promise<{ have: string | null; mode: number | null }> {
  const [have, mode] = await Promise.all([
    readFile(path, 'utf8').catch(() => null),
    stat(path).then(
      (s) => s.mode & 0o7777,
      () => null,
    ),
  ]);
  return { have, mode };
}

/** Whether a keepalived process runs with `conf` (its -f/--use-file), whatever pid files it was given: /proc/PID/cmdline. */
export async function keepalivedRunsWith(conf: string, proc = '/proc'): Promise<boolean> {
  const pids = (await readdir(proc).catch(() => [] as string[])).filter((name) => /^\d+$/.test(name));
  for (const pid of pids) {
    const argv = (await readFile(join(proc, pid, 'cmdline'), 'utf8').catch(() => '')).split('\0');
    if (basename(argv[0] ?? '') !== 'keepalived') continue;
    if (argv.some((arg, i) => arg === conf && ['-f', '--use-file'].includes(argv[i - 1] ?? '')) || argv.includes(`--use-file=${conf}`)) return true;
  }
  return false;
}

async function keyFacts(path: string): Promise<HaDoctorFacts['key']> {
  try {
    const mode = (await stat(path)).mode & 0o7777;
    // As the daemon reads it (readHaKey): the first line, trimmed; only its length is kept.
    const length = ((await readFile(path, 'utf8')).split('\n')[0] ?? '').trim().length;
    return { mode, length };
  } catch (error) {
    return { error: (error as NodeJS.ErrnoException).code ?? (error as Error).message };
  }
}

async function conntrackdAnswer(runner: Runner, conf: string): Promise<HaDoctorFacts['conntrackd']> {
  try {
    const caches = parseConntrackdStats(await askConntrackdStats(runner, conf)).caches;
    return { answered: true, internal: caches?.internal ?? null, external: caches?.external ?? null };
  } catch (error) {
    return { answered: false, said: conntrackdComplaint(whatItSaid(error)) || 'no answer' };
  }
}

/** `links`: the kernel's links as doctor read them (the sync link's address goes into conntrackd.conf). Null alone. */
export async function gatherHaFacts(runner: Runner, config: Config, links: readonly Link[], input: HaDoctorInput, proc = '/proc'): Promise<HaDoctorFacts | null> {
  const ha = config.ha;
  if (!ha) return null;
  const conf = await recordedConntrackdConf(config.state);
  const dir = conf === null ? null : dirname(conf);
  const own = links.find((l) => l.name === ha.interface)?.addresses[0]?.local ?? null;
  const files = dir === null ? [] : await Promise.all(haFiles(config, dir, own, input.notify).map(async (file) => ({ name: file.name, path: file.path, want: file.text, ...(await readFacts(file.path)) })));
  return {
    configPath: input.notify.config,
    dir,
    files,
    runtime: haRuntimeDir(config.state),
    keepalivedRunning: dir === null ? null : await keepalivedRunsWith(join(dir, 'keepalived.conf'), proc),
    conntrackd: conf !== null && input.conntrackdInstalled ? await conntrackdAnswer(runner, conf) : null,
    key: await keyFacts(ha.keyFile),
    daemon: input.daemon,
  };
}

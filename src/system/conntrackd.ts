// conntrackd's client commands for a takeover (its primary-backup.sh): the
// daemon asks the running conntrackd through the UNIX socket named in the
// config `dispatcher ha render` wrote, whose path that command records under
// the state directory (conntrackd's client mode reads the socket from it).
// The same socket answers `-s`, its statistics: whether conntrackd runs at
// all, for status, the metrics and doctor.

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { haRuntimeDir } from '../render/conntrackd-conf.js';
import { type Runner, whatItSaid } from './exec.js';

/** The file under the state directory that names the conntrackd.conf `ha render` wrote last. */
const POINTER = 'conntrackd.conf.path';
/** What a gateway that never ran `ha render` is told. */
const NOT_RENDERED = 'no conntrackd.conf rendered for this gateway: run `dispatcher ha render --dir DIR` (and conntrackd -C DIR/conntrackd.conf)';

export async function recordConntrackdConf(state: string, conf: string): Promise<void> {
  await writeFile(join(haRuntimeDir(state), POINTER), `${conf}\n`, { mode: 0o644 });
}

/** The conntrackd.conf `ha render` wrote last (its directory holds the keepalived.conf and notify script of the same render); null when it never ran. */
export async function recordedConntrackdConf(state: string): Promise<string | null> {
  const text = await readFile(join(haRuntimeDir(state), POINTER), 'utf8').catch(() => null);
  return text === null || text.trim() === '' ? null : text.trim();
}

async function conntrackdConf(state: string): Promise<string> {
  const conf = await recordedConntrackdConf(state);
  if (conf === null) throw new Error(NOT_RENDERED);
  return conf;
}

/** conntrackd answers its client commands at once; one that takes longer than this is as good as not answering. */
const STATS_TIMEOUT_MS = 5_000;

/**
 * Asks the running conntrackd for its statistics (`-s`, through the UNIX
 * socket of `conf`): its text, or a CommandError (not running: "can't
 * connect"). Cheap for conntrackd: it prints counters it keeps anyway.
 */
export async function askConntrackdStats(runner: Runner, conf: string): Promise<string> {
  return (await runner.run(['conntrackd', '-C', conf, '-s'], { timeoutMs: STATS_TIMEOUT_MS })).stdout;
}

/** The same, for the conntrackd.conf this gateway's `ha render` recorded (an Error naming the command to run when it never ran). */
export async function conntrackdStats(runner: Runner, state: string): Promise<string> {
  return askConntrackdStats(runner, await conntrackdConf(state));
}

/**
 * What each role asks of conntrackd, in conntrack-tools' primary-backup.sh
 * order, split at the run that raises or lifts the fence: only the commit
 * must come before a new master's fence goes; its caches are rebuilt after.
 */
export const CONNTRACKD_STEPS = {
  // Commit the master's connections into the kernel (synchronous); then start afresh from the kernel and send them all to the peer.
  master: { beforeRun: ['-c'], afterRun: ['-f', '-R', '-B'] },
  // Let the connections this gateway no longer carries expire (PurgeTimeout), then ask the master for all of its.
  backup: { beforeRun: [], afterRun: ['-t', '-n'] },
  fault: { beforeRun: [], afterRun: ['-t'] },
} as const;

/** Runs each step; a failing one is reported and the rest still run (a takeover goes on without conntrackd). Returns what each answered. */
export async function conntrackdSteps(runner: Runner, state: string, steps: readonly string[]): Promise<{ step: string; ok: boolean; said: string }[]> {
  const conf = await conntrackdConf(state);
  const done: { step: string; ok: boolean; said: string }[] = [];
  for (const step of steps) {
    try {
      const result = await runner.run(['conntrackd', '-C', conf, step], { timeoutMs: 10_000 });
      done.push({ step, ok: true, said: result.stdout.trim() });
    } catch (error) {
      done.push({ step, ok: false, said: whatItSaid(error) });
    }
  }
  return done;
}

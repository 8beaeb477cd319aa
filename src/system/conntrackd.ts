// conntrackd's client commands for a takeover (its primary-backup.sh): the
// daemon asks the running conntrackd through the UNIX socket named in the
// config `dispatcher ha render` wrote, whose path that command records under
// the state directory (conntrackd's client mode reads the socket from it).

import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { haRuntimeDir } from '../render/conntrackd-conf.js';
import { type Runner, whatItSaid } from './exec.js';

/** The file under the state directory that names the conntrackd.conf `ha render` wrote last. */
const POINTER = 'conntrackd.conf.path';

export async function recordConntrackdConf(state: string, conf: string): Promise<void> {
  await writeFile(join(haRuntimeDir(state), POINTER), `${conf}\n`, { mode: 0o644 });
}

async function conntrackdConf(state: string): Promise<string> {
  const text = await readFile(join(haRuntimeDir(state), POINTER), 'utf8').catch(() => null);
  if (text === null) throw new Error('no conntrackd.conf rendered for this gateway: run `dispatcher ha render --dir DIR` (and conntrackd -C DIR/conntrackd.conf)');
  return text.trim();
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

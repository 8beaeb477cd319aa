// The role keepalived gave last, as its notify script wrote it (render/
// ha-notify.ts) before it asked the daemon, and the role this daemon last
// took. keepalived forks the script for every change and waits for none, so
// the calls may reach the daemon out of order, or while it is down; the file
// has the newest. And keepalived says a role only when it changes: a
// dispatcher restarted under a keepalived that has held its role all along is
// told nothing, and takes its role from here.

import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { haRuntimeDir } from '../render/conntrackd-conf.js';
import { ROLE_FILE, VRRP_PID_FILE } from '../render/ha-notify.js';
import { startedSinceBoot } from './process-start.js';

export type KeptRole = 'master' | 'backup' | 'fault';

/** Under the state directory's ha/: the role this daemon last took (its takeover's steps done). */
const TAKEN_FILE = 'taken';

export interface RecordedRole {
  readonly role: KeptRole;
  /** When the notify script wrote it, seconds since boot. */
  readonly upAt: number;
}

function keptRole(text: string | undefined): KeptRole | null {
  return text === 'master' || text === 'backup' || text === 'fault' ? text : null;
}

/** The role the notify script wrote last, or null (none yet, or not one of ours). */
export async function recordedRole(state: string): Promise<RecordedRole | null> {
  const file = await open(join(haRuntimeDir(state), ROLE_FILE)).catch(() => null);
  if (!file) return null;
  try {
    const [word, up] = (await file.readFile('utf8')).trim().split(' ');
    const role = keptRole(word);
    const upAt = Number(up);
    return role && Number.isFinite(upAt) ? { role, upAt } : null;
  } finally {
    await file.close();
  }
}

/**
 * The recorded role, when the keepalived that gave it still runs: its VRRP
 * process (the pid file `ha render`'s command line names) started before the
 * role was written, both counted from boot. A keepalived that was killed, or
 * started again since, gives a stale file no weight: it says its role anew.
 */
export async function roleStillHeld(state: string): Promise<RecordedRole | null> {
  const recorded = await recordedRole(state);
  if (!recorded) return null;
  const pid = Number((await readFile(join(haRuntimeDir(state), VRRP_PID_FILE), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const started = await startedSinceBoot(pid);
  return started !== null && started <= recorded.upAt ? recorded : null;
}

/** The role this daemon took last (its takeover done), or null. */
export async function takenRole(state: string): Promise<KeptRole | null> {
  return keptRole((await readFile(join(haRuntimeDir(state), TAKEN_FILE), 'utf8').catch(() => '')).trim());
}

export async function recordTaken(state: string, role: KeptRole): Promise<void> {
  await writeFile(join(haRuntimeDir(state), TAKEN_FILE), `${role}\n`);
}

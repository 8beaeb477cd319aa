// The role keepalived gave last, as its notify script wrote it (render/
// ha-notify.ts) before it asked the daemon. keepalived forks the script for
// every change and waits for none, so the calls may reach the daemon out of
// order, or while it is down; the file has the newest. And keepalived says a
// role only when it changes: a dispatcher restarted under a keepalived that
// has been master all along is told nothing, and takes its role from here.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { haRuntimeDir } from '../render/conntrackd-conf.js';
import { ROLE_FILE, VRRP_PID_FILE } from '../render/ha-notify.js';
import { startedAt } from './process-start.js';

export type KeptRole = 'master' | 'backup' | 'fault';

export interface RecordedRole {
  readonly role: KeptRole;
  /** When the notify script wrote it (epoch ms). */
  readonly at: number;
}

/** The role the notify script wrote last, or null (none yet, or not one of ours). */
export async function recordedRole(state: string): Promise<RecordedRole | null> {
  const path = join(haRuntimeDir(state), ROLE_FILE);
  const [text, info] = await Promise.all([readFile(path, 'utf8').catch(() => null), stat(path).catch(() => null)]);
  const role = text?.trim();
  if (!info || (role !== 'master' && role !== 'backup' && role !== 'fault')) return null;
  return { role, at: info.mtimeMs };
}

/**
 * The recorded role, when the keepalived that gave it still runs: its VRRP
 * process (the pid file `ha render`'s command line names) started before the
 * role was written. A keepalived that was killed, or started again since,
 * gives a stale file no weight: it says its role anew.
 */
export async function roleStillHeld(state: string): Promise<RecordedRole | null> {
  const recorded = await recordedRole(state);
  if (!recorded) return null;
  const pid = Number((await readFile(join(haRuntimeDir(state), VRRP_PID_FILE), 'utf8').catch(() => '')).trim());
  if (!Number.isInteger(pid) || pid <= 0) return null;
  const started = await startedAt(pid);
  return started !== null && started <= recorded.at ? recorded : null;
}

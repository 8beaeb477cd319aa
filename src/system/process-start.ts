// When a process started, from /proc: to tell a process that has run since
// some moment from one that came (or came back, under a reused pid) after it.

import { readFile } from 'node:fs/promises';

/** /proc reports process start times in USER_HZ, which is 100 on Linux. */
const USER_HZ = 100;

/** When a process started, in seconds since boot (to 10 ms; unmoved by clock steps), or null when there is no such process. */
export async function startedSinceBoot(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Field 22, counted after the command name, which may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  return Number.isFinite(ticks) ? ticks / USER_HZ : null;
}

/** When a process started (epoch ms, to 10 ms), or null when there is no such process. */
export async function startedAt(pid: number): Promise<number | null> {
  const sinceBoot = await startedSinceBoot(pid);
  const btime = /^btime ([0-9]+)$/m.exec(await readFile('/proc/stat', 'utf8'));
  if (sinceBoot === null || !btime) return null;
  return Number(btime[1]) * 1000 + sinceBoot * 1000;
}

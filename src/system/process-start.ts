// When a process started, from /proc: to tell a process that has run since
// some moment from one that came (or came back, under a reused pid) after it.

import { readFile } from 'node:fs/promises';

/** /proc reports process start times in USER_HZ, which is 100 on Linux. */
const USER_HZ = 100;

/** When a process started (epoch ms, to 10 ms), or null when there is no such process. */
export async function startedAt(pid: number): Promise<number | null> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => null);
  if (stat === null) return null;
  // Field 22, counted after the command name, which may hold spaces and parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[19]);
  const btime = /^btime ([0-9]+)$/m.exec(await readFile('/proc/stat', 'utf8'));
  if (!btime || !Number.isFinite(ticks)) return null;
  return Number(btime[1]) * 1000 + (ticks * 1000) / USER_HZ;
}

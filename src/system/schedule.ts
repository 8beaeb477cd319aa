// The scan schedule: a cron expression (config `scan.schedule`, seconds
// allowed) that asks for a full resync. A timer, so it lives with the other
// effects; the engine only says what to do on each tick.

import { CronJob } from 'cron';

export interface Schedule {
  stop(): void;
}

export function startSchedule(expression: string, onTick: () => void): Schedule {
  const job = CronJob.from({ cronTime: expression, onTick, start: true });
  return { stop: () => void job.stop() };
}

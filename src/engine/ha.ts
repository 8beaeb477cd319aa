// One gateway of a pair: the role keepalived gives it, through the notify
// script (`dispatcher ha master|backup|fault`). keepalived has already moved
// the addresses when it says so and does not wait for us, so the order here
// is what keeps moved connections alive (keepalived issues #2254, #2414):
//   master: conntrackd commits the connections the master synced to us, then
//           the run that lifts the fence (model/plan.ts FenceIntent), then
//           conntrackd rebuilds its caches from the kernel for the peer;
//   backup, fault: the run that raises the fence, then conntrackd lets ours
//           expire and (backup) asks the new master for all of its.
// Roles are taken one at a time, in the order keepalived gave them.

import type { HaRole } from '../core/netfilter.js';
import type { Timeline } from '../core/timeline.js';
import type { ResultOf } from '../schema/control.js';
import { CONNTRACKD_STEPS, conntrackdSteps } from '../system/conntrackd.js';
import type { Runner } from '../system/exec.js';
import type { Logger } from '../system/logger.js';
import type { HaSync } from './ha-sync.js';
import type { Reconciler } from './reconciler.js';

export interface HaDeps {
  readonly runner: Runner;
  readonly log: Logger;
  readonly reconciler: Reconciler;
  readonly timeline: Timeline;
  /** The state channel: a master sends, any other role listens. */
  readonly sync: HaSync | null;
}

type Role = Exclude<HaRole, 'unknown'>;

export class HaRoles {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: HaDeps) {}

  become(role: Role): Promise<ResultOf<'ha'>> {
    const taken = this.queue.then(() => this.take(role));
    this.queue = taken.catch(() => undefined);
    return taken;
  }

  private async take(role: Role): Promise<ResultOf<'ha'>> {
    const { reconciler, runner, log, timeline } = this.deps;
    const previous = reconciler.role;
    const state = reconciler.currentConfig.state;
    const steps = async (list: readonly string[]) => (list.length === 0 ? [] : conntrackdSteps(runner, state, list).catch((error: unknown) => [{ step: 'conntrackd', ok: false, said: (error as Error).message }]));
    const before = await steps(CONNTRACKD_STEPS[role].beforeRun);
    const run = await reconciler.setRole(role);
    this.deps.sync?.roleChanged(role);
    const conntrackd = [...before, ...(await steps(CONNTRACKD_STEPS[role].afterRun))];
    const failed = conntrackd.filter((s) => !s.ok);
    if (failed.length > 0) log.error('conntrackd did not do its part of the role change', { role, failed });
    log.info('ha role', { role, previous, fence: role === 'master' ? 'lifted' : 'up', run: run.ok });
    timeline.note('ha', `${previous} → ${role}${failed.length > 0 ? ` (conntrackd failed: ${failed.map((s) => `${s.step} ${s.said}`).join('; ')})` : ''}`);
    return { role, previous, conntrackd, run };
  }
}

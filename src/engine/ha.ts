// One gateway of a pair: the role keepalived gives it, through the notify
// script (`dispatcher ha master|backup|fault`). keepalived has already moved
// the addresses when it says so and does not wait for us, so the order here
// is what keeps moved connections alive (keepalived issues #2254, #2414):
//   master: conntrackd commits the connections the master synced to us (and
//           those of lines whose address stays with the old master are
//           forgotten at once), then the run that lifts the fence (model/plan.ts FenceIntent), then
//           conntrackd rebuilds its caches from the kernel for the peer;
//   backup, fault: the run that raises the fence, then conntrackd lets ours
//           expire and (backup) asks the new master for all of its.
// Lines whose session only the master holds (uplinks[].ha_connect) are
// dialled as a master starts its takeover and hung up by any other role.
// Roles are taken one at a time, in the order keepalived gave them.

import type { HaRole } from '../core/netfilter.js';
import type { Timeline } from '../core/timeline.js';
import type { ResultOf } from '../schema/control.js';
import { connMark, markLayout } from '../core/marks.js';
import { forgetConnections } from '../system/conntrack.js';
import { CONNTRACKD_STEPS, conntrackdSteps } from '../system/conntrackd.js';
import type { Runner } from '../system/exec.js';
import { sessionCommands } from '../system/ha-sessions.js';
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
  /** The role keepalived gave last, as its notify script wrote it (system/ha-role-file.ts); null: none. */
  readonly recorded: () => Promise<Role | null>;
  /** Notes the role taken (its steps done), so a restart knows what it need not do again. */
  readonly taken: (role: Role) => Promise<void>;
}

type Role = Exclude<HaRole, 'unknown'>;

export class HaRoles {
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly deps: HaDeps) {}

  /** keepalived's notify script asks for a role: the newest one it wrote is taken, whatever order its calls came in. */
  become(asked: Role): Promise<ResultOf<'ha'>> {
    return this.serially(async () => this.take((await this.deps.recorded().catch(() => null)) ?? asked));
  }

  /**
   * At start, before the first run: the role a keepalived that still runs
   * gave before this daemon (re)started (it will not say it again), and which
   * this daemon took then (its steps done): only the fence (the first run
   * plans with the role, so a master's never goes up) and the state channel
   * follow it. One given while the daemon was down is taken (become).
   */
  resume(role: Role): void {
    const { reconciler, log, timeline } = this.deps;
    reconciler.startAs(role);
    this.deps.sync?.roleChanged(role);
    log.info('ha role resumed: keepalived gave it before this start and still runs', { role });
    timeline.note('ha', `resumed ${role} (keepalived has held it since before this start)`);
  }

  private serially<T>(work: () => Promise<T>): Promise<T> {
    const done = this.queue.then(work);
    this.queue = done.catch(() => undefined);
    return done;
  }

  private async take(role: Role): Promise<ResultOf<'ha'>> {
    const { reconciler, runner, log, timeline } = this.deps;
    const previous = reconciler.role;
    // Said again (keepalived's calls out of order, an old one late): nothing to take over, only the fence kept as it is.
    if (role === previous) return { role, previous, conntrackd: [], run: await reconciler.setRole(role), sessions: [], forgotten: {} };
    const state = reconciler.currentConfig.state;
    const steps = async (list: readonly string[]) => (list.length === 0 ? [] : conntrackdSteps(runner, state, list).catch((error: unknown) => [{ step: 'conntrackd', ok: false, said: (error as Error).message }]));
    // A new master dials its session lines at once (a dial takes seconds; nothing of the fence waits for it); another role hangs them up once fenced.
    const connecting = role === 'master' ? sessionCommands(runner, reconciler.currentConfig, 'connect') : null;
    const before = await steps(CONNTRACKD_STEPS[role].beforeRun);
    const forgotten = role === 'master' ? await this.forgetUnmoved() : {};
    const run = await reconciler.setRole(role);
    this.deps.sync?.roleChanged(role);
    const conntrackd = [...before, ...(await steps(CONNTRACKD_STEPS[role].afterRun))];
    const sessions = await (connecting ?? sessionCommands(runner, reconciler.currentConfig, 'disconnect'));
    const failed = [
      ...(run.ok ? [] : [`the run that ${role === 'master' ? 'lifts' : 'raises'} the fence: ${run.error ?? 'failed'}`]),
      ...conntrackd.filter((s) => !s.ok).map((s) => `conntrackd ${s.step}: ${s.said}`),
      ...sessions.filter((s) => !s.ok).map((s) => `${s.uplink}: ${s.said}`),
    ];
    if (failed.length > 0) log.error('part of the role change failed', { role, failed });
    log.info('ha role', { role, previous, fence: role === 'master' ? 'lifted' : 'up', run: run.ok, sessions: sessions.map((s) => s.uplink) });
    timeline.note('ha', `${previous} → ${role}${failed.length > 0 ? ` (failed: ${failed.join('; ')})` : ''}`);
    await this.deps.taken(role).catch((error: unknown) => log.warn('could not note the role taken', { error: (error as Error).message }));
    return { role, previous, conntrackd, run, sessions, forgotten };
  }

  /**
   * The connections conntrackd just committed that left by a line whose
   * address did not move with the role (the old master's own lease, its
   * session): translated to an address this gateway does not have, they
   * would hang for as long as they are used. Forgotten, by the line's
   * connection mark, before the fence lifts: their next packet starts afresh.
   */
  private async forgetUnmoved(): Promise<Record<string, number>> {
    const { reconciler, runner, log } = this.deps;
    const config = reconciler.currentConfig;
    const layout = markLayout(config.marks.mask);
    const forgotten: Record<string, number> = {};
    for (const [index, uplink] of config.uplinks.entries()) {
      if (uplink.haAddress) continue;
      forgotten[uplink.name] = await forgetConnections(runner, connMark(layout, index), layout.connMask).catch((error: unknown) => {
        log.error('could not forget the connections of a line whose address stayed with the old master', { uplink: uplink.name, error: (error as Error).message });
        return 0;
      });
    }
    return forgotten;
  }
}

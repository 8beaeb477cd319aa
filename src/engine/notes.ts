// What the timeline is told of health verdicts and of runs, in words an
// operator reads at a glance: a verdict, then where the line's pool went;
// a repair with what was put back; runs that start failing, and that work
// again (once each, not once per retry).

import { lineName, type Transition } from '../core/health.js';
import type { Note } from '../core/timeline.js';
import { carrying } from '../core/uplinks.js';
import type { ClientRecord, UplinkView } from '../model/state.js';
import type { RunReport } from '../schema/control.js';

/** A verdict, and for a whole line's fall or return where its pool goes (the uplinks as they were before it). */
export function noteTransition(note: Note, transition: Transition, uplinks: readonly UplinkView[], clients: ReadonlyMap<string, ClientRecord>): void {
  const { uplink, from, to, reason } = transition;
  const degradedOnly = to === 'degraded' || (from === 'degraded' && to === 'up');
  note(degradedOnly ? 'degraded' : 'verdict', `${lineName(transition)} ${from} → ${to}: ${reason}`, uplink);
  if (transition.family) return;
  let pool = 0;
  for (const record of clients.values()) if (record.uplink === uplink) pool += 1;
  if (to === 'down') {
    const after = carrying(uplinks.map((u) => (u.name === uplink ? { ...u, state: 'down' as const } : u)));
    const by = after.length > 0 ? `now leaves by ${after.map((u) => u.name).join(', ')}` : 'has no line to leave by: none is up';
    note('failover', `${uplink}'s pool (${pool} clients) ${by}`, uplink);
  } else if (from === 'down') {
    note('failback', `${uplink}'s pool (${pool} clients) leaves by ${uplink} again`, uplink);
  }
}

/** Notes repairs, and the turns of runs between failing and working. */
export class RunNotes {
  private failing = false;

  constructor(private readonly note: Note) {}

  reported(report: RunReport): void {
    if (report.ok && report.drift) this.note('repair', `repaired what other software changed of ours: ${report.repaired.join('; ')}`);
    if (!report.ok && !this.failing) this.note('run', `runs are failing (retried with a full resync): ${report.error ?? 'unknown error'}`);
    if (report.ok && this.failing) this.note('run', 'runs work again');
    this.failing = !report.ok;
  }
}

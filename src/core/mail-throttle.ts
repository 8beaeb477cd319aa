// E-mail rate limiting, pure: at most one mail per uplink every `everyMs` (a
// line's IPv6, judged on its own, counts as a line of its own).
// Changes that come sooner are held and sent together once the period is
// over, so the last mail always tells the current state — a line that fell
// and came back inside one period still gets its recovery notice.

import { lineName, type Transition } from './health.js';

export class MailThrottle {
  private readonly lastSent = new Map<string, number>();
  private readonly held = new Map<string, Transition[]>();

  constructor(private readonly everyMs: number) {}

  /** The changes to mail now (this one, alone), or an empty list when it is held. */
  offer(transition: Transition, now: number): Transition[] {
    const line = lineName(transition);
    const last = this.lastSent.get(line);
    if (last === undefined || now - last >= this.everyMs) {
      this.lastSent.set(line, now);
      return [transition];
    }
    this.held.set(line, [...(this.held.get(line) ?? []), transition]);
    return [];
  }

  /** Held changes whose period is over, per uplink; they count as sent now. */
  due(now: number): Transition[][] {
    const batches: Transition[][] = [];
    for (const [uplink, items] of this.held) {
      if (now - (this.lastSent.get(uplink) ?? 0) < this.everyMs) continue;
      batches.push(items);
      this.held.delete(uplink);
      this.lastSent.set(uplink, now);
    }
    return batches;
  }

  /** When the next held batch is due, or null. */
  nextDue(): number | null {
    const times = [...this.held.keys()].map((uplink) => (this.lastSent.get(uplink) ?? 0) + this.everyMs);
    return times.length === 0 ? null : Math.min(...times);
  }
}

/** Subject and body of one mail about one or more changes of one uplink. */
export function describeMail(items: readonly Transition[], hostname: string): { subject: string; text: string } {
  const last = items[items.length - 1] as Transition;
  const state = last.to === 'down' ? 'DOWN' : last.to;
  const subject = items.length === 1 ? `[dispatcher ${hostname}] ${lineName(last)} ${state}: ${last.reason}` : `[dispatcher ${hostname}] ${lineName(last)} ${state} (${items.length} changes)`;
  const lines = items.map((t) => `${new Date(t.at).toISOString()}  ${lineName(t)}: ${t.from} -> ${t.to}  (${t.reason})`);
  return { subject: subject.slice(0, 200), text: `${lines.join('\n')}\n\n${lineName(last)} is ${last.to} now.\n` };
}

// What happened, in order: the daemon's event timeline (verdicts, failovers
// and failbacks, DNS updates, repairs, config reloads and refusals, operator
// actions). A bounded ring: the newest `capacity` events are kept in memory
// for the web page and `dispatcher events`, the oldest dropped; each event
// has a sequence number, so a reader asks for what came after the last one
// it saw and never gets one twice or misses one still kept (`started` tells
// one daemon's numbers from the next one's). Listeners are called at once,
// in the noter's turn: they must be quick and must not throw.

export const EVENT_KINDS = ['start', 'verdict', 'failover', 'failback', 'degraded', 'ddns', 'repair', 'reload', 'refused', 'run', 'operator', 'ha'] as const;
export type EventKind = (typeof EVENT_KINDS)[number];

export interface TimelineEvent {
  /** 1, 2, 3 … in the order the daemon saw them (restarts begin again at 1). */
  readonly seq: number;
  /** ISO time. */
  readonly at: string;
  readonly kind: EventKind;
  /** The line it is about, if one. */
  readonly uplink: string | null;
  readonly text: string;
}

/** How a part of the daemon tells the timeline something happened. */
export type Note = (kind: EventKind, text: string, uplink?: string) => void;

export class Timeline {
  private readonly ring: TimelineEvent[] = [];
  private seq = 0;
  private readonly listeners = new Set<(event: TimelineEvent) => void>();
  /** When this timeline began (the daemon's start): numbers are only comparable within one. */
  readonly started: string;

  constructor(
    private readonly capacity: number,
    private readonly now: () => number,
  ) {
    this.started = new Date(now()).toISOString();
  }

  readonly note: Note = (kind, text, uplink) => {
    this.seq += 1;
    const event: TimelineEvent = { seq: this.seq, at: new Date(this.now()).toISOString(), kind, uplink: uplink ?? null, text };
    this.ring.push(event);
    if (this.ring.length > this.capacity) this.ring.splice(0, this.ring.length - this.capacity);
    for (const listener of this.listeners) listener(event);
  };

  /** The number of the newest event (0: none yet). */
  get last(): number {
    return this.seq;
  }

  /** The kept events after `after`, oldest first, at most `limit` of them (the newest ones when there are more). */
  since(after: number, limit = this.capacity): readonly TimelineEvent[] {
    const first = this.ring.findIndex((event) => event.seq > after);
    if (first < 0) return [];
    return this.ring.slice(Math.max(first, this.ring.length - limit));
  }

  /** Calls `listener` with every new event until the returned function is called. */
  subscribe(listener: (event: TimelineEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}

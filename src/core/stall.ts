// The passive signal (pure): a line that has sent packets and received none
// for `stallMs` may be dead. Fed the interface's packet counters every few
// milliseconds; clients' traffic and the probes themselves both count as
// sent, so a line that carries anything is watched, and a line that merely
// idles (sends nothing) never stalls. A stall is only a reason to ask: the
// health monitor confirms it with a burst of probes and decides from those,
// never from the counters alone (an ISP's ARP or multicast may still arrive
// on a dead line; a one-way stream may be all a live line carries).

/**
 * How long a line's sending is measured before it is judged to carry more
 * than its probes: long enough that a packet more or less does not flip the
 * judgement at either tick rate.
 */
export const TRAFFIC_WINDOW_MS = 200;

export class StallWatch {
  private rx = -1;
  private tx = -1;
  /** When the first packet sent after the last one received was seen; null while nothing is unanswered. */
  private unansweredSince: number | null = null;
  /** Where the current traffic window began: its time and the packets sent by then. */
  private window: { at: number; tx: number } | null = null;
  private carries = false;

  constructor(readonly stallMs: number) {}

  /** Something was sent since the last packet received. */
  get unanswered(): boolean {
    return this.unansweredSince !== null;
  }

  /**
   * The line sent more than twice what its own probes send, and a few
   * packets more, over the last full traffic window: it carries clients'
   * traffic, whose stall users notice first.
   */
  get carriesTraffic(): boolean {
    return this.carries;
  }

  /**
   * The counters read at `now`; `probePackets` is how many packets a second
   * the line's own probes send. Returns the evidence when the line has sent
   * and heard nothing for `stallMs`, then starts watching afresh (the next
   * stall needs another full `stallMs` of silence).
   */
  sample(now: number, rx: number, tx: number, probePackets = 0): string | null {
    const first = this.rx < 0;
    const heard = rx !== this.rx;
    const sent = tx !== this.tx;
    this.rx = rx;
    this.tx = tx;
    this.measure(now, tx, first, probePackets);
    // Received anything (or counters restarted with a new interface): whatever was sent may be answered.
    // A sample that saw both cannot say which came last, so it counts as heard.
    if (first || heard) {
      this.unansweredSince = null;
      return null;
    }
    // The sample that first sees a packet go out stands for its time: at most one sample late, never early.
    if (sent && this.unansweredSince === null) this.unansweredSince = now;
    if (this.unansweredSince === null || now - this.unansweredSince < this.stallMs) return null;
    const silentMs = now - this.unansweredSince;
    this.unansweredSince = null;
    return `packets sent and none received for ${silentMs} ms`;
  }

  private measure(now: number, tx: number, first: boolean, probePackets: number): void {
    if (first || this.window === null || tx < this.window.tx) {
      this.window = { at: now, tx };
      return;
    }
    const elapsed = now - this.window.at;
    if (elapsed < TRAFFIC_WINDOW_MS) return;
    this.carries = tx - this.window.tx > 2 * probePackets * (elapsed / 1000) + 2;
    this.window = { at: now, tx };
  }

  /** Forget what was unanswered (after a burst answered: the line spoke). */
  restart(): void {
    this.unansweredSince = null;
  }
}

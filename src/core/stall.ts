// The passive signal (pure): a line that has sent packets and received none
// for `stallMs` may be dead. Fed the interface's packet counters every few
// milliseconds; clients' traffic and the probes themselves both count as
// sent, so a line that carries anything is watched, and a line that merely
// idles (sends nothing) never stalls. A stall is only a reason to ask: the
// health monitor confirms it with a burst of probes and decides from those,
// never from the counters alone (an ISP's ARP or multicast may still arrive
// on a dead line; a one-way stream may be all a live line carries).

export class StallWatch {
  private rx = -1;
  private tx = -1;
  /** When the first packet sent after the last one received was seen; null while nothing is unanswered. */
  private unansweredSince: number | null = null;

  constructor(readonly stallMs: number) {}

  /**
   * The counters read at `now`. Returns the evidence when the line has sent
   * and heard nothing for `stallMs`, then starts watching afresh (the next
   * stall needs another full `stallMs` of silence).
   */
  sample(now: number, rx: number, tx: number): string | null {
    const first = this.rx < 0;
    const heard = rx !== this.rx;
    const sent = tx !== this.tx;
    this.rx = rx;
    this.tx = tx;
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

  /** Forget what was unanswered (after a burst answered: the line spoke). */
  restart(): void {
    this.unansweredSince = null;
  }
}

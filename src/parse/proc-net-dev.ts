// /proc/net/dev: every interface's counters in one read of the network
// namespace the process is in. Only the packet counts are kept (the passive
// signal asks whether anything came back, not how much).

export interface LinkCounters {
  readonly rxPackets: number;
  readonly txPackets: number;
}

/** Counters by interface name; the two header lines and anything malformed are skipped. */
export function parseNetDev(text: string): Map<string, LinkCounters> {
  const counters = new Map<string, LinkCounters>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    // receive: bytes packets errs drop fifo frame compressed multicast; transmit: bytes packets …
    const fields = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    const rxPackets = Number(fields[1] ?? Number.NaN);
    const txPackets = Number(fields[9] ?? Number.NaN);
    if (name === '' || Number.isNaN(rxPackets) || Number.isNaN(txPackets)) continue;
    counters.set(name, { rxPackets, txPackets });
  }
  return counters;
}

// `conntrack -L` text (pure). Each line is one entry: the original direction's
// src= and dst= come first, the reply direction's after them, mark= near the
// end. An entry whose mark carries our connection field has left by (or
// arrived on) an uplink; one whose reply goes back to its own source was not
// source-translated.

/** Original sources of the entries whose mark has a bit of connMask set. */
export function busySources(text: string, connMask: number): Set<string> {
  const busy = new Set<string>();
  for (const entry of entries(text)) if ((entry.mark & connMask) >>> 0 !== 0) busy.add(entry.source);
  return busy;
}

/**
 * The entries that left by an uplink (a connection field in their mark) with
 * their source untranslated, as (source, connection field) pairs, each once.
 * Behind a NAT gateway every connection that leaves by an uplink is
 * translated; these are not, and never will be: a connection's NAT is decided
 * by its first packet.
 */
export function untranslatedByUplink(text: string, connMask: number): { source: string; connMark: number }[] {
  const found = new Map<string, { source: string; connMark: number }>();
  for (const entry of entries(text)) {
    const connMark = (entry.mark & connMask) >>> 0;
    if (connMark !== 0 && entry.replyDestination === entry.source) found.set(`${entry.source} ${connMark}`, { source: entry.source, connMark });
  }
  return [...found.values()];
}

interface Entry {
  readonly source: string;
  /** The reply direction's destination: the source as translated (itself when it was not). */
  readonly replyDestination: string | undefined;
  readonly mark: number;
}

function* entries(text: string): Generator<Entry> {
  for (const line of text.split('\n')) {
    const source = / src=(\S+)/.exec(line)?.[1];
    if (source === undefined) continue;
    const destinations = [...line.matchAll(/ dst=(\S+)/g)].map((m) => m[1]);
    yield { source, replyDestination: destinations[1], mark: Number(/ mark=([0-9]+)/.exec(line)?.[1] ?? 0) };
  }
}

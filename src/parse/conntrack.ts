// `conntrack -L` text (pure): which LAN clients have a connection open through
// an uplink. Each line is one entry: the original direction's src= comes
// first, mark= near the end; an entry whose mark carries our connection field
// has left by (or arrived on) an uplink, so its original source is busy.

/** Original sources of the entries whose mark has a bit of connMask set. */
export function busySources(text: string, connMask: number): Set<string> {
  const busy = new Set<string>();
  for (const line of text.split('\n')) {
    const source = / src=(\S+)/.exec(line)?.[1];
    const mark = Number(/ mark=([0-9]+)/.exec(line)?.[1] ?? 0);
    if (source !== undefined && (mark & connMask) >>> 0 !== 0) busy.add(source);
  }
  return busy;
}

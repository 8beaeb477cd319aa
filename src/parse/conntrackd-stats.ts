// What `conntrackd -C CONF -s` prints (conntrack-tools 1.4: src/cache.c,
// src/sync-mode.c, src/traffic_stats.c), read for a pair's health: how many
// connections each cache holds (internal: this gateway's own, which it sends;
// external: the peer's, kept for a takeover's commit) and the sync link's
// errors. A section this version does not print stays null: conntrackd
// answering at all is the health; the figures are what it says besides.
//
//   cache internal:
//   current active connections:               10
//   …
//   UDP traffic (active device=sync0):
//                 564 Bytes sent                  0 Bytes recv
//                   0 Error send                  0 Error recv
//   message tracking:
//                   0 Malformed msgs              0 Lost msgs

export interface ConntrackdStats {
  /** Current connections of each cache; null when the output has no such section. */
  readonly caches: { readonly internal: number; readonly external: number } | null;
  /** Since conntrackd started: messages it failed to send or receive, received malformed, or found missing (a gap in the sequence, which FT-FW sends again). */
  readonly errors: { readonly send: number; readonly receive: number; readonly malformed: number; readonly lost: number } | null;
}

/** The number after "current active connections:" in the section that starts with `heading`. */
function cacheCount(text: string, heading: string): number | null {
  const at = text.indexOf(heading);
  if (at < 0) return null;
  const match = /current active connections:\s*(\d+)/.exec(text.slice(at + heading.length));
  return match ? Number(match[1]) : null;
}

export function parseConntrackdStats(text: string): ConntrackdStats {
  const internal = cacheCount(text, 'cache internal:');
  const external = cacheCount(text, 'cache external:');
  const io = /(\d+)\s+Error send\s+(\d+)\s+Error recv/.exec(text);
  const tracking = /(\d+)\s+Malformed msgs\s+(\d+)\s+Lost msgs/.exec(text);
  return {
    caches: internal !== null && external !== null ? { internal, external } : null,
    errors: io && tracking ? { send: Number(io[1]), receive: Number(io[2]), malformed: Number(tracking[1]), lost: Number(tracking[2]) } : null,
  };
}

/**
 * conntrackd's complaint without the time and pid it prefixes to each log
 * line: "[Tue Dec  1 02:27:12 2026] (pid=5922) [ERROR] can't connect: is
 * conntrackd running? appropriate permissions?" → "can't connect: is
 * conntrackd running? appropriate permissions?".
 */
export function conntrackdComplaint(said: string): string {
  return said.replace(/\[[^\]]*\]\s*\(pid=\d+\)\s*(\[[A-Z]+\]\s*)?/g, '').trim();
}

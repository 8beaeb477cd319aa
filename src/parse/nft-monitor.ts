// Lines of `nft monitor` (nftables 1.0.6). The kernel reports every committed
// change to the ruleset, iptables-nft's included, as event lines in nft's own
// syntax, and closes each transaction with a line naming the process that
// committed it:
//   delete chain ip mangle DISPATCHER-PRE
//   delete table ip mangle
//   # new generation 6 by process 17505 (nft)

export interface GenerationEnd {
  readonly generation: number;
  /** The committing process, when the kernel knows it (absent for some kernel-internal commits). */
  readonly pid: number | null;
  /** Its name as the kernel shows it: at most 15 characters ("iptables-restor"). */
  readonly process: string | null;
}

/** The end of one transaction, or null for an event line (or anything else). */
export function generationEnd(line: string): GenerationEnd | null {
  const match = /^# new generation ([0-9]+)(?: by process ([0-9]+) \((.*)\))?\s*$/.exec(line);
  if (!match) return null;
  return { generation: Number(match[1]), pid: match[2] ? Number(match[2]) : null, process: match[3] ?? null };
}

/**
 * The table an event line is about, as "family name" ("ip mangle"), or
 * "ruleset" for `flush ruleset`; null for lines that name none.
 */
export function tableOfEvent(line: string): string | null {
  if (/^flush ruleset\b/.test(line)) return 'ruleset';
  const match =
    /^(?:add|create|delete|destroy|flush|insert|replace|reset|rename) (?:table|chain|rule|set|map|element|flowtable|object|counter|quota|limit|ct helper|ct timeout|ct expectation|secmark|synproxy) (ip|ip6|inet|arp|bridge|netdev) ([^\s{]+)/.exec(
      line,
    );
  return match ? `${match[1]} ${match[2]}` : null;
}

// Lines of iputils ping run with -n -O (and optionally -D timestamps):
//   64 bytes from 192.0.2.1: icmp_seq=7 ttl=64 time=0.042 ms
//   64 bytes from 2001:db8:ffff::100: icmp_seq=7 ttl=63 time=0.130 ms      (IPv6 targets)
//   no answer yet for icmp_seq=11
//   From 192.0.2.2 icmp_seq=3 Destination Host Unreachable
//   From 2001:db8:a::2 icmp_seq=3 Destination unreachable: Address unreachable
// Anything else (the header, statistics, duplicates) is not a probe result.

/** A pending probe carries when ping printed it (-D: the wall clock, in ms), when the line had a timestamp. */
export type PingEvent = { readonly kind: 'reply'; readonly seq: number; readonly rttMs: number } | { readonly kind: 'pending'; readonly seq: number; readonly atMs?: number } | { readonly kind: 'error'; readonly seq: number };

const TIMESTAMP = /^\[([0-9]+(?:\.[0-9]+)?)\] /;

export function parsePingLine(line: string): PingEvent | null {
  const stamp = TIMESTAMP.exec(line);
  const text = (stamp ? line.slice(stamp[0].length) : line).trim();
  if (text.includes('(DUP!)')) return null;
  // A strict number for time: "1.5.2" or ".1.5" would read as NaN and poison the RTT average (found by fuzzing).
  let match = /^[0-9]+ bytes from [0-9a-f.:]+: icmp_seq=([0-9]+) ttl=[0-9]+ time=([0-9]+(?:\.[0-9]+)?) ms$/.exec(text);
  if (match) return { kind: 'reply', seq: Number(match[1]), rttMs: Number(match[2]) };
  match = /^no answer yet for icmp_seq=([0-9]+)$/.exec(text);
  if (match) return stamp ? { kind: 'pending', seq: Number(match[1]), atMs: Number(stamp[1]) * 1000 } : { kind: 'pending', seq: Number(match[1]) };
  // A link-local router prints with its scope: "From fe80::1%wan1 icmp_seq=3 …".
  match = /^From [0-9a-f.:]+(?:%\S+)? icmp_seq=([0-9]+) /.exec(text);
  if (match) return { kind: 'error', seq: Number(match[1]) };
  return null;
}

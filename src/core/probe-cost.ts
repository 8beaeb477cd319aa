// What probing costs a line (pure): the IPv4 bytes one probe of each method
// puts on the line each way, times the probes per second, over an uplink's
// targets. Estimates from the packets each method exchanges (TCP with the
// usual options, a short HTTP exchange, a one-question DNS query), shown in
// `status` so that a 10 probes/s default is a number, not a guess.

/** Bytes one probe sends out and receives, by method. */
export const PROBE_BYTES: Readonly<Record<string, { readonly out: number; readonly in: number }>> = {
  // An echo request and its reply: 20 IP + 8 ICMP + 56 data.
  icmp: { out: 84, in: 84 },
  // SYN (60), ACK, FIN, ACK (52 each) out; SYN-ACK (60), FIN, ACK in.
  tcp: { out: 216, in: 164 },
  // The handshake and close, one GET with a few headers, and a short answer (status, headers, a small body).
  http: { out: 216 + 170, in: 164 + 300 },
  // 20 IP + 8 UDP + 12 header + a name of about 20 bytes + 4; the answer with one record.
  dns: { out: 64, in: 100 },
};

/** Kilobits per second each way for one uplink's targets, probed every `intervalMs`. */
export function probeKbps(methods: readonly string[], intervalMs: number): { readonly out: number; readonly in: number } {
  const perSecond = 1000 / intervalMs;
  const sum = (way: 'out' | 'in'): number => methods.reduce((total, method) => total + (PROBE_BYTES[method]?.[way] ?? 0), 0);
  const kbps = (bytes: number): number => Math.round(((bytes * 8 * perSecond) / 1000) * 10) / 10;
  return { out: kbps(sum('out')), in: kbps(sum('in')) };
}

// The two DNS messages the dns probe needs (RFC 1035 §4.1), pure: a query
// for one name and type, and the header of its answer (id, QR, rcode, answer
// count). Hand-written because it is 40 lines; nothing else of DNS is read.

export const RECORD_TYPES = { A: 1, NS: 2, CNAME: 5, SOA: 6, MX: 15, TXT: 16, AAAA: 28 } as const;
export type RecordType = keyof typeof RECORD_TYPES;

const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];

/** A query with recursion desired, for `name` (dotted, no trailing dot needed) and `type`. */
export function dnsQuery(id: number, name: string, type: RecordType): Uint8Array {
  const labels = name
    .replace(/\.$/, '')
    .split('.')
    .filter((l) => l !== '');
  const question = labels.flatMap((label) => {
    const bytes = [...new TextEncoder().encode(label)];
    return [bytes.length, ...bytes];
  });
  const code = RECORD_TYPES[type];
  // Header: id, flags RD, one question, no answer/authority/additional records.
  return Uint8Array.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, ...question, 0, code >> 8, code & 0xff, 0, 1]);
}

export interface DnsAnswerHeader {
  readonly id: number;
  /** The server's answer code by name (NOERROR, REFUSED, …; "RCODE n" for others). */
  readonly rcode: string;
  readonly answers: number;
}

/** The header of an answer; null when the bytes are no DNS response. */
export function dnsAnswerHeader(message: Uint8Array): DnsAnswerHeader | null {
  if (message.length < 12) return null;
  const flags = ((message[2] as number) << 8) | (message[3] as number);
  if ((flags & 0x8000) === 0) return null;
  const code = flags & 0x0f;
  return { id: ((message[0] as number) << 8) | (message[1] as number), rcode: RCODES[code] ?? `RCODE ${code}`, answers: ((message[6] as number) << 8) | (message[7] as number) };
}

// The dns method: a query for `query` (type A unless said) sent to `server`
// over UDP; answered only with NOERROR from that server for this query's id.
// REFUSED, SERVFAIL, NXDOMAIN and the like are lost, with the code as the
// reason: a server that answers but does not resolve is no working line.

import { dnsAnswerHeader, dnsQuery, type RecordType } from '../parse/dns-message.js';
import { askingMethod } from './periodic.js';

export interface DnsTarget {
  readonly method: 'dns';
  readonly id: string;
  readonly server: string;
  readonly query: string;
  readonly type: RecordType;
}

export const dnsMethod = askingMethod<DnsTarget>(
  'dns',
  // One query datagram.
  1,
  (run) => `${run.target.server} ${run.target.query} ${run.target.type} from ${run.path.source} every ${run.timing.intervalMs} timeout ${run.timing.timeoutMs}`,
  (run, context) => {
    const { server, query, type } = run.target;
    const source = run.path.source as string;
    let id = Math.floor(Math.random() * 0x10000);
    return async () => {
      id = (id + 1) & 0xffff;
      const asked = id;
      const { answer, ms } = await context.sockets.dnsExchange(server, dnsQuery(asked, query, type), source, run.timing.timeoutMs);
      const header = dnsAnswerHeader(answer);
      if (!header || header.id !== asked) return { ok: false, why: 'an answer that is not to this query' };
      if (header.rcode !== 'NOERROR') return { ok: false, why: header.rcode };
      return { ok: true, rttMs: ms };
    };
  },
);

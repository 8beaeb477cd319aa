// The http method (http:// and https:// URLs): one GET, answered when the
// status is the expected one (any 2xx unless `expect` says which) and the
// body holds `contains` when given; anything else is lost, with the status as
// the reason. The time to the whole answer is the RTT.

import { askingMethod } from './periodic.js';

export interface HttpTarget {
  readonly method: 'http';
  readonly id: string;
  readonly url: string;
  /** The status that counts as answered; null: any 2xx. */
  readonly expect: number | null;
  /** Text the body must contain. */
  readonly contains?: string;
  /** https without checking the certificate (a health endpoint with a self-signed one). */
  readonly insecure: boolean;
}

/** How much of a body is read to look for `contains`. */
const MAX_BYTES = 65_536;

export const httpMethod = askingMethod<HttpTarget>(
  'http',
  // The handshake (2), the request, an ACK per segment of a small answer (about 3), the close (2).
  8,
  (run) => `${JSON.stringify(run.target)} from ${run.path.source} every ${run.timing.intervalMs} timeout ${run.timing.timeoutMs}`,
  (run, context) => {
    const { url, expect, contains, insecure } = run.target;
    const source = run.path.source as string;
    return async () => {
      const answer = await context.sockets.httpGet(url, source, run.timing.timeoutMs, { insecure, maxBytes: MAX_BYTES });
      const statusOk = expect === null ? answer.status >= 200 && answer.status <= 299 : answer.status === expect;
      if (!statusOk) return { ok: false, why: `HTTP ${answer.status}${expect === null ? '' : `, expected ${expect}`}` };
      if (contains !== undefined && !answer.body.includes(contains)) return { ok: false, why: `HTTP ${answer.status} without "${contains}" in the body` };
      return { ok: true, rttMs: answer.ms };
    };
  },
);

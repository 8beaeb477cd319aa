// The sockets the tcp, http and dns probe methods ask through, opened by the
// daemon itself (no process per probe: a probe every 100 ms per target must
// cost next to nothing). Each is bound to the uplink's own address, so the
// uplink's source rule (`from ADDRESS lookup` its table) sends it out by that
// uplink whatever the pools or the main table say. Every operation gives up
// after its timeout and closes what it opened.

import { createSocket } from 'node:dgram';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';

/** How long the answer took, in milliseconds (sub-millisecond resolution). */
export type Elapsed = number;

export interface HttpAnswer {
  readonly status: number;
  /** The body's first `maxBytes`, as text. */
  readonly body: string;
  readonly ms: Elapsed;
}

export interface ProbeSockets {
  /** Resolves once the TCP handshake completed; rejects with why it did not (refused, unreachable, timed out). */
  tcpConnect(address: string, port: number, source: string, timeoutMs: number): Promise<Elapsed>;
  /** One GET without redirects; resolves with any status. */
  httpGet(url: string, source: string, timeoutMs: number, options: { readonly insecure?: boolean; readonly maxBytes: number }): Promise<HttpAnswer>;
  /** One datagram to port 53 and the first datagram back from the server. */
  dnsExchange(server: string, query: Uint8Array, source: string, timeoutMs: number): Promise<{ readonly answer: Uint8Array; readonly ms: Elapsed }>;
}

const elapsedSince = (start: number): Elapsed => Math.round((performance.now() - start) * 1000) / 1000;

export const systemProbeSockets: ProbeSockets = {
  tcpConnect(address, port, source, timeoutMs) {
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const socket = connect({ host: address, port, localAddress: source, timeout: timeoutMs });
      socket.once('connect', () => {
        resolve(elapsedSince(start));
        socket.destroy();
      });
      socket.once('timeout', () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      socket.once('error', (error: NodeJS.ErrnoException) => reject(new Error(error.code === 'ECONNREFUSED' ? `port ${port} refused the connection` : error.message)));
    });
  },

  httpGet(url, source, timeoutMs, { insecure, maxBytes }) {
    return new Promise((resolve, reject) => {
      const start = performance.now();
      const secure = url.startsWith('https:');
      // No agent: a pooled connection could outlive its uplink's address, and every probe must open its own.
      const options = { agent: false, localAddress: source, timeout: timeoutMs, headers: { 'user-agent': 'dispatcher-probe', connection: 'close' }, ...(secure && insecure ? { rejectUnauthorized: false } : {}) };
      const answered = (response: IncomingMessage): void => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          if (size < maxBytes) chunks.push(chunk);
          size += chunk.length;
        });
        response.once('end', () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).subarray(0, maxBytes).toString('utf8'), ms: elapsedSince(start) }));
        response.once('error', reject);
      };
      const request = (secure ? httpsRequest : httpRequest)(url, options, answered);
      request.once('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.once('error', reject);
      request.end();
    });
  },

  dnsExchange(server, query, source, timeoutMs) {
    return new Promise((resolve, reject) => {
      const socket = createSocket('udp4');
      const start = performance.now();
      const timer = setTimeout(() => finish(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      timer.unref();
      let done = false;
      const finish = (error: Error | null, answer?: Uint8Array): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        socket.close();
        if (error) reject(error);
        else resolve({ answer: answer as Uint8Array, ms: elapsedSince(start) });
      };
      socket.once('error', (error) => finish(error));
      socket.on('message', (message, from) => {
        if (from.address === server && from.port === 53) finish(null, message);
      });
      socket.bind({ address: source, port: 0 }, () => socket.send(query, 53, server));
    });
  },
};

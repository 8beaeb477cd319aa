// The web dashboard's HTTP server (`web: { listen }`): the page's files,
// JSON under /api/, and one server-sent-event stream per open page. What the
// answers say is the engine's (engine/web.ts); this room is HTTP only:
//
// - the token: actions (POST) always need `Authorization: Bearer <token>`,
//   reads too when the engine says so (a listen address beyond loopback).
//   No token file: actions are refused. Compared in constant time.
// - Host must be an address or localhost: a page elsewhere cannot reach a
//   loopback dashboard through a DNS name that it points at 127.0.0.1
//   (DNS rebinding). No CORS headers: other origins cannot send the token.
// - the page's own files only (read at start, served from memory), with a
//   content security policy that allows nothing from elsewhere.

import { timingSafeEqual } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join } from 'node:path';
import { gzip } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { RequestError } from '../model/errors.js';
import type { Logger } from './logger.js';

export interface Asset {
  readonly type: string;
  readonly body: Buffer;
}

/** What the engine answers; a RequestError is the asker's mistake (400), NotFound a 404, anything else a 500. */
export interface WebRoutes {
  readonly assets: ReadonlyMap<string, Asset>;
  /** The token actions need; null: actions are refused. */
  readonly token: string | null;
  /** Reading needs the token too (listening beyond loopback). */
  readonly readsNeedToken: boolean;
  get(path: string, query: URLSearchParams): Promise<unknown>;
  post(path: string, body: unknown): Promise<unknown>;
  /** Starts sending events to one open page, beginning with the timeline's after `after`; returns how to stop. */
  stream(send: (event: string, data: unknown) => void, after: number): () => void;
}

export class NotFound extends Error {}

export interface WebServer {
  readonly listen: string;
  /** Answers with other routes from now on (a reload that changed the token, say) without closing the socket. */
  use(routes: WebRoutes): void;
  close(): Promise<void>;
}

const MAX_BODY = 16 * 1024;
/** Open pages at once, and how much one may leave unread before it is cut (a page that stopped reading). */
const MAX_STREAMS = 32;
const MAX_BACKLOG = 1024 * 1024;
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

class TooLarge extends Error {}

function tokenMatches(header: string | undefined, token: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '');
  const wanted = Buffer.from(token);
  return given.length === wanted.length && timingSafeEqual(given, wanted);
}

/** An IPv4 or bracketed IPv6 literal, or localhost, with an optional port. */
function hostAllowed(host: string | undefined): boolean {
  return host !== undefined && /^(localhost|[0-9.]+|\[[0-9a-fA-F:.]+\])(:[0-9]{1,5})?$/.test(host);
}

/** Sends a body, gzipped when the browser takes it and it is worth it (an hour of 16 lines' history is about 1 MB of JSON, 100 kB gzipped). */
function send(request: IncomingMessage, response: ServerResponse, status: number, type: string, body: Buffer | string, extra: Record<string, string> = {}): void {
  const headers = { ...SECURITY_HEADERS, ...extra, 'content-type': type, vary: 'accept-encoding' };
  if (body.length < 1024 || !/\bgzip\b/.test(request.headers['accept-encoding'] ?? '')) {
    response.writeHead(status, headers).end(body);
    return;
  }
  gzip(body, (error, zipped) => {
    if (error) response.writeHead(status, headers).end(body);
    else response.writeHead(status, { ...headers, 'content-encoding': 'gzip' }).end(zipped);
  });
}

function json(request: IncomingMessage, response: ServerResponse, status: number, value: unknown, extra?: Record<string, string>): void {
  send(request, response, status, 'application/json; charset=utf-8', JSON.stringify(value), extra);
}

function readBody(request: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    request.on('end', () => {
      if (size > MAX_BODY) return reject(new TooLarge(`request body larger than ${MAX_BODY} bytes`));
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(text === '' ? {} : JSON.parse(text));
      } catch {
        reject(new RequestError('the request body is not JSON'));
      }
    });
    request.on('error', reject);
  });
}

/** Why a request is refused: status, reason and headers; null when it may go on. */
function refusal(routes: WebRoutes, request: IncomingMessage, url: URL): [number, string, Record<string, string>?] | null {
  if (!hostAllowed(request.headers.host)) return [421, 'open the dashboard by its address (or localhost), not by a name'];
  if (!url.pathname.startsWith('/api/')) return [404, `no ${url.pathname} here`];
  const isAction = request.method === 'POST';
  if (request.method !== 'GET' && !isAction) return [405, 'GET or POST only', { allow: 'GET, POST' }];
  if (isAction && routes.token === null) return [403, 'actions are off: set web.token_file in the config to allow them with its token'];
  if ((isAction || routes.readsNeedToken) && !tokenMatches(request.headers.authorization, routes.token as string)) {
    return [401, 'this needs the token (web.token_file)', { 'www-authenticate': 'Bearer realm="dispatcher"' }];
  }
  return null;
}

function handle(routes: WebRoutes, request: IncomingMessage, response: ServerResponse, streams: Set<ServerResponse>, log: Logger): void {
  let url: URL;
  try {
    url = new URL(request.url ?? '/', 'http://dashboard');
  } catch {
    json(request, response, 400, { error: 'not a path' });
    return;
  }
  const asset = request.method === 'GET' && hostAllowed(request.headers.host) ? routes.assets.get(url.pathname === '/' ? '/index.html' : url.pathname) : undefined;
  if (asset) {
    send(request, response, 200, asset.type, asset.body);
    return;
  }
  const refused = refusal(routes, request, url);
  if (refused) {
    json(request, response, refused[0], { error: refused[1] }, refused[2]);
    return;
  }
  if (url.pathname === '/api/stream') {
    if (streams.size >= MAX_STREAMS) json(request, response, 503, { error: `${MAX_STREAMS} pages are open already` });
    else openStream(routes, request, response, Number(url.searchParams.get('after')) || 0, streams);
    return;
  }
  const answer = request.method === 'POST' ? readBody(request).then((body) => routes.post(url.pathname, body)) : routes.get(url.pathname, url.searchParams);
  answer.then(
    (value) => json(request, response, 200, value),
    (error: Error) => {
      if (error instanceof RequestError) json(request, response, 400, { error: error.message });
      else if (error instanceof TooLarge) json(request, response, 413, { error: error.message });
      else if (error instanceof NotFound) json(request, response, 404, { error: error.message });
      else {
        log.warn('web request failed', { path: url.pathname, error: error.message });
        json(request, response, 500, { error: 'the daemon failed to answer (its log says why)' });
      }
    },
  );
}

/** Server-sent events: `event: NAME` and one JSON `data:` line each, a comment every 15 s to keep proxies from closing it. */
function openStream(routes: WebRoutes, request: IncomingMessage, response: ServerResponse, after: number, streams: Set<ServerResponse>): void {
  response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive' });
  response.write(': dispatcher\n\n');
  streams.add(response);
  const write = (text: string): void => {
    // A page that stopped reading is cut rather than buffered without end.
    if (response.writableLength > MAX_BACKLOG) response.destroy();
    else if (!response.destroyed) response.write(text);
  };
  const keepAlive = setInterval(() => write(': keep-alive\n\n'), 15_000);
  let stop = (): void => undefined;
  request.once('close', () => {
    clearInterval(keepAlive);
    streams.delete(response);
    stop();
  });
  try {
    stop = routes.stream((event, data) => write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`), after);
  } catch (error) {
    // Ended, not left hanging: the page reconnects (and reloads what it shows).
    response.end(`: ${(error as Error).message.replace(/\n/g, ' ')}\n\n`);
    throw error;
  }
  if (response.destroyed) stop();
}

export async function listenWeb(host: string, port: number, routes: WebRoutes, log: Logger): Promise<WebServer> {
  let current = routes;
  const streams = new Set<ServerResponse>();
  const server: Server = createServer((request, response) => {
    try {
      handle(current, request, response, streams, log);
    } catch (error) {
      // Nothing a request does may end the daemon.
      log.warn('web request failed', { path: request.url?.slice(0, 200), error: (error as Error).message });
      if (!response.headersSent) json(request, response, 500, { error: 'the daemon failed to answer (its log says why)' });
      else if (!response.writableEnded) response.destroy();
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The port bound (port 0: one the kernel chose).
  const bound = `${host}:${(server.address() as AddressInfo).port}`;
  log.info('web dashboard listening', { url: `http://${bound}/`, actions: routes.token !== null });
  return {
    listen: bound,
    use: (next) => {
      current = next;
      // Open pages reconnect and are judged by the new routes (a changed token).
      for (const stream of streams) stream.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Open streams would hold close() until the pages go away.
        server.closeAllConnections();
      }),
  };
}

const TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

/** The page's files (web/ in the package), read once: served from memory, nothing else from disk. */
export async function readAssets(dir = fileURLToPath(new URL('../../web/', import.meta.url))): Promise<Map<string, Asset>> {
  const names = (await readdir(dir)).filter((name) => TYPES[extname(name)] !== undefined);
  return new Map(await Promise.all(names.map(async (name) => [`/${name}`, { type: TYPES[extname(name)] as string, body: await readFile(join(dir, name)) }] as const)));
}

// The web dashboard's pure parts and its HTTP room: the timeline and how it
// is read (after a number, waiting for the next), the clients table, the
// lines' history, the timeline's words for verdicts and runs, the `web`
// config, and the server's rules (token, Host, assets, stream, body size)
// on a real loopback socket. The page itself is tested in Chromium
// (test/integration/dashboard.test.ts).

import { afterEach, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import { clientTable } from '../../src/core/client-table.js';
import { History, type LineSample, lineQuality } from '../../src/core/history.js';
import { Timeline } from '../../src/core/timeline.js';
import { ClientBytes, FRESH_MS } from '../../src/engine/client-bytes.js';
import { eventsAfter } from '../../src/engine/events.js';
import { noteTransition, RunNotes } from '../../src/engine/notes.js';
import { RequestError } from '../../src/model/errors.js';
import type { ClientRecord, UplinkView } from '../../src/model/state.js';
import { parseRequest, type RunReport, type UplinkHealthSnapshot } from '../../src/schema/control.js';
import { systemClock } from '../../src/system/clock.js';
import { listenWeb, readAssets, type WebRoutes, type WebServer } from '../../src/system/web-server.js';
import { problemsOf } from '../helpers/config-problems.js';
import { ManualClock } from '../helpers/manual-clock.js';

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

describe('the timeline', () => {
  test('numbers events, keeps the newest `capacity`, and answers what came after a number', () => {
    let now = Date.parse('2026-11-30T10:00:00Z');
    const timeline = new Timeline(3, () => now);
    const heard: number[] = [];
    const stop = timeline.subscribe((event) => heard.push(event.seq));
    for (const text of ['a', 'b', 'c', 'd']) {
      timeline.note('verdict', text, 'isp1');
      now += 1000;
    }
    stop();
    timeline.note('reload', 'e');
    expect(heard).toEqual([1, 2, 3, 4]);
    expect(timeline.last).toBe(5);
    expect(timeline.since(0).map((e) => e.text)).toEqual(['c', 'd', 'e']);
    expect(timeline.since(3)).toEqual([
      { seq: 4, at: '2026-11-30T10:00:03.000Z', kind: 'verdict', uplink: 'isp1', text: 'd' },
      { seq: 5, at: '2026-11-30T10:00:04.000Z', kind: 'reload', uplink: null, text: 'e' },
    ]);
    expect(timeline.since(5)).toEqual([]);
    expect(timeline.since(0, 1).map((e) => e.seq)).toEqual([5]);
  });

  test('a reader waits for the next event, gets nothing new after its wait, and starts over after a restart', async () => {
    const timeline = new Timeline(10, Date.now);
    timeline.note('start', 'started');
    const read = (n: number, waitMs: number, started?: string) => eventsAfter(timeline, systemClock, { after: n, waitMs, ...(started ? { started } : {}) });
    expect((await read(0, 0)).events.map((e) => e.seq)).toEqual([1]);
    const waiting = read(1, 5_000, timeline.started);
    setTimeout(() => timeline.note('failover', "isp1's pool moved", 'isp1'), 20);
    const next = await waiting;
    expect(next.events.map((e) => e.kind)).toEqual(['failover']);
    expect(next).toMatchObject({ last: 2, started: timeline.started });
    const began = Date.now();
    expect(await read(2, 50)).toEqual({ events: [], last: 2, started: timeline.started });
    expect(Date.now() - began).toBeGreaterThanOrEqual(40);
    // From a daemon that had numbered up to 500 before it restarted: everything, at once.
    expect((await read(500, 5_000)).events.map((e) => e.seq)).toEqual([1, 2]);
    // From one that had numbered only up to 1: its `started` tells, and the answer starts over too.
    expect((await read(1, 5_000, '2026-01-01T00:00:00.000Z')).events.map((e) => e.seq)).toEqual([1, 2]);
  });

  test('the control protocol takes `events` with its bounds and refuses others', () => {
    expect(parseRequest('{"cmd":"events","after":3,"waitMs":25000,"started":"2026-11-30T10:00:00.000Z"}')).toEqual({ cmd: 'events', after: 3, waitMs: 25000, started: '2026-11-30T10:00:00.000Z' });
    expect(() => parseRequest('{"cmd":"events","waitMs":60000}')).toThrow(RequestError);
    expect(() => parseRequest('{"cmd":"events","after":-1}')).toThrow('after');
  });
});

const up = (name: string, tier = 1): UplinkView => ({ name, state: 'up', tier }) as UplinkView;
const client = (uplink: string, extra: Partial<ClientRecord> = {}): ClientRecord => ({ uplink, mac: 'aa:bb:cc:00:00:01', interface: 'lan0', pinned: false, firstSeen: 1, ...extra });

describe("the timeline's words", () => {
  test("a line's fall says where its pool goes, its return that it comes home; an IPv6 verdict only itself", () => {
    const notes: [string, string, string | undefined][] = [];
    const note = (kind: string, text: string, uplink?: string): void => void notes.push([kind, text, uplink]);
    const clients = new Map([
      ['198.18.0.10', client('isp1')],
      ['198.18.0.11', client('isp1')],
      ['198.18.0.12', client('isp2')],
    ]);
    const uplinks = [up('isp1'), up('isp2'), up('isp3'), up('lte', 2)];
    noteTransition(note, { uplink: 'isp1', from: 'up', to: 'down', reason: '0 of 1 targets answer', at: 0 }, uplinks, clients);
    noteTransition(note, { uplink: 'isp1', from: 'down', to: 'up', reason: '1 of 1 targets answer', at: 0 }, uplinks, clients);
    noteTransition(note, { uplink: 'isp2', family: 'ipv6', from: 'up', to: 'down', reason: 'lost', at: 0 }, uplinks, clients);
    noteTransition(note, { uplink: 'isp3', from: 'up', to: 'degraded', reason: 'RTT 300 ms', at: 0 }, uplinks, clients);
    noteTransition(note, { uplink: 'isp1', from: 'up', to: 'down', reason: 'cut', at: 0 }, [up('isp1'), up('lte', 2)], clients);
    noteTransition(note, { uplink: 'isp1', from: 'up', to: 'down', reason: 'cut', at: 0 }, [up('isp1')], clients);
    expect(notes).toEqual([
      ['verdict', 'isp1 up → down: 0 of 1 targets answer', 'isp1'],
      ['failover', "isp1's pool (2 clients) now leaves by isp2, isp3", 'isp1'],
      ['verdict', 'isp1 down → up: 1 of 1 targets answer', 'isp1'],
      ['failback', "isp1's pool (2 clients) leaves by isp1 again", 'isp1'],
      ['verdict', 'isp2 (IPv6) up → down: lost', 'isp2'],
      ['degraded', 'isp3 up → degraded: RTT 300 ms', 'isp3'],
      ['verdict', 'isp1 up → down: cut', 'isp1'],
      ['failover', "isp1's pool (2 clients) now leaves by lte", 'isp1'],
      ['verdict', 'isp1 up → down: cut', 'isp1'],
      ['failover', "isp1's pool (2 clients) has no line to leave by: none is up", 'isp1'],
    ]);
  });

  test('runs: a repair with what was put back; failing once (not once per retry), then working again', () => {
    const notes: string[] = [];
    const runs = new RunNotes((kind, text) => void notes.push(`${kind}: ${text}`));
    const report = (fields: Partial<RunReport>): RunReport => ({
      at: '',
      durationMs: 1,
      ok: true,
      reasons: [],
      drift: false,
      repaired: [],
      applied: {},
      added: 0,
      moved: 0,
      expired: 0,
      refused: 0,
      forgotten: {},
      phases: {},
      ...fields,
    });
    runs.reported(report({ drift: true, repaired: ['chain DISPATCHER-PRE', 'rule 4166'] }));
    runs.reported(report({ ok: false, error: 'ipset: no such set' }));
    runs.reported(report({ ok: false, error: 'ipset: no such set' }));
    runs.reported(report({}));
    runs.reported(report({}));
    expect(notes).toEqual(['repair: repaired what other software changed of ours: chain DISPATCHER-PRE; rule 4166', 'run: runs are failing (retried with a full resync): ipset: no such set', 'run: runs work again']);
  });
});

describe('the clients table', () => {
  const clients = new Map<string, ClientRecord>([
    ['198.18.0.100', client('isp2', { mac: 'AA:00:00:00:00:64' })],
    ['198.18.0.9', client('isp1', { pinned: true })],
    ['198.18.1.1', client('isp1', { ipv6: { 'fd00:18::1:1': 5 } })],
  ]);
  // When each was last seen (kept apart from the records); 198.18.0.100 never since it came.
  const seen = new Map([
    ['198.18.0.9', 3],
    ['198.18.1.1', 2],
  ]);

  test('rows in address order (numeric, not text), filtered by address, MAC (any case), pool or IPv6 address; last seen when first seen until seen again', () => {
    expect(clientTable(clients, seen, '', 0, null).rows.map((r) => r.ip)).toEqual(['198.18.0.9', '198.18.0.100', '198.18.1.1']);
    expect(clientTable(clients, seen, 'aa:00', 0, null).rows.map((r) => r.ip)).toEqual(['198.18.0.100']);
    expect(clientTable(clients, seen, ' ISP1 ', 0, null).rows.map((r) => r.ip)).toEqual(['198.18.0.9', '198.18.1.1']);
    expect(clientTable(clients, seen, 'fd00:18::1', 0, null).rows).toEqual([
      { ip: '198.18.1.1', mac: 'aa:bb:cc:00:00:01', interface: 'lan0', pool: 'isp1', pinned: false, since: 1, lastSeen: 2, ipv6: ['fd00:18::1:1'], bytes: null },
    ]);
    expect(clientTable(clients, seen, 'aa:00', 0, null).rows[0]).toMatchObject({ since: 1, lastSeen: 1 });
    expect(clientTable(clients, seen, 'nothing', 0, null)).toEqual({ order: 'address', total: 3, matched: 0, offset: 0, rows: [] });
  });

  test("bytes: a host's IPv4 and IPv6 addresses together, none counted yet is 0; busiest first on request, ties in address order", () => {
    const bytes = new Map([
      ['198.18.1.1', 1000],
      ['fd00:18::1:1', 500],
      ['198.18.0.9', 1500],
    ]);
    const table = clientTable(clients, seen, '', 0, bytes, 'bytes');
    expect(table.order).toBe('bytes');
    expect(table.rows.map((r) => [r.ip, r.bytes])).toEqual([
      ['198.18.0.9', 1500],
      ['198.18.1.1', 1500],
      ['198.18.0.100', 0],
    ]);
    expect(clientTable(clients, seen, '', 0, bytes).rows.map((r) => r.ip)).toEqual(['198.18.0.9', '198.18.0.100', '198.18.1.1']);
    // Unreadable counters: no bytes, and the busiest order falls back to addresses (and says so).
    expect(clientTable(clients, seen, '', 0, null, 'bytes').order).toBe('address');
    expect(clientTable(clients, seen, '', 0, null, 'bytes').rows.map((r) => [r.ip, r.bytes])).toEqual([
      ['198.18.0.9', null],
      ['198.18.0.100', null],
      ['198.18.1.1', null],
    ]);
  });

  test('the counters are read when a page asks, once per few seconds however many ask, one read at a time; a failure is null for as long, and logged once', async () => {
    const clock = new ManualClock();
    const warned: string[] = [];
    let reads = 0;
    let fail = false;
    const reader = new ClientBytes(
      async () => {
        reads++;
        if (fail) throw new Error('ipset: permission denied');
        return new Map([['198.18.0.9', reads]]);
      },
      clock,
      { ...silent, warn: (message: string) => warned.push(message) },
    );
    const [a, b] = await Promise.all([reader.get(), reader.get()]);
    expect(reads).toBe(1);
    expect(a).toBe(b);
    await clock.advance(FRESH_MS - 1);
    expect((await reader.get())?.get('198.18.0.9')).toBe(1);
    await clock.advance(1);
    expect((await reader.get())?.get('198.18.0.9')).toBe(2);
    fail = true;
    await clock.advance(FRESH_MS);
    expect(await reader.get()).toBeNull();
    expect(await reader.get()).toBeNull();
    expect(reads).toBe(3);
    await clock.advance(FRESH_MS);
    expect(await reader.get()).toBeNull();
    expect(warned).toEqual(['could not read the clients’ byte counters for the dashboard']);
    fail = false;
    await clock.advance(FRESH_MS);
    expect((await reader.get())?.get('198.18.0.9')).toBe(5);
  });

  test('pages of 100 at 50,000 clients, an offset past the end shows the last row', () => {
    const many = new Map<string, ClientRecord>();
    for (let i = 0; i < 50_000; i++) many.set(`198.18.${i >> 8}.${i & 255}`, client(i % 2 === 0 ? 'isp1' : 'isp2'));
    const page = clientTable(many, new Map(), '', 49_950, null);
    expect(page.rows).toHaveLength(50);
    expect(page.rows[0]?.ip).toBe('198.18.195.30');
    expect(clientTable(many, new Map(), 'isp2', 0, null)).toMatchObject({ total: 50_000, matched: 25_000 });
    expect(clientTable(many, new Map(), '', 10 ** 9, null).rows.map((r) => r.ip)).toEqual(['198.18.195.79']);
  });
});

describe("the lines' history", () => {
  const sample = (t: number): LineSample => ({ t, state: 'up', rttMs: 1, lossPercent: 0, rx: 10, tx: 20 });

  test('a bounded ring per line; a line gone from the samples is forgotten', () => {
    const history = new History(2);
    history.add(
      new Map([
        ['isp1', sample(1)],
        ['isp2', sample(1)],
      ]),
    );
    history.add(
      new Map([
        ['isp1', sample(2)],
        ['isp2', sample(2)],
      ]),
    );
    history.add(new Map([['isp1', sample(3)]]));
    expect(history.all()).toEqual({ isp1: [sample(2), sample(3)] });
  });

  test("a line's quality: the average RTT of the targets that answer, the worst target's loss", () => {
    const target = (avgRttMs: number | null, lossPercent: number) => ({ target: 't', method: 'icmp', alive: avgRttMs !== null, lastRttMs: avgRttMs, avgRttMs, lossPercent, probes: 10, lastLost: null });
    const health = { targets: [target(2, 10), target(4, 0), target(null, 100)] } as unknown as UplinkHealthSnapshot;
    expect(lineQuality(health)).toEqual({ rttMs: 3, lossPercent: 100 });
    expect(lineQuality(null)).toEqual({ rttMs: null, lossPercent: 0 });
  });
});

describe('the web config', () => {
  const BASE = 'lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }\nuplinks: [{ name: isp1, interface: ppp0 }]\n';

  test('listen and token_file; absent: no dashboard', () => {
    expect(parseConfig(`${BASE}web: { listen: "127.0.0.1:8080" }\n`, 't.yaml').web).toEqual({ host: '127.0.0.1', port: 8080, tokenFile: null });
    expect(parseConfig(`${BASE}web: { listen: "198.18.0.1:443", token_file: /etc/dispatcher/web.token }\n`, 't.yaml').web).toEqual({ host: '198.18.0.1', port: 443, tokenFile: '/etc/dispatcher/web.token' });
    expect(parseConfig(BASE, 't.yaml').web).toBeUndefined();
  });

  test('beyond loopback without a token, a bad address or a relative token path: refused with the field and a fix', () => {
    expect(problemsOf(`${BASE}web: { listen: "0.0.0.0:8080" }\n`)).toEqual([
      { field: 'web.token_file', problem: 'the dashboard listens on 0.0.0.0:8080, beyond this host, with no token', fix: expect.stringContaining('openssl rand -hex 32') },
    ]);
    expect(problemsOf(`${BASE}web: { listen: "localhost:80" }\n`)[0]).toMatchObject({ field: 'web.listen', problem: '"localhost:80" is not address:port' });
    expect(problemsOf(`${BASE}web: { listen: "127.0.0.1:8080", token_file: web.token }\n`)[0]).toMatchObject({ field: 'web.token_file', problem: 'must be an absolute path, not "web.token"' });
  });
});

describe('the web server', () => {
  let server: WebServer | null = null;
  const dir: string | null = null;
  afterEach(async () => {
    await server?.close();
    server = null;
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const TOKEN = '0123456789abcdef0123';
  const asked: string[] = [];
  const routes = (overrides: Partial<WebRoutes> = {}): WebRoutes => ({
    assets: new Map([['/index.html', { type: 'text/html; charset=utf-8', body: Buffer.from('<p>page</p>') }]]),
    token: TOKEN,
    readsNeedToken: false,
    get: async (path) => {
      if (path === '/api/bad') throw new RequestError('offset: "x" is not a whole number');
      if (path === '/api/broken') throw new Error('the kernel said no');
      return { path };
    },
    post: async (path, body) => {
      asked.push(`${path} ${JSON.stringify(body)}`);
      return { done: true };
    },
    stream: (send) => {
      send('status', { clients: 3 });
      const timer = setTimeout(() => send('event', { seq: 1 }), 20);
      return () => clearTimeout(timer);
    },
    ...overrides,
  });

  async function open(r: WebRoutes): Promise<number> {
    server = await listenWeb('127.0.0.1', 0, r, silent);
    return Number(server.listen.split(':')[1]);
  }

  interface Answer {
    status: number;
    headers: Record<string, string | string[] | undefined>;
    body: string;
  }

  function ask(port: number, path: string, options: { method?: string; headers?: Record<string, string>; body?: string; until?: (body: string) => boolean } = {}): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers }, (response) => {
        let body = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          body += chunk;
          if (options.until?.(body)) {
            response.destroy();
            resolve({ status: response.statusCode ?? 0, headers: response.headers, body });
          }
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body }));
      });
      req.on('error', reject);
      req.end(options.body);
    });
  }

  test('the page from memory with a strict content security policy; reads open on loopback; unknown paths 404', async () => {
    const port = await open(routes());
    const page = await ask(port, '/');
    expect(page).toMatchObject({ status: 200, body: '<p>page</p>' });
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    expect(await ask(port, '/api/overview?x=1')).toMatchObject({ status: 200, body: '{"path":"/api/overview"}' });
    expect((await ask(port, '/etc/passwd')).status).toBe(404);
    expect((await ask(port, '/api/bad')).body).toBe('{"error":"offset: \\"x\\" is not a whole number"}');
    expect((await ask(port, '/api/bad')).status).toBe(400);
    expect(await ask(port, '/api/broken')).toMatchObject({ status: 500, body: '{"error":"the daemon failed to answer (its log says why)"}' });
    expect((await ask(port, '/api/x', { method: 'DELETE' })).status).toBe(405);
  });

  test('gzipped for a browser that takes it, when worth it', async () => {
    const big = Buffer.from('<p>line</p>\n'.repeat(1000));
    const port = await open(routes({ assets: new Map([['/index.html', { type: 'text/html; charset=utf-8', body: big }]]) }));
    const zipped = await new Promise<{ encoding: string | undefined; body: Buffer }>((resolve, reject) => {
      request({ host: '127.0.0.1', port, path: '/', headers: { 'accept-encoding': 'gzip, deflate' } }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ encoding: response.headers['content-encoding'], body: Buffer.concat(chunks) }));
      })
        .on('error', reject)
        .end();
    });
    expect(zipped.encoding).toBe('gzip');
    expect(zipped.body.length).toBeLessThan(big.length / 10);
    expect(gunzipSync(zipped.body)).toEqual(big);
    const plain = await ask(port, '/');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toBe(big.toString());
    // Small answers are not worth it.
    expect((await ask(port, '/api/overview', { headers: { 'accept-encoding': 'gzip' } })).headers['content-encoding']).toBeUndefined();
  });

  test('actions need the token (compared whole); without a token file they are off; reads need it beyond loopback', async () => {
    const port = await open(routes());
    const post = (headers: Record<string, string>): Promise<Answer> => ask(port, '/api/rebalance', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"dry":1}' });
    expect(await post({})).toMatchObject({ status: 401, body: '{"error":"this needs the token (web.token_file)"}' });
    expect((await post({ authorization: `Bearer ${TOKEN.slice(0, -1)}` })).status).toBe(401);
    expect((await post({ authorization: `Bearer ${TOKEN}x` })).status).toBe(401);
    expect(asked).toEqual([]);
    expect(await post({ authorization: `Bearer ${TOKEN}` })).toMatchObject({ status: 200, body: '{"done":true}' });
    expect(asked).toEqual(['/api/rebalance {"dry":1}']);
    const big = await ask(port, '/api/assign', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x'.repeat(20_000) });
    expect(big.status).toBe(413);
    expect(asked).toHaveLength(1);
    expect((await post({})).headers['www-authenticate']).toBe('Bearer realm="dispatcher"');
    await server?.close();

    const off = await open(routes({ token: null }));
    expect(await ask(off, '/api/rebalance', { method: 'POST' })).toMatchObject({ status: 403, body: expect.stringContaining('set web.token_file') });
    await server?.close();

    const guarded = await open(routes({ readsNeedToken: true }));
    expect((await ask(guarded, '/api/overview')).status).toBe(401);
    expect((await ask(guarded, '/api/overview', { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    // The page itself loads (it then asks for the token).
    expect((await ask(guarded, '/')).status).toBe(200);
  });

  test('only an address or localhost as Host: a DNS name pointed at loopback is refused (rebinding)', async () => {
    const port = await open(routes());
    expect((await ask(port, '/api/overview', { headers: { host: 'evil.example:8080' } })).status).toBe(421);
    expect((await ask(port, '/api/overview', { headers: { host: 'localhost:8080' } })).status).toBe(200);
    expect((await ask(port, '/api/overview', { headers: { host: '[::1]:8080' } })).status).toBe(200);
  });

  test('the stream: server-sent events, each a name and one JSON data line, from the number the page asks for; stopped when the page goes', async () => {
    let stopped = false;
    let from = -1;
    const port = await open(
      routes({
        stream: (send, after) => {
          from = after;
          send('status', { clients: 3 });
          setTimeout(() => send('event', { seq: 1 }), 20);
          return () => void (stopped = true);
        },
      }),
    );
    const answer = await ask(port, '/api/stream?after=7', { until: (body) => body.includes('event: event') && body.endsWith('\n\n') });
    expect(from).toBe(7);
    expect(answer.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(answer.body).toBe(': dispatcher\n\nevent: status\ndata: {"clients":3}\n\nevent: event\ndata: {"seq":1}\n\n');
    for (let i = 0; i < 100 && !stopped; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    expect(stopped).toBe(true);
  });

  test("the page's files", async () => {
    const assets = await readAssets();
    expect([...assets.keys()].sort()).toEqual(['/app.js', '/favicon.svg', '/index.html', '/style.css']);
    expect(assets.get('/app.js')?.type).toBe('text/javascript; charset=utf-8');
    // The page loads nothing from elsewhere.
    for (const [, asset] of assets) expect(asset.body.toString()).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  test('nothing a request sends ends the daemon: a path that is not one, a body too large, a failing stream', async () => {
    const port = await open(
      routes({
        stream: () => {
          throw new Error('status failed');
        },
      }),
    );
    // A raw request line node's URL parser refuses.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => socket.end('GET //[ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    const big = await ask(port, '/api/assign', { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x'.repeat(20_000) });
    expect(big).toMatchObject({ status: 413, body: '{"error":"request body larger than 16384 bytes"}' });
    const broken = await ask(port, '/api/stream');
    expect(broken).toMatchObject({ status: 200, body: ': dispatcher\n\n: status failed\n\n' });
    // Still answering.
    expect((await ask(port, '/api/overview')).status).toBe(200);
  });

  test('new routes (a reload with a new token) take over without closing the socket', async () => {
    const port = await open(routes());
    (server as WebServer).use(routes({ token: 'fedcba9876543210fedc' }));
    const post = (token: string): Promise<Answer> => ask(port, '/api/rebalance', { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect((await post(TOKEN)).status).toBe(401);
    expect((await post('fedcba9876543210fedc')).status).toBe(200);
  });
});

describe('the token file', () => {
  let dir: string | null = null;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('read when the config is loaded: missing, short or readable by others is refused with the field and a fix', async () => {
    dir = await mkdtemp(join(tmpdir(), 'dsp-web-'));
    const config = join(dir, 'config.yaml');
    const withToken = async (name: string): Promise<string> => {
      await writeFile(config, `lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }\nuplinks: [{ name: isp1, interface: ppp0 }]\nweb: { listen: "127.0.0.1:8080", token_file: ${join(dir as string, name)} }\n`);
      return loadConfig(config).then(
        () => 'accepted',
        (error: Error) => error.message,
      );
    };
    await writeFile(join(dir, 'good'), '0123456789abcdef0123\nsecond line\n', { mode: 0o600 });
    await writeFile(join(dir, 'short'), 'abc\n', { mode: 0o600 });
    await writeFile(join(dir, 'open'), '0123456789abcdef0123\n', { mode: 0o644 });
    expect(await withToken('good')).toBe('accepted');
    expect(await withToken('short')).toContain('web.token_file: ' + join(dir, 'short') + ' holds no token of 16 characters or more — write one into a file only root reads');
    expect(await withToken('open')).toContain(`can be read by other users (mode 644) — chmod 600 ${join(dir, 'open')}`);
    expect(await withToken('missing')).toContain('cannot read');
  });
});

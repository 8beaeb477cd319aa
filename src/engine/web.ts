// What the web dashboard's API answers (system/web-server.ts serves it):
//
//   GET  /api/overview           status, the lines' last hour, the newest events
//   GET  /api/clients?q=&offset=&order=address|bytes
//                                one page of the clients table, filtered
//   GET  /api/explain?ip=        explain, as `dispatcher explain` says it
//   GET  /api/events?after=&started=  the timeline after an event number
//   GET  /api/stream?after=      server-sent events: first the events after
//                                `after`, then `event` as they happen, `status`
//                                (just after each event, and every 2 s), `sample`
//   POST /api/rebalance | /api/assign {ip, uplink} | /api/release {ip}
//        /api/line {uplink, state: down|up}  (with the token)
//
// rebalance, assign and release go through the control protocol's own
// handlers and request checks, so the page can do nothing the CLI could not,
// and is refused the same way; /api/line forces the line's verdict as ppp's
// ip-down does (the verdict moves its pool). Status is computed once per
// tick for all open pages, never in the turn that noted an event.

import { type ClientOrder, clientTable } from '../core/client-table.js';
import { explanationText } from '../core/explain.js';
import type { Timeline } from '../core/timeline.js';
import { RequestError } from '../model/errors.js';
import { type ControlRequest, parseRequest, type Status } from '../schema/control.js';
import type { Clock, TimerHandle } from '../system/clock.js';
import type { Logger } from '../system/logger.js';
import { type Asset, NotFound, type WebRoutes } from '../system/web-server.js';
import { eventsAfter, startAfter } from './events.js';
import { dispatch, type Handlers } from './handlers.js';
import type { ClientBytes } from './client-bytes.js';
import type { HealthMonitor } from './health.js';
import type { LineHistory } from './line-history.js';
import type { Reconciler } from './reconciler.js';
import type { DaemonStatus } from './status.js';

/** How often open pages are sent the status while it changes (an event sends it at once). */
const STATUS_EVERY_MS = 2_000;

export interface WebDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly status: DaemonStatus;
  readonly reconciler: Reconciler;
  readonly health: HealthMonitor;
  readonly timeline: Timeline;
  readonly history: LineHistory;
  readonly clientBytes: ClientBytes;
  readonly handlers: Handlers;
}

type Send = (event: string, data: unknown) => void;

export function webRoutes(deps: WebDeps, assets: ReadonlyMap<string, Asset>, token: string | null, readsNeedToken: boolean): WebRoutes {
  const pages = new Set<Send>();
  let ticker: TimerHandle | null = null;
  let lastSent = '';
  let unsubscribe: (() => void)[] = [];
  let statusDue = false;
  const sendStatus = (): void => {
    statusDue = false;
    try {
      const status: Status = deps.status.status();
      const text = JSON.stringify(status);
      if (text === lastSent) return;
      lastSent = text;
      for (const send of pages) send('status', status);
    } catch (error) {
      deps.log.warn('the dashboard could not read the status', { error: (error as Error).message });
    }
  };
  const open = (): void => {
    ticker = deps.clock.every(STATUS_EVERY_MS, sendStatus);
    unsubscribe = [
      deps.timeline.subscribe((event) => {
        for (const send of pages) send('event', event);
        // The page sees a verdict at once, not at the next tick; but after the turn that noted it (a failover's first).
        if (!statusDue) deps.clock.defer(sendStatus);
        statusDue = true;
      }),
      deps.history.subscribe((samples) => {
        for (const send of pages) send('sample', samples);
      }),
    ];
  };
  const close = (): void => {
    deps.clock.clear(ticker);
    ticker = null;
    for (const stop of unsubscribe) stop();
    unsubscribe = [];
  };

  return {
    assets,
    token,
    readsNeedToken,
    get: async (path, query) => {
      switch (path) {
        case '/api/overview':
          return { status: deps.status.status(), history: deps.history.all(), events: deps.timeline.since(0, 200).slice(), started: deps.timeline.started, actions: token !== null };
        case '/api/clients': {
          // The request's own fields first: a bad one is refused without reading every client's counters.
          const offset = wholeNumber(query.get('offset'), 'offset');
          const order = clientOrder(query.get('order'));
          return clientTable(deps.reconciler.clients, deps.reconciler.lastSeen, query.get('q') ?? '', offset, await deps.clientBytes.get(), order);
        }
        case '/api/explain': {
          const request = parseAs('explain', { ip: query.get('ip') ?? '' });
          const result = await deps.handlers.explain(request);
          return { ...result, text: explanationText(request.ip, result) };
        }
        case '/api/events': {
          const started = query.get('started');
          return eventsAfter(deps.timeline, deps.clock, { after: wholeNumber(query.get('after'), 'after'), waitMs: 0, ...(started ? { started } : {}) });
        }
        default:
          throw new NotFound(`no ${path} here`);
      }
    },
    post: async (path, body) => {
      const fields = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
      switch (path) {
        case '/api/rebalance':
          return dispatch(deps.handlers, parseAs('rebalance', {}));
        case '/api/assign':
          return dispatch(deps.handlers, parseAs('assign', { ip: fields.ip, uplink: fields.uplink }));
        case '/api/release':
          return dispatch(deps.handlers, parseAs('release', { ip: fields.ip }));
        case '/api/line':
          return line(deps, fields.uplink, fields.state);
        default:
          throw new NotFound(`no ${path} here`);
      }
    },
    stream: (send, after) => {
      // Read first: if it fails, the page is not left registered.
      const status = deps.status.status();
      if (pages.size === 0) open();
      pages.add(send);
      // What happened between the page's overview and this stream (all of it, from a number of a daemon before a restart).
      for (const event of deps.timeline.since(startAfter(deps.timeline, after))) send('event', event);
      send('status', status);
      return () => {
        pages.delete(send);
        if (pages.size === 0) close();
      };
    },
  };
}

/** A request checked as the control socket checks it. */
function parseAs<C extends ControlRequest['cmd']>(cmd: C, fields: Record<string, unknown>): Extract<ControlRequest, { cmd: C }> {
  return parseRequest(JSON.stringify({ cmd, ...fields })) as Extract<ControlRequest, { cmd: C }>;
}

function wholeNumber(text: string | null, name: string): number {
  if (text === null || text === '') return 0;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0) throw new RequestError(`${name}: ${JSON.stringify(text.slice(0, 20))} is not a whole number`);
  return value;
}

function clientOrder(text: string | null): ClientOrder {
  if (text === null || text === '' || text === 'address') return 'address';
  if (text === 'bytes') return 'bytes';
  throw new RequestError(`order: ${JSON.stringify(text.slice(0, 20))} is not address or bytes`);
}

/** The operator takes a line out of service (as ppp ip-down does) or gives it back to its probes. */
async function line(deps: WebDeps, uplink: unknown, state: unknown): Promise<{ uplink: string; state: 'down' | 'up' }> {
  const known = deps.reconciler.effectiveConfig.uplinks.find((u) => u.name === uplink);
  if (!known) throw new RequestError(`uplink: ${JSON.stringify(uplink)?.slice(0, 40)} is not a configured uplink`);
  if (state !== 'down' && state !== 'up') throw new RequestError('state: write "down" (take the line out of service) or "up" (its probes decide again)');
  deps.health.force(known.name, state === 'down' ? 'taken down from the web dashboard' : null);
  deps.timeline.note('operator', state === 'down' ? `${known.name} taken out of service from the web dashboard` : `${known.name} given back to its probes from the web dashboard`, known.name);
  return { uplink: known.name, state };
}

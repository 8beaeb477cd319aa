// The state channel of a pair: TCP on the sync link, one JSON object per
// line, every message authenticated with the key both gateways share.
//   listener → sender: {"nonce": N}                     (fresh per connection)
//   sender → listener: {"auth": HMAC(key, "auth:" N)}
//   listener → sender: {"welcome": true}                (the key is right)
//   sender → listener: {"seq": S, "body": "...", "mac": HMAC(key, N ":" S ":" body)}
//   listener → sender: {"ack": S}                       (applied)
//   sender ⇄ listener: {"beat": B}                      (every second, answered:
//                      a sender that hears nothing for 3 s drops the connection
//                      and connects again: a cut sync link is noticed, not
//                      hidden in TCP's retransmissions)
// A wrong key is answered {"refused": "wrong key"} and the connection closed;
// a message whose mac is wrong, or whose seq does not grow, closes it. The
// nonce makes a recorded connection useless to replay. Every gateway of a
// pair listens; the master connects to its peer and sends.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import type { Logger } from './logger.js';

const mac = (key: string, text: string): string => createHmac('sha256', key).update(text).digest('hex');

function sameMac(a: unknown, b: string): boolean {
  if (typeof a !== 'string' || a.length !== b.length) return false;
  return timingSafeEqual(Buffer.from(a), Buffer.from(b));
}

/** The longest line read before the peer proved the key, and after (a whole table of a million clients fits). */
const MAX_LINE_UNPROVEN = 4096;
const MAX_LINE = 256 * 1024 * 1024;

/**
 * Lines of JSON in, each parsed (null for anything else, and once for a line
 * longer than `max()`, after which nothing more is read: the caller closes).
 */
function lines(socket: Socket, max: () => number, onLine: (value: Record<string, unknown> | null) => void): void {
  const decoder = new StringDecoder('utf8');
  // The pieces of the line being read, kept apart until its end comes: each chunk is looked at once.
  let pieces: string[] = [];
  let length = 0;
  let over = false;
  const line = (text: string): void => {
    try {
      const value: unknown = JSON.parse(text);
      onLine(typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : null);
    } catch {
      onLine(null);
    }
  };
  socket.on('data', (chunk: Buffer) => {
    if (over) return;
    let text = decoder.write(chunk);
    for (let end = text.indexOf('\n'); end !== -1 && !over; end = text.indexOf('\n')) {
      pieces.push(text.slice(0, end));
      const whole = pieces.join('');
      pieces = [];
      length = 0;
      text = text.slice(end + 1);
      line(whole);
    }
    if (over) return;
    pieces.push(text);
    length += text.length;
    if (length > max()) {
      over = true;
      pieces = [];
      onLine(null);
    }
  });
}

/** A connection that has heard nothing from the other side this long is dropped and made again (sender), or counts as gone (listener). */
const SILENCE_MS = 3000;

export interface ChannelListener {
  /** Whether an authenticated peer spoke in the last SILENCE_MS (its heartbeats come every second): the master's channel to us is up. */
  hearing(): boolean;
  close(): Promise<void>;
}

/**
 * Listens for the peer's messages (from `peer` alone: the LAN reaches this
 * address too); `received` is given each authenticated body in order, and
 * its promise's end acknowledges it — or, resolving false (not taken: this
 * gateway is master now), closes the connection unacknowledged, so the
 * sender connects again and starts with its whole table.
 */
export function listenHaChannel(host: string, port: number, peer: string, key: string, received: (body: string) => Promise<boolean>, refused: (from: string, why: string) => void, log: Logger): Promise<ChannelListener> {
  let heardAt: number | null = null;
  const open = new Set<Socket>();
  let current: Socket | null = null;
  const server: Server = createServer((socket) => {
    const address = (socket.remoteAddress ?? '?').replace(/^::ffff:/, '');
    const from = `${address}:${socket.remotePort ?? '?'}`;
    const nonce = randomBytes(16).toString('hex');
    let authenticated = false;
    let closed = false;
    let last = -1;
    let queue = Promise.resolve();
    open.add(socket);
    socket.on('close', () => {
      open.delete(socket);
      if (current === socket) current = null;
    });
    const refuse = (why: string): void => {
      // Lines already read behind the one refused are not looked at.
      if (closed) return;
      closed = true;
      refused(from, why);
      socket.end(`${JSON.stringify({ refused: why })}\n`);
      socket.destroy();
    };
    socket.on('error', () => socket.destroy());
    // Anyone else (the LAN reaches this address too) is not answered, logged or reported: it could flood them.
    if (address !== peer) {
      socket.destroy();
      return;
    }
    // The key proven at once, or the connection goes; a connection silent for longer than the heartbeats allow is gone too (a half-open one after a cut).
    const deadline = setTimeout(() => refuse('no key proven in time'), SILENCE_MS);
    socket.on('close', () => clearTimeout(deadline));
    socket.setTimeout(2 * SILENCE_MS, () => socket.destroy());
    socket.setNoDelay(true);
    socket.write(`${JSON.stringify({ nonce })}\n`);
    lines(
      socket,
      () => (authenticated ? MAX_LINE : MAX_LINE_UNPROVEN),
      (message) => {
        if (closed) return;
        if (!message) return refuse('not a message');
        if (!authenticated) {
          if (!sameMac(message.auth, mac(key, `auth:${nonce}`))) return refuse('wrong key');
          authenticated = true;
          clearTimeout(deadline);
          // The peer connected again (its old connection half-open, say): only the newest is listened to.
          current?.destroy();
          current = socket;
          socket.write(`${JSON.stringify({ welcome: true })}\n`);
          return;
        }
        handle(message);
      },
    );
    const handle = (message: Record<string, unknown>): void => {
      heardAt = Date.now();
      if (typeof message.beat === 'number') {
        socket.write(`${JSON.stringify({ beat: message.beat })}\n`);
        return;
      }
      const { seq, body } = message;
      if (typeof seq !== 'number' || typeof body !== 'string' || seq <= last || !sameMac(message.mac, mac(key, `${nonce}:${seq}:${body}`))) {
        refuse('a message that is not authentic');
        return;
      }
      last = seq;
      queue = queue.then(async () => {
        // Read before this connection was dropped (a newer one, a message not taken, a stop): not applied, its table comes again.
        if (socket.destroyed) return;
        const taken = await received(body).catch((error: unknown) => {
          log.error('the peer’s message could not be applied', { error: (error as Error).message });
          return true;
        });
        if (!taken) socket.destroy();
        else if (!socket.destroyed) socket.write(`${JSON.stringify({ ack: seq })}\n`);
      });
    };
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve({
        hearing: () => heardAt !== null && Date.now() - heardAt < SILENCE_MS,
        close: () => {
          // server.close waits for every connection to end, and a sender's heartbeats never let it.
          const closed = new Promise<void>((done) => server.close(() => done()));
          for (const socket of open) socket.destroy();
          return closed;
        },
      });
    });
  });
}

export interface ChannelSender {
  /** Sends a body once connected (each connection starts with `greeting`'s). */
  send(body: string): void;
  /** Connected and authenticated now. */
  readonly connected: boolean;
  /** The newest acknowledged message's time from send to ack, ms; null before one. */
  readonly lagMs: number | null;
  /** Why the last connection ended, or null. */
  readonly problem: string | null;
  stop(): void;
}

/**
 * Connects to the peer and keeps connecting (every `retryMs`) until stopped;
 * on every new connection it first sends `greeting()` (the whole table),
 * then each body given to send.
 */
export function sendHaChannel(peer: string, port: number, key: string, greeting: () => string, log: Logger, retryMs = 1000): ChannelSender {
  let socket: Socket | null = null;
  let connected = false;
  let stopped = false;
  let seq = 0;
  let nonce = '';
  let lagMs: number | null = null;
  let problem: string | null = null;
  const sentAt = new Map<number, number>();
  let retry: NodeJS.Timeout | null = null;
  let heard = 0;
  let beats = 0;
  const beat = setInterval(() => {
    if (!socket) return;
    // Connecting counts too: a SYN into a cut link would otherwise wait out TCP's retries.
    if (Date.now() - heard > SILENCE_MS) {
      problem = `nothing heard from ${peer} for ${SILENCE_MS / 1000} s`;
      socket.destroy();
      return;
    }
    if (connected) socket.write(`${JSON.stringify({ beat: ++beats })}\n`);
  }, retryMs);
  const write = (body: string): void => {
    if (!socket || !connected) return;
    seq += 1;
    sentAt.set(seq, Date.now());
    socket.write(`${JSON.stringify({ seq, body, mac: mac(key, `${nonce}:${seq}:${body}`) })}\n`);
  };
  const open = (): void => {
    if (stopped) return;
    const s = connect({ host: peer, port });
    socket = s;
    heard = Date.now();
    s.setNoDelay(true);
    s.on('error', (error) => {
      // A refusal says more than the reset that follows it.
      if (!problem?.startsWith('refused')) problem = error.message;
    });
    s.on('close', () => {
      if (connected) log.warn('the channel to the peer closed', { peer, problem });
      connected = false;
      socket = null;
      sentAt.clear();
      if (!stopped) retry = setTimeout(open, retryMs);
    });
    lines(
      s,
      () => MAX_LINE_UNPROVEN,
      (message) => {
        if (!message) return;
        heard = Date.now();
        if (typeof message.nonce === 'string' && !connected) {
          nonce = message.nonce;
          seq = 0;
          s.write(`${JSON.stringify({ auth: mac(key, `auth:${nonce}`) })}\n`);
          return;
        }
        if (message.welcome === true && !connected) {
          connected = true;
          problem = null;
          log.info('the channel to the peer is up', { peer });
          write(greeting());
          return;
        }
        if (typeof message.refused === 'string') {
          const said = `refused by the peer: ${message.refused}`;
          // Said once, not at every retry.
          if (problem !== said) log.error('the peer refused the channel', { peer, why: message.refused });
          problem = said;
          return;
        }
        if (typeof message.ack === 'number') {
          const at = sentAt.get(message.ack);
          if (at !== undefined) lagMs = Date.now() - at;
          for (const n of sentAt.keys()) if (n <= message.ack) sentAt.delete(n);
        }
      },
    );
  };
  open();
  return {
    send: write,
    get connected() {
      return connected;
    },
    get lagMs() {
      return lagMs;
    },
    get problem() {
      return problem;
    },
    stop() {
      stopped = true;
      clearInterval(beat);
      if (retry) clearTimeout(retry);
      socket?.destroy();
    },
  };
}

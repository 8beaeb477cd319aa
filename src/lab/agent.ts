// The lab's hosts, run inside network namespaces with `ip netns exec NS node agent.js …`:
//
//   serve                     the internet host, on every local address:
//                               HTTP :80 answers {"source": "<address it sees>"}
//                                 (/ip: the address as plain text; /garbage: not an address);
//                               TCP :7 answers each line with "<source> <line>";
//                               UDP :9000 prints "udp <tag> <seq> <source> <epoch ms>" per datagram;
//                               SMTP :2525 prints "mail <from> <subject>" per message
//   serve-tls CERT KEY        HTTPS :443 on every local address with that certificate (PEM files):
//                               answers with the address it sees, prints "https <path> <source>"
//   get URL [FROM]            prints the body of one HTTP GET (exit 1 on failure), optionally
//                             from a given local address
//   hello ADDRESS             one UDP datagram to ADDRESS:9, so the gateway learns this client
//                             (IPv4 or IPv6: the serve listeners, stream and hello take either)
//   session ADDRESS PORT      a long-lived TCP connection: each stdin line is sent, each answer printed
//   stream ADDRESS TAG RATE SECONDS
//                             numbered UDP datagrams to ADDRESS:9000 from one socket, RATE per second
//   fan ADDRESSES COUNT PAUSE_MS
//                             COUNT TCP connections to :7 of each of the comma-separated ADDRESSES,
//                             32 at a time; each sends a line, waits PAUSE_MS, sends another, and
//                             prints "fan <address> <source seen first> <source seen second>"
//                             (or "fan <address> error <why>")
//   dial IF LOCAL PEER ISP ISP_IF
//                             a point-to-point session as pppd brings one up (the lab's kernel has
//                             no PPP): IF up with LOCAL peer PEER here, ISP_IF in namespace ISP the
//                             other way round (a pair's line only the master holds: ha_connect)
//   hangup IF ISP ISP_IF      that session's end: both sides' addresses gone, both links down
//   forward SOCKET HOST:PORT  each connection to the unix socket SOCKET is joined to HOST:PORT
//                             (how the lab's host reaches the gateway's loopback-only web page)
//
// Only node itself is needed, so the lab runs on a machine without curl or socat.

import { createSocket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, get as httpGet, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { connect, createServer, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { ExecaRunner } from '../system/exec.js';
import { splice } from './splice.js';

const ECHO_PORT = 7;
const HELLO_PORT = 9;
const STREAM_PORT = 9000;
const SMTP_PORT = 2525;

/** Just enough SMTP to receive a notification mail and say who sent what. */
function smtpSession(socket: Socket): void {
  let from = '';
  let inData = false;
  let subject = '';
  /** Still in the Subject header: a long one is folded onto lines that start with white space (RFC 5322 §2.2.3). */
  let inSubject = false;
  socket.on('error', () => socket.destroy());
  socket.write('220 lab ESMTP\r\n');
  createInterface({ input: socket, crlfDelay: Infinity }).on('line', (line) => {
    if (inData) {
      if (line === '.') {
        inData = false;
        process.stdout.write(`mail ${from} ${subject}\n`);
        socket.write('250 queued\r\n');
      } else if (inSubject && /^[ \t]/.test(line)) {
        subject += line.replace(/^[ \t]+/, ' ').trimEnd();
      } else if (/^subject:/i.test(line) && !subject) {
        subject = line.slice(8).trim();
        inSubject = true;
      } else {
        inSubject = false;
      }
      return;
    }
    const verb = line.slice(0, 4).toUpperCase();
    if (verb === 'EHLO' || verb === 'HELO') socket.write('250 lab\r\n');
    else if (verb === 'MAIL') {
      from = /<([^>]*)>/.exec(line)?.[1] ?? '';
      subject = '';
      inSubject = false;
      socket.write('250 ok\r\n');
    } else if (verb === 'RCPT') socket.write('250 ok\r\n');
    else if (verb === 'DATA') {
      inData = true;
      socket.write('354 go ahead\r\n');
    } else if (verb === 'QUIT') socket.end('221 bye\r\n');
    else socket.write('250 ok\r\n');
  });
}

function serve(): void {
  const plain = (address: string | undefined): string | undefined => address?.replace(/^::ffff:/, '');
  const answer = (request: IncomingMessage, response: ServerResponse): void => {
    const source = plain(request.socket.remoteAddress);
    response.setHeader('connection', 'close');
    // Every request is a line (`http PATH SOURCE`): tests see by which uplink a probe arrived.
    process.stdout.write(`http ${request.url} ${source}\n`);
    // /status/NNN answers with that status, as a failing health endpoint does.
    const status = /^\/status\/([1-5][0-9][0-9])$/.exec(request.url ?? '');
    if (status) return void response.writeHead(Number(status[1]), { 'content-type': 'text/plain' }).end(`status ${status[1]}\n`);
    // /ip answers as plain-text "what is my address" services do; /garbage as a broken one.
    if (request.url === '/ip') return void response.setHeader('content-type', 'text/plain').end(`${source}\n`);
    if (request.url === '/garbage') return void response.setHeader('content-type', 'text/html').end('<html>not an address; $(reboot)</html>\n');
    response.setHeader('content-type', 'application/json');
    response.end(`${JSON.stringify({ source })}\n`);
  };
  const echo = (socket: Socket): void => {
    const source = plain(socket.remoteAddress);
    socket.on('error', () => socket.destroy());
    createInterface({ input: socket }).on('line', (line) => socket.write(`${source} ${line}\n`));
  };
  createHttpServer(answer).listen(80, '0.0.0.0');
  createServer(echo).listen(ECHO_PORT, '0.0.0.0');
  const datagram = (message: Buffer, remote: { address: string }): void => {
    const [tag, seq] = message.toString().split(' ');
    process.stdout.write(`udp ${tag} ${seq} ${remote.address} ${Date.now()}\n`);
  };
  createSocket('udp4').on('message', datagram).bind(STREAM_PORT, '0.0.0.0');
  createServer(smtpSession).listen(SMTP_PORT, '0.0.0.0');
  // The same on IPv6 (the dual-stack lab), beside IPv4's; a kernel without IPv6 just has no second listener.
  const ignore = (): void => undefined;
  createHttpServer(answer).on('error', ignore).listen({ port: 80, host: '::', ipv6Only: true });
  createServer(echo).on('error', ignore).listen({ port: ECHO_PORT, host: '::', ipv6Only: true });
  createSocket({ type: 'udp6', ipv6Only: true }).on('message', datagram).on('error', ignore).bind(STREAM_PORT, '::');
  process.stdout.write('serving\n');
}

/** A UDP socket of the address's family. */
const udpFor = (address: string) => createSocket(address.includes(':') ? 'udp6' : 'udp4');

/** Sends RATE numbered datagrams per second for SECONDS, all from one socket (one conntrack entry). */
function stream(address: string, tag: string, rate: number, seconds: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = udpFor(address);
    const total = Math.round(rate * seconds);
    const started = Date.now();
    let seq = 0;
    const tick = (): void => {
      // Sends are paced by the clock, not by timer drift.
      const due = Math.min(total, Math.floor(((Date.now() - started) * rate) / 1000) + 1);
      while (seq < due) socket.send(`${tag} ${++seq}`, STREAM_PORT, address, () => undefined);
      if (seq >= total) {
        setTimeout(() => {
          socket.close();
          resolve();
        }, 50);
      } else {
        setTimeout(tick, Math.max(1, Math.floor(1000 / rate / 2)));
      }
    };
    tick();
  });
}

function get(url: string, localAddress?: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = httpGet(url, { timeout: 5000, ...(localAddress ? { localAddress } : {}) }, (response) => {
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => process.stdout.write(chunk));
      response.on('end', () => resolve());
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

function hello(address: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = udpFor(address);
    socket.send('hello', HELLO_PORT, address, (error) => {
      socket.close();
      if (error) reject(error);
      else resolve();
    });
  });
}

function session(address: string, port: number): void {
  const socket = connect(port, address);
  socket.setNoDelay(true);
  socket.on('connect', () => process.stdout.write('connected\n'));
  socket.on('error', (error) => {
    process.stdout.write(`error ${error.message}\n`);
    process.exit(1);
  });
  socket.on('close', () => process.exit(0));
  createInterface({ input: socket }).on('line', (line) => process.stdout.write(`${line}\n`));
  createInterface({ input: process.stdin }).on('line', (line) => socket.write(`${line}\n`));
}

/** One connection of `fan`: the sources the echo server saw for its two lines. */
function twoLines(address: string, pauseMs: number): Promise<[string, string]> {
  return new Promise((resolve, reject) => {
    const socket = connect(ECHO_PORT, address);
    const seen: string[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('timed out')), 10_000 + pauseMs);
    socket.setNoDelay(true);
    socket.on('connect', () => socket.write('first\n'));
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    createInterface({ input: socket }).on('line', (line) => {
      seen.push(line.split(' ')[0] as string);
      if (seen.length === 1) setTimeout(() => socket.write('second\n'), pauseMs);
      else {
        clearTimeout(timer);
        socket.end();
        resolve([seen[0] as string, seen[1] as string]);
      }
    });
  });
}

async function fan(addresses: readonly string[], count: number, pauseMs: number): Promise<void> {
  const queue = addresses.flatMap((address) => Array.from({ length: count }, () => address));
  const worker = async (): Promise<void> => {
    for (let address = queue.shift(); address !== undefined; address = queue.shift()) {
      const line = await twoLines(address, pauseMs).then(
        ([first, second]) => `fan ${address} ${first} ${second}`,
        (error: Error) => `fan ${address} error ${error.message}`,
      );
      process.stdout.write(`${line}\n`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

function serveTls(certFile: string, keyFile: string): void {
  createHttpsServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (request, response) => {
    const source = request.socket.remoteAddress?.replace(/^::ffff:/, '');
    process.stdout.write(`https ${request.url} ${source}\n`);
    response.setHeader('connection', 'close');
    response.setHeader('content-type', 'text/plain');
    response.end(`${source}\n`);
  }).listen(443, '0.0.0.0', () => process.stdout.write('serving tls\n'));
}

function forward(socketPath: string, to: string): void {
  const at = to.lastIndexOf(':');
  createServer((incoming) => splice(incoming, connect(Number(to.slice(at + 1)), to.slice(0, at)))).listen(socketPath, () => process.stdout.write('forwarding\n'));
}

/** `ip -batch` of these lines, here or in namespace ns. */
async function ip(ns: string | null, ...lines: string[]): Promise<void> {
  await new ExecaRunner().run(['ip', ...(ns ? ['-n', ns] : []), '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function dial(iface: string, local: string, peer: string, isp: string, ispIface: string): Promise<void> {
  // The provider takes one session per account: a new one replaces a dead gateway's, which never hung up (the route).
  await ip(isp, `addr replace ${peer} peer ${local} dev ${ispIface}`, `link set ${ispIface} up`, `route replace ${local} dev ${ispIface}`);
  await ip(null, `addr replace ${local} peer ${peer} dev ${iface}`, `link set ${iface} up`);
}

async function hangup(iface: string, isp: string, ispIface: string): Promise<void> {
  await ip(null, `addr flush dev ${iface}`, `link set ${iface} down`);
  await ip(isp, `addr flush dev ${ispIface}`, `link set ${ispIface} down`);
}

const [command, ...args] = process.argv.slice(2);
const run = async (): Promise<void> => {
  switch (command) {
    case 'serve':
      return serve();
    case 'serve-tls':
      return serveTls(args[0] as string, args[1] as string);
    case 'stream':
      return stream(args[0] as string, args[1] as string, Number(args[2]), Number(args[3]));
    case 'get':
      return get(args[0] as string, args[1]);
    case 'hello':
      return hello(args[0] as string);
    case 'session':
      return session(args[0] as string, Number(args[1]));
    case 'dial':
      return dial(args[0] as string, args[1] as string, args[2] as string, args[3] as string, args[4] as string);
    case 'hangup':
      return hangup(args[0] as string, args[1] as string, args[2] as string);
    case 'forward':
      return forward(args[0] as string, args[1] as string);
    case 'fan':
      return fan((args[0] as string).split(','), Number(args[1]), Number(args[2]));
    default:
      throw new Error(`unknown agent command ${command}`);
  }
};
run().catch((error: Error) => {
  process.stderr.write(`agent ${command}: ${error.message}\n`);
  process.exit(1);
});

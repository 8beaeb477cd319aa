// The lab's hosts, run inside network namespaces with `ip netns exec NS node agent.js …`:
//
//   serve ADDRESS             the internet host: HTTP on :80 answers {"source": "<address it sees>"};
//                             TCP :7 answers each line with "<source> <line>"
//   get URL [FROM]            prints the body of one HTTP GET (exit 1 on failure), optionally
//                             from a given local address
//   hello ADDRESS             one UDP datagram to ADDRESS:9, so the gateway learns this client
//   session ADDRESS PORT      a long-lived TCP connection: each stdin line is sent, each answer printed
//
// Only node itself is needed, so the lab runs on a machine without curl or socat.

import { createSocket } from 'node:dgram';
import { createServer as createHttpServer, get as httpGet } from 'node:http';
import { connect, createServer } from 'node:net';
import { createInterface } from 'node:readline';

const ECHO_PORT = 7;
const HELLO_PORT = 9;

function serve(address: string): void {
  createHttpServer((request, response) => {
    response.setHeader('content-type', 'application/json');
    response.setHeader('connection', 'close');
    response.end(`${JSON.stringify({ source: request.socket.remoteAddress?.replace(/^::ffff:/, '') })}\n`);
  }).listen(80, address);
  createServer((socket) => {
    const source = socket.remoteAddress?.replace(/^::ffff:/, '');
    socket.on('error', () => socket.destroy());
    createInterface({ input: socket }).on('line', (line) => socket.write(`${source} ${line}\n`));
  }).listen(ECHO_PORT, address);
  process.stdout.write(`serving on ${address}\n`);
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
    const socket = createSocket('udp4');
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

const [command, ...args] = process.argv.slice(2);
const run = async (): Promise<void> => {
  switch (command) {
    case 'serve':
      return serve(args[0] ?? '0.0.0.0');
    case 'get':
      return get(args[0] as string, args[1]);
    case 'hello':
      return hello(args[0] as string);
    case 'session':
      return session(args[0] as string, Number(args[1]));
    default:
      throw new Error(`unknown agent command ${command}`);
  }
};
run().catch((error: Error) => {
  process.stderr.write(`agent ${command}: ${error.message}\n`);
  process.exit(1);
});

// The control socket's server side: a unix socket, mode 0600 (root only), speaking
// newline-delimited JSON. One daemon per socket: a live socket means another
// daemon owns it; a dead one (left by a crash) is replaced.

import { chmod, mkdir, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { ConfigError, RequestError } from '../model/errors.js';
import { MAX_REQUEST_BYTES, parseRequest, type ControlRequest, type ControlResponse } from '../schema/control.js';
import type { Logger } from './logger.js';

export class AlreadyRunning extends Error {
  constructor(socket: string) {
    super(`another dispatcher is already running on ${socket}; stop it first (or pass --socket for a separate instance)`);
    this.name = 'AlreadyRunning';
  }
}

/** True when something accepts connections on the socket path. */
export function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

function toResponse(error: unknown): ControlResponse {
  if (error instanceof RequestError) return { ok: false, error: { kind: 'request', message: error.message } };
  if (error instanceof ConfigError) return { ok: false, error: { kind: 'config', message: error.message } };
  return { ok: false, error: { kind: 'internal', message: (error as Error).message } };
}

function serve(socket: Socket, handle: (request: ControlRequest) => Promise<unknown>, log: Logger): void {
  let buffer = '';
  let busy = Promise.resolve();
  socket.setEncoding('utf8');
  socket.setTimeout(60_000, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  const refuse = (): void => {
    socket.end(`${JSON.stringify(toResponse(new RequestError(`request larger than ${MAX_REQUEST_BYTES} bytes`)))}\n`);
    buffer = '';
  };
  socket.on('data', (chunk: string) => {
    if (socket.writableEnded) return;
    buffer += chunk;
    let newline: number;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      if (line.length > MAX_REQUEST_BYTES) return refuse();
      // Answers go out in request order, one at a time per connection.
      busy = busy.then(async () => {
        let response: ControlResponse;
        try {
          response = { ok: true, result: await handle(parseRequest(line)) };
        } catch (error) {
          response = toResponse(error);
          if (response.ok === false && response.error.kind === 'internal') log.error('control request failed', { error: (error as Error).message });
        }
        if (!socket.destroyed && !socket.writableEnded) socket.write(`${JSON.stringify(response)}\n`);
      });
    }
    if (buffer.length > MAX_REQUEST_BYTES) refuse();
  });
}

export interface ControlServer {
  close(): Promise<void>;
}

export async function listenControl(path: string, handle: (request: ControlRequest) => Promise<unknown>, log: Logger): Promise<ControlServer> {
  if (await socketIsLive(path)) throw new AlreadyRunning(path);
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await unlink(path).catch(() => undefined);
  const connections = new Set<Socket>();
  const server: Server = createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serve(socket, handle, log);
  });
  // Created 0600 from the start: no window in which others could connect.
  const oldMask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new AlreadyRunning(path) : error));
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(oldMask);
  }
  await chmod(path, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of connections) socket.destroy();
        void unlink(path).catch(() => undefined);
      }),
  };
}

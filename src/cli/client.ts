// Talking to the running daemon over its control socket.

import { connect } from 'node:net';
import type { ControlRequest, ControlResponse } from '../core/requests.js';
import { EXIT_USAGE, Failure } from './exit.js';

/** The daemon's answer, or null when no daemon listens on the socket. */
export function askDaemon(socketPath: string, request: ControlRequest, timeoutMs = 120_000): Promise<ControlResponse | null> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Failure(`no answer from the daemon on ${socketPath} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      socket.end();
      try {
        resolve(JSON.parse(buffer.slice(0, newline)) as ControlResponse);
      } catch {
        reject(new Failure('the daemon sent an unreadable answer'));
      }
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(null);
      else if (error.code === 'EACCES') reject(new Failure(`permission denied on ${socketPath}: the control socket is root-only`));
      else reject(error);
    });
  });
}

/** The daemon's result; a refused request or config is a usage error (2), anything else a failure (1). */
export function resultOf(response: ControlResponse): unknown {
  if (response.ok) return response.result;
  if (response.error.kind === 'internal') throw new Failure(`the daemon failed: ${response.error.message}`);
  throw new Failure(response.error.message, EXIT_USAGE);
}

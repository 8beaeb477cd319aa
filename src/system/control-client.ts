// Asking the running daemon over its control socket (schema/control.ts):
// one request line, one answer line. The CLI, the ppp hooks, the lab and the
// bench all ask through here, typed by the command they send.

import { connect } from 'node:net';
import { ControlError, RequestError } from '../model/errors.js';
import type { Command, ControlRequest, ControlResponse, RequestOf, ResultOf } from '../schema/control.js';

/** The daemon's answer, or null when no daemon listens on the socket. */
export function askDaemon(socketPath: string, request: ControlRequest, timeoutMs = 120_000): Promise<ControlResponse | null> {
  return new Promise((resolve, reject) => {
    const socket = connect(socketPath);
    let buffer = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new ControlError(`no answer from the daemon on ${socketPath} within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.once('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const newline = buffer.indexOf('\n');
      if (newline < 0) return;
      clearTimeout(timer);
      // Not end(): that waits for the daemon's half of the close, and a daemon
      // busy with the run this request set off (a hook's) closes only when its
      // run yields, which kept the hook process alive ~120 ms longer.
      socket.destroy();
      try {
        resolve(JSON.parse(buffer.slice(0, newline)) as ControlResponse);
      } catch {
        reject(new ControlError('the daemon sent an unreadable answer'));
      }
    });
    // Closed with no answer: the daemon stopped, or gave up on the connection (idle 60 s). After an answer this changes nothing.
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new ControlError(`the daemon on ${socketPath} closed the connection without answering`));
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (error.code === 'ENOENT' || error.code === 'ECONNREFUSED') resolve(null);
      else if (error.code === 'EACCES') reject(new ControlError(`permission denied on ${socketPath}: the control socket is root-only`));
      else reject(error);
    });
  });
}

/** The result of an answer; a refused request or config is a RequestError (usage), a failure inside the daemon a ControlError. */
export function resultOf<C extends Command>(response: ControlResponse): ResultOf<C> {
  if (response.ok) return response.result as ResultOf<C>;
  if (response.error.kind === 'internal') throw new ControlError(`the daemon failed: ${response.error.message}`);
  throw new RequestError(response.error.message);
}

/** The running daemon's typed result for a request, or null when none is running. */
export async function ask<C extends Command>(socketPath: string, request: RequestOf<C>, timeoutMs?: number): Promise<ResultOf<C> | null> {
  const response = await askDaemon(socketPath, request as ControlRequest, timeoutMs);
  return response === null ? null : resultOf<C>(response);
}

// How the machine running the lab reaches the web page of the lab's gateway,
// which listens on the gateway namespace's own loopback: an agent inside the
// namespace joins a unix socket (in the lab's directory: sockets on the file
// system cross network namespaces) to the page, and this process listens on
// the host's 127.0.0.1 and joins each connection to that socket. Nothing
// changes in the host's network: one listening socket on loopback, gone with
// the lab.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Process, Runner } from '../system/exec.js';
import { AGENT, waitFor } from './harness.js';
import { splice } from './splice.js';
import { inNamespace } from './topology.js';

export interface PageForward {
  /** The page as the host opens it. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Forwards 127.0.0.1:`port` on the host (any free port when it is taken) to `to` inside `ns`. */
export async function forwardPage(runner: Runner, ns: string, dir: string, to: string, port: number): Promise<PageForward> {
  const socketPath = join(dir, 'page.sock');
  const lines: string[] = [];
  const agent: Process = runner.spawn(inNamespace(ns, [process.execPath, AGENT, 'forward', socketPath, to]), { onLine: (line) => lines.push(line) });
  await waitFor('the page forwarder', 10_000, async () => (lines.includes('forwarding') ? true : null));
  const open = new Set<Socket>();
  const server: Server = createServer((incoming) => {
    open.add(incoming);
    incoming.once('close', () => open.delete(incoming));
    splice(incoming, connect(socketPath));
  });
  const listen = (at: number): Promise<void> =>
    new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(at, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(port).catch(() => listen(0));
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : port;
  return {
    url: `http://127.0.0.1:${bound}/`,
    stop: async () => {
      // An open page holds its event stream: close() alone would wait for it.
      for (const socket of open) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.stop('SIGKILL');
    },
  };
}

// The optional Prometheus endpoint (`metrics: { listen: 127.0.0.1:9108 }`):
// GET /metrics answers with core/metrics.ts's exposition, rendered per
// request from the daemon's state and the kernel's counters. Anything else is
// 404; a scrape that fails is a 500 with the reason, never a crash.

import { createServer, type Server } from 'node:http';
import type { Logger } from './logger.js';

export interface MetricsServer {
  readonly listen: string;
  close(): Promise<void>;
}

export async function listenMetrics(host: string, port: number, render: () => Promise<string>, log: Logger): Promise<MetricsServer> {
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    render().then(
      (text) => response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
      (error: Error) => {
        log.warn('metrics scrape failed', { error: error.message });
        response.writeHead(500, { 'content-type': 'text/plain' }).end(`${error.message}\n`);
      },
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  log.info('metrics endpoint listening', { listen: `http://${host}:${port}/metrics` });
  return {
    listen: `${host}:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

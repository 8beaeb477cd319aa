// The tcp method: a connection to address:port, answered when the handshake
// completes (its time is the RTT); a refused or unreachable port is lost.
// The connection is closed at once: nothing is sent on it.

import { askingMethod } from './periodic.js';

export interface TcpTarget {
  readonly method: 'tcp';
  readonly id: string;
  readonly address: string;
  readonly port: number;
}

export const tcpMethod = askingMethod<TcpTarget>(
  'tcp',
  // SYN, the handshake's ACK, then the close (FIN and its ACK, or a RST).
  4,
  (run) => `${run.target.address}:${run.target.port} from ${run.path.source} every ${run.timing.intervalMs} timeout ${run.timing.timeoutMs}`,
  (run, context) => {
    const { address, port } = run.target;
    const source = run.path.source as string;
    return async () => ({ ok: true, rttMs: await context.sockets.tcpConnect(address, port, source, run.timing.timeoutMs) });
  },
);

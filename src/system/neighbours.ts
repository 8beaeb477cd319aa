// The gateway's neighbour table: a full read at start and on the scan
// schedule (a netlink dump; /proc/net/arp is six times slower at 50k
// entries), and the netlink event stream (`ip monitor neigh`) that reports a
// new client about 5 ms after its first packet.

import { familyContract, type Family } from '../core/family.js';
import type { Neighbour } from '../model/kernel.js';
import { isMonitorOverrun } from '../parse/link-events.js';
import { parseNeighbourEvent, parseNeighbourTable, type NeighbourParse } from '../parse/neighbours.js';
import type { Process, Runner } from './exec.js';

export async function readNeighbours(runner: Runner, family: Family = 'ipv4'): Promise<NeighbourParse> {
  return parseNeighbourTable((await runner.run(['ip', familyContract(family).ipFlag, 'neigh', 'show'])).stdout);
}

/** A netlink receive buffer big enough for a burst of thousands of events (capped by the kernel's rmem_max). */
export const MONITOR_RCVBUF = String(8 * 1024 * 1024);

/** Streams neighbour events; `onLost` is called when the kernel dropped some (buffer overrun), so the caller rescans. */
export function watchNeighbours(runner: Runner, onNeighbour: (neighbour: Neighbour) => void, onLost: () => void): Process {
  return runner.spawn(['ip', '-rcvbuf', MONITOR_RCVBUF, 'monitor', 'neigh'], {
    // A burst of thousands of clients outruns the kernel's buffer unless the pipe is drained while a run plans.
    offThread: true,
    onLine: (line) => {
      const neighbour = parseNeighbourEvent(line);
      if (neighbour) onNeighbour(neighbour);
    },
    onErrorLine: (line) => {
      if (isMonitorOverrun(line)) onLost();
    },
  });
}

// The gateway's neighbour table: a full read of /proc/net/arp (start and
// scan schedule) and the netlink event stream (`ip monitor neigh`) that
// reports a new client about 5 ms after its first packet.

import type { Neighbour } from '../model/kernel.js';
import { parseNeighbourEvent, parseProcNetArp, type NeighbourParse } from '../parse/neighbours.js';
import type { Process, Runner } from './exec.js';

/** Read through the runner so a namespace prefix applies to /proc/net too. */
export async function readNeighbours(runner: Runner): Promise<NeighbourParse> {
  return parseProcNetArp((await runner.run(['cat', '/proc/net/arp'])).stdout);
}

export function watchNeighbours(runner: Runner, onNeighbour: (neighbour: Neighbour) => void): Process {
  return runner.spawn(['ip', 'monitor', 'neigh'], {
    onLine: (line) => {
      const neighbour = parseNeighbourEvent(line);
      if (neighbour) onNeighbour(neighbour);
    },
  });
}

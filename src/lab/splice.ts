// Two connections joined into one: what either sends reaches the other, and
// when either fails both go. The lab's page forward uses it on both of its
// hops (the host's TCP listener, the agent in the gateway namespace).

import type { Socket } from 'node:net';

export function splice(a: Socket, b: Socket): void {
  a.pipe(b).pipe(a);
  a.on('error', () => b.destroy());
  b.on('error', () => a.destroy());
}

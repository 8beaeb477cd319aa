// Routing policy and route change events (`ip monitor rule route`), each
// parsed into what it changed (parse/routing-events.ts).

import type { RoutingEvent } from '../model/kernel.js';
import { isMonitorOverrun } from '../parse/link-events.js';
import { parseRoutingEvent } from '../parse/routing-events.js';
import type { Process, Runner } from './exec.js';
import { MONITOR_RCVBUF } from './neighbours.js';

/** Streams rule and route changes; `onLost` when the kernel dropped some (the caller rescans). */
export function watchRouting(runner: Runner, onEvent: (event: RoutingEvent) => void, onLost: () => void): Process {
  return runner.spawn(['ip', '-rcvbuf', MONITOR_RCVBUF, 'monitor', 'rule', 'route'], {
    onLine: (line) => {
      const event = parseRoutingEvent(line);
      if (event) onEvent(event);
    },
    onErrorLine: (line) => {
      if (isMonitorOverrun(line)) onLost();
    },
  });
}

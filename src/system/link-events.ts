// The link and address event stream (`ip monitor link address`): carrier
// lost, a ppp link gone or back, a DHCP renewal — each names an interface,
// which the daemon acts on at once.

import { interfaceOfLinkEvent, isMonitorOverrun } from '../parse/link-events.js';
import type { Process, Runner } from './exec.js';
import { MONITOR_RCVBUF } from './neighbours.js';

/** Streams the interface each link/address event is about; `onLost` when the kernel dropped events. */
export function watchLinks(runner: Runner, onInterface: (iface: string) => void, onLost: () => void): Process {
  return runner.spawn(['ip', '-rcvbuf', MONITOR_RCVBUF, 'monitor', 'link', 'address'], {
    onLine: (line) => {
      const iface = interfaceOfLinkEvent(line);
      if (iface) onInterface(iface);
    },
    onErrorLine: (line) => {
      if (isMonitorOverrun(line)) onLost();
    },
  });
}

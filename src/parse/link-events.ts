// Lines of `ip monitor link address` (text: iproute2 6.1 has no JSON monitor).

import { isInterfaceName } from '../core/names.js';

/**
 * The interface a line of `ip monitor link address` is about, e.g.
 *   3: ppp0: <POINTOPOINT,NOARP> mtu 1492 qdisc … state DOWN …
 *   Deleted 3: ppp0    inet 192.0.2.2 peer 192.0.2.1/32 scope global ppp0
 *   4: wan0    inet 192.0.2.10/30 brd 192.0.2.11 scope global wan0
 * Continuation lines (starting with spaces) and anything else give null.
 */
export function interfaceOfLinkEvent(line: string): string | null {
  const match = /^(?:Deleted )?[0-9]+: ([^\s:@]+)(?:@\S+)?:?\s/.exec(line);
  const name = match?.[1];
  return name !== undefined && isInterfaceName(name) ? name : null;
}

/**
 * Whether a line `ip monitor` wrote to stderr says events were lost: the
 * kernel drops netlink messages when the socket's buffer overflows (a switch
 * bringing thousands of clients at once) and iproute2 reports
 * "netlink receive error No buffer space available (105)" and carries on.
 * The only repair is a full read of what the events would have told.
 */
export function isMonitorOverrun(line: string): boolean {
  return /No buffer space available|\(105\)/.test(line);
}

// The kernel's own answer to "where would this packet go?" (`ip route get`),
// for `dispatcher explain`: a lookup only, nothing is sent.

import type { Runner } from './exec.js';

/** An internet address of each family to look up (documentation ranges; only looked up, never sent to). */
const LOOKUP_DESTINATION = '203.0.113.1';
const LOOKUP_DESTINATION6 = '2001:db8::1';

export interface RouteLookup {
  /** The command as an operator would type it, to repeat the lookup by hand. */
  readonly command: string;
  /** What the kernel answered, on one line (its error when the lookup failed). */
  readonly answer: string;
}

/** Where a packet from `source` (either family), arriving on `iif` with `mark`, to `destination` (an internet address of its family by default) would go. */
export async function lookupRoute(runner: Runner, source: string, iif: string, mark: number, destination?: string): Promise<RouteLookup> {
  const ipv6 = source.includes(':');
  const argv = ['ip', ...(ipv6 ? ['-6'] : []), '-o', 'route', 'get', destination ?? (ipv6 ? LOOKUP_DESTINATION6 : LOOKUP_DESTINATION), 'from', source, 'iif', iif, 'mark', String(mark)];
  const result = await runner.run(argv, { okExitCodes: [0, 1, 2] });
  return { command: argv.join(' '), answer: (result.exitCode === 0 ? result.stdout : result.stderr).trim().replace(/\s+/g, ' ') };
}

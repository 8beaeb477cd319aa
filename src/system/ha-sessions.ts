// The lines of a pair whose session only the master may hold (PPPoE: one
// session per account; a provider that leases one address): the master
// connects them, any other role disconnects them (uplinks[].ha_connect,
// ha_disconnect). Their connections do not survive a takeover, their pools
// do: the clients stay assigned and come back to the line once it is up.

import type { Config } from '../model/config.js';
import { type Runner, whatItSaid } from './exec.js';

/** pppd's or dhclient's start returns once the program is running, not once the line is up: this is for a stuck command. */
const SESSION_TIMEOUT_MS = 30_000;

export interface SessionStep {
  readonly uplink: string;
  readonly ok: boolean;
  readonly said: string;
}

/** Runs each line's command for the role, all at once; a failing one is reported and the others still run. */
export function sessionCommands(runner: Runner, config: Config, which: 'connect' | 'disconnect'): Promise<SessionStep[]> {
  const lines = config.uplinks.flatMap((u) => {
    const argv = u.haSession?.[which];
    return argv ? [{ uplink: u.name, argv }] : [];
  });
  return Promise.all(
    lines.map(async ({ uplink, argv }) => {
      try {
        const result = await runner.run(argv, { timeoutMs: SESSION_TIMEOUT_MS });
        return { uplink, ok: true, said: `${result.stdout}${result.stderr}`.trim() };
      } catch (error) {
        return { uplink, ok: false, said: whatItSaid(error) };
      }
    }),
  );
}

// The script keepalived runs on every VRRP state change of the pair
// (`dispatcher ha render`; pure). Like the ppp hooks (render/ppp-hook.ts)
// every path is absolute and quoted as one word, and keepalived's arguments
// ("INSTANCE" NAME STATE PRIORITY) are only compared, never re-parsed: the
// state becomes `dispatcher ha master|backup|fault`. keepalived does not
// wait for it and forks one for every change, so the calls may reach the
// daemon out of order: each first writes the role to a file (atomically, by
// rename), which the daemon trusts over the order of the calls, and which
// tells a restarted daemon the role keepalived will not say again.

import { type PppHookPaths, quote } from './ppp-hook.js';

/** Under the state directory's ha/: the role the notify script wrote last, and when (seconds since boot; system/ha-role-file.ts). */
export const ROLE_FILE = 'role';
/** Under the state directory's ha/: keepalived's VRRP process, as the command `ha render` prints runs it (-r). */
export const VRRP_PID_FILE = 'vrrp.pid';

/** `runtime`: the state directory's ha/, where the role is written. */
export function haNotifyScript(paths: PppHookPaths, runtime: string): string {
  const role = `${runtime.replace(/\/+$/, '')}/${ROLE_FILE}`;
  return [
    '#!/bin/sh',
    '# Written by `dispatcher ha render`; edits are overwritten. keepalived runs it with',
    '# "INSTANCE" NAME STATE PRIORITY on every state change of the pair.',
    'case "$3" in',
    '  MASTER) role=master ;;',
    '  BACKUP | STOP) role=backup ;;',
    '  FAULT) role=fault ;;',
    '  *) exit 0 ;;',
    'esac',
    // With the time since boot (clock steps do not move it), to be told from a keepalived started since; each run its own temporary file.
    'read up _ < /proc/uptime',
    `printf '%s %s\\n' "$role" "$up" > ${quote(`${role}.`)}$$ && mv -f ${quote(`${role}.`)}$$ ${quote(role)}`,
    `exec ${quote(paths.node)} ${quote(paths.dispatcher)} --config ${quote(paths.config)} --socket ${quote(paths.socket)} ha "$role"`,
    '',
  ].join('\n');
}

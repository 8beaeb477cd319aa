// The script keepalived runs on every VRRP state change of the pair
// (`dispatcher ha render`; pure). Like the ppp hooks (render/ppp-hook.ts)
// every path is absolute and quoted as one word, and keepalived's arguments
// ("INSTANCE" NAME STATE PRIORITY) are only compared, never re-parsed: the
// state becomes `dispatcher ha master|backup|fault`. keepalived does not
// wait for it.

import { type PppHookPaths, quote } from './ppp-hook.js';

export function haNotifyScript(paths: PppHookPaths): string {
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
    `exec ${quote(paths.node)} ${quote(paths.dispatcher)} --config ${quote(paths.config)} --socket ${quote(paths.socket)} ha "$role"`,
    '',
  ].join('\n');
}

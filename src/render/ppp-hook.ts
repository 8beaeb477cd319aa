// The scripts `dispatcher install-hooks` puts into /etc/ppp/ip-up.d and
// ip-down.d. pppd runs them (through run-parts, which skips names with a
// dot) with an almost empty environment, so every path is absolute; the
// arguments pppd gives are passed on untouched ("$@"), never re-parsed.

export interface HookPaths {
  readonly node: string;
  readonly dispatcher: string;
  readonly config: string;
}

/** A path as one word of a shell line, whatever it holds. */
export function quote(path: string): string {
  return `'${path.replace(/'/g, `'\\''`)}'`;
}

/** The hook also names the control socket: the hook then need not load the config (YAML, schema, cron) to find it. */
export interface PppHookPaths extends HookPaths {
  readonly socket: string;
}

export function pppHookScript(event: 'ip-up' | 'ip-down', paths: PppHookPaths): string {
  return [
    '#!/bin/sh',
    `# Installed by \`dispatcher install-hooks\`: tells the dispatcher daemon about this ppp ${event} at once.`,
    '# pppd passes: interface tty speed local-IP remote-IP ipparam. Reinstall the hooks after changing `socket:`.',
    `exec ${quote(paths.node)} ${quote(paths.dispatcher)} --config ${quote(paths.config)} --socket ${quote(paths.socket)} hook ${event} "$@"`,
    '',
  ].join('\n');
}

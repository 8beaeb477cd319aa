// The three files `dispatcher ha render` writes into its directory, each
// with its text and mode (pure). Writing them (system/ha-files.ts) and
// doctor's check that the ones on disk are still current (core/ha-doctor.ts)
// take them from here, so the two never disagree about what is current.

import type { Config } from '../model/config.js';
import { conntrackdConf, haRuntimeDir } from './conntrackd-conf.js';
import { haNotifyScript } from './ha-notify.js';
import { keepalivedConf } from './keepalived-conf.js';
import type { PppHookPaths } from './ppp-hook.js';

export interface HaFile {
  readonly name: 'keepalived.conf' | 'conntrackd.conf' | 'notify';
  readonly path: string;
  /** What it holds when current; null when it cannot be told (conntrackd.conf without this gateway's address on the sync link). */
  readonly text: string | null;
  /** keepalived runs the notify script as root only if no one else can change it. */
  readonly mode: number;
}

/**
 * `dir`: absolute, where they go; `ownAddress`: this gateway's IPv4 address on
 * the sync link (null: unknown); `paths`: what the notify script runs.
 */
export function haFiles(config: Config, dir: string, ownAddress: string | null, paths: PppHookPaths): readonly [HaFile, HaFile, HaFile] {
  const at = (name: string): string => `${dir.replace(/\/+$/, '')}/${name}`;
  const notify = at('notify');
  return [
    { name: 'keepalived.conf', path: at('keepalived.conf'), text: keepalivedConf(config, notify), mode: 0o644 },
    { name: 'conntrackd.conf', path: at('conntrackd.conf'), text: ownAddress === null ? null : conntrackdConf(config, ownAddress), mode: 0o644 },
    { name: 'notify', path: notify, text: haNotifyScript(paths, haRuntimeDir(config.state)), mode: 0o755 },
  ];
}

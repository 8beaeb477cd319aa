// Writing the systemd unit and, when there is none yet, an example config.

import { access, copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { HookPaths } from '../render/ppp-hook.js';
import { systemdUnit } from '../render/systemd-unit.js';

export const UNIT_NAME = 'dispatcher.service';

export interface Installed {
  readonly unit: string;
  /** The example config written, or null when a config was already there (never overwritten). */
  readonly config: string | null;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

export async function installService(unitDir: string, paths: HookPaths, example: string): Promise<Installed> {
  await mkdir(unitDir, { recursive: true, mode: 0o755 });
  const unit = join(unitDir, UNIT_NAME);
  await writeFile(unit, systemdUnit(paths), { mode: 0o644 });
  if (await exists(paths.config)) return { unit, config: null };
  await mkdir(dirname(paths.config), { recursive: true, mode: 0o755 });
  await copyFile(example, paths.config);
  // The example names its schema (`# yaml-language-server: $schema=./config.schema.json`): editors find it beside it.
  await copyFile(join(dirname(example), 'config.schema.json'), join(dirname(paths.config), 'config.schema.json'));
  return { unit, config: paths.config };
}

// Writing the ppp hook scripts (src/render/ppp-hook.ts renders them).

import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pppHookScript, type PppHookPaths } from '../render/ppp-hook.js';

/** No dot in the name: Debian's run-parts would skip it. */
export const HOOK_NAME = 'dispatcher';

export async function installPppHooks(pppDir: string, paths: PppHookPaths): Promise<string[]> {
  const written: string[] = [];
  for (const event of ['ip-up', 'ip-down'] as const) {
    const dir = join(pppDir, `${event}.d`);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const file = join(dir, HOOK_NAME);
    await writeFile(file, pppHookScript(event, paths), { mode: 0o755 });
    await chmod(file, 0o755);
    written.push(file);
  }
  return written;
}

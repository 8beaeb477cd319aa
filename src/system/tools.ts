// Where the commands the dispatcher and doctor run are installed.

import { access, constants } from 'node:fs/promises';
import { join } from 'node:path';

/** Where a command is found: PATH, then the sbin directories a root shell would have. */
export async function findTool(name: string, path = process.env.PATH ?? ''): Promise<string | null> {
  for (const dir of [...path.split(':').filter((d) => d.startsWith('/')), '/usr/sbin', '/sbin']) {
    const candidate = join(dir, name);
    if (
      await access(candidate, constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  return null;
}

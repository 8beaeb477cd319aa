// A copy of the built program that every user can read, for tests that run
// the CLI as another user (nobody). The checkout may sit where only root can
// enter (root's home is mode 0700: clone there and `npm test`), so such a test
// must never run the program from the checkout itself.
//
// What is copied is what the bundled CLI reads at run time: bin/dispatcher,
// dist/ (the bundle in dist/cli-bundle/ holds its dependencies, so no
// node_modules), package.json (the version), iptables/ (the skeleton) and
// pools/ (the example configs).

import { chmod, cp, lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTempDir } from '../../src/lab/leftovers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PARTS = ['bin', 'dist', 'package.json', 'iptables', 'pools'];

export interface ReadableCopy {
  readonly dir: string;
  /** The copy's bin/dispatcher. */
  readonly bin: string;
  /**
   * The argv that runs the copy's CLI with `args`, from inside the copy: the
   * test's own working directory (the checkout) may be closed to the user
   * too, and every command the CLI starts would fail to enter it.
   */
  argv(args: readonly string[]): string[];
  remove(): Promise<void>;
}

/** Directories 0755, files 0644 (0755 when the owner may run them): the modes a umask of 077 would have taken away. */
async function openUp(path: string): Promise<void> {
  const stats = await lstat(path);
  if (stats.isSymbolicLink()) return;
  if (stats.isDirectory()) {
    await chmod(path, 0o755);
    for (const entry of await readdir(path)) await openUp(join(path, entry));
  } else {
    await chmod(path, stats.mode & 0o100 ? 0o755 : 0o644);
  }
}

export async function readableCopy(): Promise<ReadableCopy> {
  const dir = await runTempDir('readable');
  try {
    for (const part of PARTS) await cp(join(ROOT, part), join(dir, part), { recursive: true });
    await openUp(dir);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const bin = join(dir, 'bin', 'dispatcher');
  return {
    dir,
    bin,
    argv: (args) => ['env', `--chdir=${dir}`, process.execPath, bin, ...args],
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

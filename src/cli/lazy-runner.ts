// The exec seam for the CLI, loaded on first use.

import type { Process, RunOptions, RunResult, Runner, SpawnOptions } from '../system/exec.js';

/**
 * The exec seam, loaded on first use: execa is a good part of start-up, and
 * a command the daemon answers runs no process at all.
 */
export class LazyRunner implements Runner {
  private runner: Promise<Runner> | undefined;
  private loaded: Runner | undefined;

  async load(): Promise<Runner> {
    this.runner ??= import('../system/exec.js').then(({ ExecaRunner }) => (this.loaded = new ExecaRunner()));
    return this.runner;
  }

  async run(argv: readonly string[], options?: RunOptions): Promise<RunResult> {
    return (await this.load()).run(argv, options);
  }

  spawn(argv: readonly string[], options?: SpawnOptions): Process {
    // main() loads the seam first for every command not marked `light`.
    if (!this.loaded) throw new Error(`spawn of ${argv[0]} before the exec seam was loaded: a command marked light in cli/main.ts spawns`);
    return this.loaded.spawn(argv, options);
  }
}

import type { Command } from 'commander';
import { Daemon } from '../../engine/daemon.js';
import { jsonLogger } from '../../system/logger.js';
import type { CliContext } from '../context.js';

export function registerStart(program: Command, ctx: CliContext): void {
  program
    .command('start')
    .description('run the daemon in the foreground (SIGTERM/SIGINT: stop and leave the kernel programmed; SIGHUP: reload the config)')
    .action(async () => {
      const { config, state, socket } = ctx.globals();
      const daemon = new Daemon({
        configPath: config,
        overrides: { ...(state ? { state } : {}), ...(socket ? { socket } : {}) },
        runner: ctx.runner,
        log: jsonLogger(),
        version: ctx.version,
      });
      await daemon.start();
      ctx.exitCode = await daemon.done;
    });
}

import type { Command } from 'commander';
import { fromDaemon, printJson, socketFor, type CliContext } from '../context.js';
import { Failure } from '../exit.js';

/** Commands that only make sense with a running daemon. */
export function registerControl(program: Command, ctx: CliContext): void {
  const ask = async (cmd: 'scan' | 'reload'): Promise<unknown> => {
    const result = await fromDaemon(ctx, { cmd });
    if (result === null) throw new Failure(`dispatcher is not running (no daemon on ${await socketFor(ctx)})`);
    return result;
  };
  program
    .command('scan')
    .description('make the daemon read the neighbour table and reconcile now')
    .action(async () => printJson(ctx, await ask('scan')));
  program
    .command('reload')
    .description('make the daemon re-read its config (like SIGHUP, but reports a bad config with exit code 2)')
    .action(async () => printJson(ctx, await ask('reload')));
}

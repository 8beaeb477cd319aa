import type { Command } from 'commander';
import { fromDaemon, printJson, socketFor, type CliContext } from '../context.js';
import { Failure } from '../exit.js';

/** `dispatcher rebalance [--dry-run]`: idle clients moved from the busiest lines (by measured traffic ÷ weight) to the quietest. */
export function registerRebalance(program: Command, ctx: CliContext): void {
  program
    .command('rebalance')
    .description('move idle clients (no connection open) from the lines with the most measured traffic ÷ weight to those with the least; nobody is disturbed')
    .option('--dry-run', 'only say what would move')
    .option('--json', 'print JSON')
    .action(async (options: { dryRun?: boolean; json?: boolean }) => {
      const result = await fromDaemon(ctx, { cmd: 'rebalance', dryRun: options.dryRun === true });
      if (result === null) throw new Failure(`dispatcher is not running (no daemon on ${await socketFor(ctx)})`);
      if (options.json) {
        printJson(ctx, result);
        return;
      }
      const lines = (loads: Readonly<Record<string, number>>) =>
        Object.entries(loads)
          .map(([name, rate]) => `${name} ${rate} B/s`)
          .join(', ');
      const verb = result.dryRun ? 'would move' : 'moved';
      const moves = result.moves.map((m) => `  ${m.ip}: ${m.from} → ${m.to}\n`).join('');
      ctx.out(
        `load ÷ weight, recently measured: ${lines(result.before) || 'no carrying line'}\n` +
          `${result.idle} idle clients, ${result.busy} with a connection open (never moved)\n` +
          (result.moves.length > 0 ? `${verb} ${result.moves.length}:\n${moves}expected after: ${lines(result.after)}\n` : 'nothing to move: the lines are as even as idle clients can make them\n'),
      );
    });
}

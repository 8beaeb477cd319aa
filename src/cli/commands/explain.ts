import type { Command } from 'commander';
import { checkClientAddress } from '../../core/requests.js';
import { fromDaemon, printJson, type CliContext } from '../context.js';
import { Failure } from '../exit.js';

export function registerExplain(program: Command, ctx: CliContext): void {
  program
    .command('explain')
    .description('why a client sits where it does: pool, mark, rule, table, route, uplink, and what happens if that uplink dies')
    .argument('<ip>', 'client address')
    .option('--to <address>', "where its new connections to this address go (a static route, or the destination mode's bucket)")
    .option('--json', 'print JSON')
    .action(async (ip: string, options: { json?: boolean; to?: string }) => {
      const to = options.to === undefined ? {} : { to: checkClientAddress(options.to) };
      const result = await fromDaemon(ctx, { cmd: 'explain', ip: checkClientAddress(ip), ...to });
      if (!result) throw new Failure('the daemon is not running: explain reads its live pools and uplinks (dispatcher start)');
      if (options.json) {
        printJson(ctx, result);
        return;
      }
      const steps = result.steps.map((step, i) => `  ${i + 1}. ${step}`).join('\n');
      ctx.out(
        `${ip}: ${result.verdict}\n${steps}\n` + (result.ifUplinkDies ? `  → ${result.ifUplinkDies}\n` : '') + `kernel: ${result.kernel.command}\n  ${result.kernel.answer}\n${result.firewall.map((line) => `${line}\n`).join('')}`,
      );
    });
}

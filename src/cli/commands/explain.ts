import type { Command } from 'commander';
import { checkClientAddress } from '../../core/requests.js';
import { fromDaemon, printJson, type CliContext } from '../context.js';
import { Failure } from '../exit.js';

export function registerExplain(program: Command, ctx: CliContext): void {
  program
    .command('explain')
    .description('why a client sits where it does: pool, mark, rule, table, route, uplink, and what happens if that uplink dies')
    .argument('<ip>', 'client address')
    .option('--json', 'print JSON')
    .action(async (ip: string, options: { json?: boolean }) => {
      const result = await fromDaemon(ctx, { cmd: 'explain', ip: checkClientAddress(ip) });
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

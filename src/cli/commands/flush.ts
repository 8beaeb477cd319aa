import type { Command } from 'commander';
import { loadBackends } from '../../engine/backend.js';
import { flush } from '../../engine/flush.js';
import { socketIsLive } from '../../system/control-server.js';
import { Store } from '../../system/store.js';
import { configFor, printJson, type CliContext } from '../context.js';
import { Failure } from '../exit.js';

export function registerFlush(program: Command, ctx: CliContext): void {
  program
    .command('flush')
    .description('remove everything the dispatcher put into the kernel, and nothing else (assignments stay in the store)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const config = await configFor(ctx);
      if (await socketIsLive(config.socket)) {
        throw new Failure(`the daemon is running on ${config.socket} and would put everything back: stop it first`);
      }
      const report = await flush(ctx.runner, config, await Store.open(config.state), await loadBackends(config));
      if (options.json) {
        printJson(ctx, report);
        return;
      }
      if (report.nothingToDo) {
        ctx.out('nothing to remove: the kernel holds nothing of the dispatcher\n');
        return;
      }
      const restored = Object.entries(report.sysctlsRestored).map(([k, v]) => `${k}=${v}`);
      ctx.out(
        [
          `removed chains: ${report.chains.join(', ') || 'none'} (and ${report.hooks} jumps into them)`,
          `removed client set: ${report.setDestroyed ? 'yes' : 'no'}`,
          `removed ip rules: ${report.rules}, routes: ${report.routes}${report.addresses > 0 ? `, LAN addresses: ${report.addresses}` : ''}`,
          `restored sysctls: ${restored.join(', ') || 'none'}`,
          `removed tables it had created: ${report.tablesDeleted.join(', ') || 'none'}`,
          ...(report.radvdStopped ? ['stopped radvd (its last advertisement deprecated the announced prefixes)'] : []),
        ].join('\n') + '\n',
      );
    });
}

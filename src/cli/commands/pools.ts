import type { Command } from 'commander';
import { withBindings } from '../../core/uplinks.js';
import { discoverUplinks } from '../../system/leases.js';
import { poolsView, type PoolsReport } from '../../core/views.js';
import type { Config } from '../../model/config.js';
import type { Runner } from '../../system/exec.js';
import { readLinks, readRoutes } from '../../system/kernel.js';
import { assignmentsOf, Store } from '../../system/store.js';
import { configFor, fromDaemon, printJson, type CliContext } from '../context.js';
import { formatPools } from '../format.js';

/** Pools as the store and the links show them, for when no daemon runs. */
export async function offlinePools(runner: Runner, config: Config): Promise<PoolsReport> {
  const [data, links, routes] = await Promise.all([Store.peek(config.state), readLinks(runner), readRoutes(runner)]);
  const assignments = data ? assignmentsOf(data) : new Map();
  const effective = withBindings(config, data?.bindings ?? {});
  return poolsView(effective, await discoverUplinks(effective, { links, routes }, Date.now()), assignments);
}

export function registerPools(program: Command, ctx: CliContext): void {
  program
    .command('pools')
    .description('show each uplink and the clients in its pool (from the daemon, or from the store when none runs)')
    .option('--json', 'print JSON')
    .action(async (options: { json?: boolean }) => {
      const live = (await fromDaemon(ctx, { cmd: 'pools' })) as PoolsReport | null;
      const report = live ?? (await offlinePools(ctx.runner, await configFor(ctx)));
      const source = live ? 'daemon' : 'store';
      if (options.json) printJson(ctx, { source, ...report });
      else ctx.out(`${live ? '' : '(daemon not running: pools from the store)\n'}${formatPools(report.uplinks)}`);
    });
}

import type { Command } from 'commander';
import type { PoolsReport } from '../../schema/control.js';
import type { Config } from '../../model/config.js';
import type { Runner } from '../../system/exec.js';
import { configFor, fromDaemon, printJson, type CliContext } from '../context.js';
import { formatPools } from '../format.js';
import { registerSpec, type CommandSpec } from '../spec.js';

/** Pools as the store and the links show them, for when no daemon runs. */
export async function offlinePools(runner: Runner, config: Config): Promise<PoolsReport> {
  // Loaded only when no daemon answers: a command the daemon answers starts faster without them (cli/main.ts).
  const [{ withBindings }, { discoverUplinks }, { poolsView }, { readLinks, readRoutes }, { clientsOf, Store }] = await Promise.all([
    import('../../core/uplinks.js'),
    import('../../system/leases.js'),
    import('../../core/views.js'),
    import('../../system/kernel.js'),
    import('../../system/store.js'),
  ]);
  const [data, links, routes] = await Promise.all([Store.peek(config.state), readLinks(runner), readRoutes(runner)]);
  const assignments = data ? clientsOf(data).assignments : new Map();
  const effective = withBindings(config, data?.bindings ?? {});
  return poolsView(effective, await discoverUplinks(effective, { links, routes }, Date.now()), assignments);
}

export const poolsSpec: CommandSpec = {
  name: 'pools',
  description: 'show each uplink and the clients in its pool (from the daemon, or from the store when none runs)',
  operands: [],
  json: true,
  action: async (ctx, _operands, options) => {
    const live = await fromDaemon(ctx, { cmd: 'pools' });
    const report = live ?? (await offlinePools(ctx.runner, await configFor(ctx)));
    const source = live ? 'daemon' : 'store';
    if (options.json) printJson(ctx, { source, ...report });
    else ctx.out(`${live ? '' : '(daemon not running: pools from the store)\n'}${formatPools(report)}`);
  },
};

export function registerPools(program: Command, ctx: CliContext): void {
  registerSpec(program, ctx, poolsSpec);
}

import type { Command } from 'commander';
import { uplinkGroup } from '../../core/contract.js';
import { runAttached } from '../../system/exec.js';
import { loadBackend } from '../../engine/backend.js';
import { configFor, type CliContext } from '../context.js';
import { EXIT_USAGE, Failure } from '../exit.js';

/**
 * `dispatcher exec --uplink isp2 -- curl …`: the command runs with isp2's
 * group, and the mangle rule for that group (iptables/skeleton.rules) gives
 * every packet of its sockets isp2's connection mark, so its traffic leaves
 * by isp2 whatever the pools or the main table say. No LD_PRELOAD, no
 * wrapper: the kernel marks by the socket's owner. The daemon uses the same
 * groups for its DNS updates and address lookups.
 */
export function registerExec(program: Command, ctx: CliContext): void {
  program
    .command('exec')
    .description('run a command whose traffic leaves by one uplink (the daemon must have programmed the gateway)')
    .requiredOption('--uplink <name>', 'the uplink to use')
    .argument('<command...>', 'the command and its arguments, after --')
    .action(async (command: string[], options: { uplink: string }) => {
      const config = await configFor(ctx);
      const index = config.uplinks.findIndex((u) => u.name === options.uplink);
      if (index < 0) throw new Failure(`no uplink named "${options.uplink}"; the uplinks are ${config.uplinks.map((u) => u.name).join(', ')}`, EXIT_USAGE);
      const group = uplinkGroup(config, index);
      // Without our rule the command would run, but its traffic would go wherever routing sends it: refuse instead.
      const backend = await loadBackend(config);
      if (!backend.groupMarked(await backend.observe(ctx.runner), group)) throw new Failure(`${options.uplink}'s traffic rule (group ${group}) is not in the kernel: start the dispatcher first (dispatcher start)`);
      ctx.exitCode = await runAttached(command, group);
    });
}

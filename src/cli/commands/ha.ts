// `dispatcher ha …`: one gateway of a pair. `render` writes what keepalived
// and conntrackd run with (src/system/ha-files.ts) and says how to start
// them.

import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { conntrackdPaths } from '../../render/conntrackd-conf.js';
import { writeHaFiles } from '../../system/ha-files.js';
import { configFor, type CliContext } from '../context.js';

export function registerHa(program: Command, ctx: CliContext): void {
  const ha = program.command('ha').description('one gateway of a pair (keepalived and conntrackd)');
  ha.command('render')
    .description('write keepalived.conf, conntrackd.conf and the notify script keepalived runs')
    .requiredOption('--dir <dir>', 'where to write them (keepalived runs the notify script only if no one but root can change it)')
    .action(async (options: { dir: string }) => {
      const config = await configFor(ctx);
      const dir = resolve(options.dir);
      const files = await writeHaFiles(ctx.runner, config, dir, {
        node: process.execPath,
        dispatcher: realpathSync(fileURLToPath(new URL('../../../bin/dispatcher', import.meta.url))),
        config: resolve(ctx.globals().config),
        socket: resolve(config.socket),
      });
      const { runtime } = files;
      ctx.out(
        `written:\n  ${files.keepalived}\n  ${files.conntrackd}\n  ${files.notify}\n` +
          'run beside `dispatcher start` (each in the foreground, e.g. as systemd services):\n' +
          `  conntrackd -C ${files.conntrackd}\n` +
          `  keepalived -n -l -f ${files.keepalived} -p ${runtime}/keepalived.pid -r ${runtime}/vrrp.pid -c ${runtime}/checkers.pid\n` +
          `conntrackd's lock, socket and log are under ${runtime} (${conntrackdPaths(config.state).socket}).\n`,
      );
    });
}

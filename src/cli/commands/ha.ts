// `dispatcher ha …`: one gateway of a pair. `render` writes what keepalived
// and conntrackd run with (src/system/ha-files.ts) and says how to start
// them; `master`, `backup` and `fault` are what keepalived's notify script
// tells the daemon (engine/ha.ts does the rest).

import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { conntrackdPaths } from '../../render/conntrackd-conf.js';
import { writeHaFiles } from '../../system/ha-files.js';
import { askDaemon, resultOf } from '../../system/control-client.js';
import { configFor, socketFor, type CliContext } from '../context.js';
import { EXIT_FAILURE } from '../exit.js';

/** A takeover waits for conntrackd's commit, which takes longer the more connections the master had. */
const ROLE_TIMEOUT_MS = 60_000;

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
  for (const role of ['master', 'backup', 'fault'] as const) {
    ha.command(role)
      .description(`tell the daemon keepalived made this gateway ${role} (its notify script does)`)
      .action(async () => {
        const socket = await socketFor(ctx);
        const response = await askDaemon(socket, { cmd: 'ha', role }, ROLE_TIMEOUT_MS);
        if (!response) {
          ctx.err(`dispatcher: not running (no daemon on ${socket}); the role ${role} not passed on\n`);
          ctx.exitCode = EXIT_FAILURE;
          return;
        }
        const result = resultOf<'ha'>(response);
        const failed = result.conntrackd.filter((s) => !s.ok);
        ctx.out(`${result.previous} → ${result.role}${failed.length > 0 ? ` (conntrackd failed: ${failed.map((s) => `${s.step}: ${s.said}`).join('; ')})` : ''}\n`);
      });
  }
}

// `dispatcher ha …`: one gateway of a pair. `render` writes what keepalived
// and conntrackd run with (src/system/ha-files.ts) and says how to start
// them; `master`, `backup` and `fault` are what keepalived's notify script
// tells the daemon (engine/ha.ts does the rest). Those three are on the
// takeover path: declared as data (cli/spec.ts), the quick door runs them
// without commander, and this module loads what only `render` needs when it runs.

import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { askDaemon, resultOf } from '../../system/control-client.js';
import { configFor, socketFor, type CliContext } from '../context.js';
import { EXIT_FAILURE } from '../exit.js';
import { registerSpec, type CommandSpec } from '../spec.js';

/** A takeover waits for conntrackd's commit, which takes longer the more connections the master had. */
const ROLE_TIMEOUT_MS = 60_000;

const ROLES = ['master', 'backup', 'fault'] as const;

function roleSpec(role: (typeof ROLES)[number]): CommandSpec {
  return {
    name: role,
    parent: 'ha',
    description: `tell the daemon keepalived made this gateway ${role} (its notify script does)`,
    operands: [],
    json: false,
    action: async (ctx) => {
      const socket = await socketFor(ctx);
      const response = await askDaemon(socket, { cmd: 'ha', role }, ROLE_TIMEOUT_MS);
      if (!response) {
        ctx.err(`dispatcher: not running (no daemon on ${socket}); the role ${role} not passed on\n`);
        ctx.exitCode = EXIT_FAILURE;
        return;
      }
      const result = resultOf<'ha'>(response);
      const failed = [...result.conntrackd.filter((s) => !s.ok).map((s) => `conntrackd ${s.step}: ${s.said}`), ...result.sessions.filter((s) => !s.ok).map((s) => `${s.uplink}: ${s.said}`)];
      const forgotten = Object.entries(result.forgotten).filter(([, n]) => n > 0);
      const sessions = result.sessions.filter((s) => s.ok).map((s) => s.uplink);
      ctx.out(
        `${result.previous} → ${result.role}` +
          (sessions.length > 0 ? `; ${result.role === 'master' ? 'dialled' : 'hung up'} ${sessions.join(', ')}` : '') +
          (forgotten.length > 0 ? `; connections forgotten (their address stayed behind): ${forgotten.map(([line, n]) => `${line} ${n}`).join(', ')}` : '') +
          (failed.length > 0 ? ` (failed: ${failed.join('; ')})` : '') +
          '\n',
      );
    },
  };
}

/** `dispatcher ha master|backup|fault`. */
export const haRoleSpecs: readonly CommandSpec[] = ROLES.map(roleSpec);

export function registerHa(program: Command, ctx: CliContext): void {
  const ha = program.command('ha').description('one gateway of a pair (keepalived and conntrackd)');
  ha.command('render')
    .description('write keepalived.conf, conntrackd.conf and the notify script keepalived runs')
    .requiredOption('--dir <dir>', 'where to write them (keepalived runs the notify script only if no one but root can change it)')
    .action(async (options: { dir: string }) => {
      // Loaded here, not with the module: the quick door runs the roles from it.
      const [{ conntrackdPaths }, { writeHaFiles }] = await Promise.all([import('../../render/conntrackd-conf.js'), import('../../system/ha-files.js')]);
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
  for (const spec of haRoleSpecs) registerSpec(ha, ctx, spec);
}

import { realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { HookPaths } from '../../render/ppp-hook.js';
import { installPppHooks } from '../../system/ppp-hooks.js';
import { installService } from '../../system/service.js';
import { configFor, type CliContext } from '../context.js';

/** Absolute paths for scripts and units that run this very installation: pppd and systemd start with almost no environment. */
function installPaths(ctx: CliContext): HookPaths {
  return {
    node: process.execPath,
    dispatcher: realpathSync(fileURLToPath(new URL('../../../bin/dispatcher', import.meta.url))),
    config: resolve(ctx.globals().config),
  };
}

const EXAMPLE_CONFIG = fileURLToPath(new URL('../../../pools/example.yaml', import.meta.url));

export function registerInstall(program: Command, ctx: CliContext): void {
  program
    .command('install-hooks')
    .description('install the ppp ip-up.d/ip-down.d scripts that call `dispatcher hook`')
    .option('--ppp-dir <dir>', 'pppd configuration directory', '/etc/ppp')
    .action(async (options: { pppDir: string }) => {
      // A config that does not load gets no hooks; one that does gives the socket the hooks call.
      const { socket } = await configFor(ctx);
      const written = await installPppHooks(options.pppDir, { ...installPaths(ctx), socket: resolve(socket) });
      ctx.out(`installed:\n${written.map((f) => `  ${f}`).join('\n')}\n`);
    });

  program
    .command('install-service')
    .description('write the systemd unit (and an example config at --config when there is none)')
    .option('--unit-dir <dir>', 'where systemd units go', '/etc/systemd/system')
    .action(async (options: { unitDir: string }) => {
      const paths = installPaths(ctx);
      const installed = await installService(options.unitDir, paths, EXAMPLE_CONFIG);
      ctx.out(
        `installed:\n  ${installed.unit}\n` +
          (installed.config ? `  ${installed.config} (an example: edit lan and uplinks, then check it with \`dispatcher doctor\`)\n` : `kept the existing config ${paths.config}\n`) +
          `next:\n  systemctl daemon-reload && systemctl enable --now dispatcher\n  journalctl -u dispatcher -f\n`,
      );
    });
}

// The command-line entry: builds the commander program, runs one command,
// and turns errors into messages and exit codes (cli/exit.ts).

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { ExecaRunner } from '../system/exec.js';
import { registerAssign } from './commands/assign.js';
import { registerControl } from './commands/control.js';
import { registerDoctor } from './commands/doctor.js';
import { registerExec } from './commands/exec.js';
import { registerExplain } from './commands/explain.js';
import { registerFlush } from './commands/flush.js';
import { registerHook } from './commands/hook.js';
import { registerInstall } from './commands/install.js';
import { registerLab } from './commands/lab.js';
import { registerPlan } from './commands/plan.js';
import { registerPools } from './commands/pools.js';
import { registerStart } from './commands/start.js';
import { registerStatus } from './commands/status.js';
import { registerTop } from './commands/top.js';
import type { CliContext, Globals } from './context.js';
import { EXIT_OK, exitCodeFor, isExpected } from './exit.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export const DEFAULT_CONFIG = '/etc/dispatcher/config.yaml';

export function buildProgram(ctx: CliContext): Command {
  const program = new Command('dispatcher')
    .description('multi-uplink NAT gateway: sticky client pools, per-uplink routing, failover')
    .version(VERSION)
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .option('--state <dir>', 'state directory (overrides the config)')
    .option('--socket <path>', 'control socket (overrides the config)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s), writeErr: (s) => ctx.err(s) });
  ctx.globals = () => program.opts<Globals>();
  for (const register of [registerStart, registerPools, registerStatus, registerPlan, registerFlush, registerAssign, registerControl, registerHook, registerInstall, registerExec, registerDoctor, registerExplain, registerTop, registerLab]) {
    register(program, ctx);
  }
  for (const command of program.commands) command.exitOverride().configureOutput({ writeOut: (s) => ctx.out(s), writeErr: (s) => ctx.err(s) });
  return program;
}

export async function main(argv: readonly string[], runner = new ExecaRunner()): Promise<number> {
  const ctx: CliContext = {
    runner,
    version: VERSION,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    globals: () => ({ config: DEFAULT_CONFIG }),
    exitCode: EXIT_OK,
  };
  try {
    await buildProgram(ctx).parseAsync([...argv]);
    return ctx.exitCode;
  } catch (error) {
    // commander has already printed its own usage errors and help.
    if (!(error instanceof CommanderError)) {
      ctx.err(`dispatcher: ${(error as Error).message}\n`);
      // Anything but the expected failures is a bug: show where it happened.
      if (!isExpected(error)) ctx.err(`${(error as Error).stack ?? ''}\n`);
    }
    return exitCodeFor(error);
  }
}

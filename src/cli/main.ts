// The command-line entry: builds the commander program, runs one command,
// and turns errors into messages and exit codes (cli/exit.ts).
//
// Start-up time matters here: pppd's ip-down hook runs `dispatcher hook`, and
// its start-up is part of failover time. So a command loads only its own
// module (and what that imports): `hook` or `pools` against a running daemon
// never loads the daemon, the planner, execa or the config schema.

import { Command, CommanderError } from 'commander';
import type { Runner } from '../system/exec.js';
import { LazyRunner } from './lazy-runner.js';
import { DEFAULT_CONFIG, processContext, type CliContext, type Globals } from './context.js';
import { EXIT_OK, EXIT_USAGE, reportFailure } from './exit.js';

type Register = (program: Command, ctx: CliContext) => void;

interface CommandModule {
  /** The command names the module registers. */
  readonly names: readonly string[];
  readonly load: () => Promise<Register>;
  /**
   * Answered by the daemon, and starts no long-running process: the exec
   * seam then loads only if the command runs one itself (Runner.run loads it
   * on first use). Any other command gets it loaded before it runs, since
   * Runner.spawn is synchronous: a new command is safe without this flag.
   */
  readonly light?: boolean;
}

/** Every command, in the order help lists them. Add a command here with its module. */
const COMMANDS: readonly CommandModule[] = [
  { names: ['start'], load: async () => (await import('./commands/start.js')).registerStart },
  { names: ['pools'], load: async () => (await import('./commands/pools.js')).registerPools, light: true },
  { names: ['status'], load: async () => (await import('./commands/status.js')).registerStatus, light: true },
  { names: ['plan'], load: async () => (await import('./commands/plan.js')).registerPlan },
  { names: ['flush'], load: async () => (await import('./commands/flush.js')).registerFlush },
  { names: ['assign', 'release'], load: async () => (await import('./commands/assign.js')).registerAssign, light: true },
  { names: ['scan', 'reload'], load: async () => (await import('./commands/control.js')).registerControl, light: true },
  { names: ['rebalance'], load: async () => (await import('./commands/rebalance.js')).registerRebalance, light: true },
  { names: ['hook'], load: async () => (await import('./commands/hook.js')).registerHook, light: true },
  { names: ['install-hooks', 'install-service'], load: async () => (await import('./commands/install.js')).registerInstall },
  { names: ['exec'], load: async () => (await import('./commands/exec.js')).registerExec },
  { names: ['doctor'], load: async () => (await import('./commands/doctor.js')).registerDoctor },
  { names: ['explain'], load: async () => (await import('./commands/explain.js')).registerExplain, light: true },
  { names: ['events'], load: async () => (await import('./commands/events.js')).registerEvents, light: true },
  { names: ['top'], load: async () => (await import('./commands/top.js')).registerTop, light: true },
  { names: ['lab'], load: async () => (await import('./commands/lab.js')).registerLab },
  { names: ['config'], load: async () => (await import('./commands/config.js')).registerConfig, light: true },
  { names: ['ha'], load: async () => (await import('./commands/ha.js')).registerHa },
];

/** Global options that take a value (kept in step with buildProgram's options). */
const VALUED_OPTIONS = new Set(['-c', '--config', '--state', '--socket']);

/**
 * The command argv names, found the way commander will find it: the first
 * operand after the global options. Undefined when there is none.
 */
export function commandOf(argv: readonly string[]): string | undefined {
  const args = argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') return args[i + 1];
    if (VALUED_OPTIONS.has(arg)) i++;
    else if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/**
 * The modules to load for this argv: the named command's alone; none for a
 * bare --version; all of them for help, no command or an unknown one (so
 * commander lists them or suggests the nearest).
 */
export function modulesFor(argv: readonly string[]): readonly CommandModule[] {
  const name = commandOf(argv);
  if (name === undefined) return argv.includes('-V') || argv.includes('--version') ? [] : COMMANDS;
  const one = COMMANDS.find((m) => m.names.includes(name));
  return one ? [one] : COMMANDS;
}

export function buildProgram(ctx: CliContext, registers: readonly Register[]): Command {
  const program = new Command('dispatcher')
    .description('multi-uplink NAT gateway: sticky client pools, per-uplink routing, failover')
    .version(ctx.version)
    .option('-c, --config <file>', 'configuration file', DEFAULT_CONFIG)
    .option('--state <dir>', 'state directory (overrides the config)')
    .option('--socket <path>', 'control socket (overrides the config)')
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s), writeErr: (s) => ctx.err(s) });
  ctx.globals = () => program.opts<Globals>();
  for (const register of registers) register(program, ctx);
  for (const command of program.commands) command.exitOverride().configureOutput({ writeOut: (s) => ctx.out(s), writeErr: (s) => ctx.err(s) });
  return program;
}

export async function main(argv: readonly string[], runner?: Runner): Promise<number> {
  const lazy = runner ? null : new LazyRunner();
  const ctx = processContext(runner ?? (lazy as LazyRunner));
  try {
    const modules = modulesFor(argv);
    if (lazy && !modules.every((m) => m.light)) await lazy.load();
    const registers = await Promise.all(modules.map((m) => m.load()));
    await buildProgram(ctx, registers).parseAsync([...argv]);
    return ctx.exitCode;
  } catch (error) {
    // commander has already printed its own usage errors and help.
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    return reportFailure(ctx.err, error);
  }
}

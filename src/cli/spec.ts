// A command the daemon answers, declared once as data: commander builds its
// help, usage errors and parsing from it (registerSpec), and the quick door
// (cli/quick.ts) runs the same action for the plain shapes pppd and operators
// type, without loading commander at all.

import type { Command } from 'commander';
import type { CliContext } from './context.js';

/** An operand as commander writes it: '<ip>' is required, '[ipparam]' optional (last only). */
export type Operand = readonly [name: `<${string}>` | `[${string}]`, description: string];

export interface CommandSpec {
  readonly name: string;
  /**
   * The command this one is a subcommand of (`ha` for `dispatcher ha master`):
   * registerSpec then takes that command, and the quick door looks for both words.
   */
  readonly parent?: string;
  readonly description: string;
  readonly operands: readonly Operand[];
  /** Whether the command takes --json (its only option). */
  readonly json: boolean;
  /** Operands in declared order (an absent optional one is undefined). */
  readonly action: (ctx: CliContext, operands: readonly (string | undefined)[], options: { readonly json: boolean }) => Promise<void>;
}

/** How many operands a spec takes: [required, all]. */
export function arity(spec: CommandSpec): readonly [number, number] {
  return [spec.operands.filter(([name]) => name.startsWith('<')).length, spec.operands.length];
}

/** The words that name a spec's command on the command line. */
export function wordsOf(spec: CommandSpec): readonly string[] {
  return spec.parent === undefined ? [spec.name] : [spec.parent, spec.name];
}

/** Declares the spec's command on program, or on its parent command (`parent`) for a subcommand. */
export function registerSpec(program: Command, ctx: CliContext, spec: CommandSpec): void {
  if ((program.parent ? program.name() : undefined) !== spec.parent) throw new Error(`${wordsOf(spec).join(' ')} registered on ${program.name()}`);
  const command = program.command(spec.name).description(spec.description);
  for (const [name, description] of spec.operands) command.argument(name, description);
  if (spec.json) command.option('--json', 'print JSON');
  // commander passes the operands, then the options, then the command.
  command.action(async (...args: unknown[]) => {
    const operands = args.slice(0, spec.operands.length) as (string | undefined)[];
    const options = args[spec.operands.length] as { json?: boolean };
    await spec.action(ctx, operands, { json: options.json === true });
  });
}

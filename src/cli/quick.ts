// The quick door: the commands a running daemon answers (hook, status, pools,
// assign, release, ha master|backup|fault), run without loading commander when
// argv has one of their plain shapes. pppd's ip-down hook runs `dispatcher
// hook` and keepalived's notify script `dispatcher ha master`, so this
// start-up is part of failover and takeover time; commander and the module
// graph behind cli/main.ts cost about a third of it on Node 20 (measured in
// `npm run bench`, cli-start).
//
// This is not a second parser: anything but the plain shapes (help, a wrong
// operand count, an unknown option, `--opt=value`, `--`) is left to cli/main.ts,
// whose commander gives the help and the usage errors. The commands, their
// operands and their actions are declared once (cli/spec.ts).

import { assignSpec, releaseSpec } from './commands/assign.js';
import { haRoleSpecs } from './commands/ha.js';
import { hookSpec } from './commands/hook.js';
import { poolsSpec } from './commands/pools.js';
import { statusSpec } from './commands/status.js';
import { DEFAULT_CONFIG, processContext, type Globals } from './context.js';
import { reportFailure } from './exit.js';
import { LazyRunner } from './lazy-runner.js';
import { arity, type CommandSpec, wordsOf } from './spec.js';

const SPECS: readonly CommandSpec[] = [hookSpec, statusSpec, poolsSpec, assignSpec, releaseSpec, ...haRoleSpecs];

/** The global options cli/main.ts declares, by the key commander gives them. */
const GLOBALS: Readonly<Record<string, keyof Globals>> = { '-c': 'config', '--config': 'config', '--state': 'state', '--socket': 'socket' };

export interface QuickCall {
  readonly spec: CommandSpec;
  readonly globals: Globals;
  readonly operands: readonly (string | undefined)[];
  readonly json: boolean;
}

/** The call argv makes, when it has one of the plain shapes; undefined leaves it to commander. */
export function quickCall(argv: readonly string[]): QuickCall | undefined {
  const args = argv.slice(2);
  const globals: { -readonly [K in keyof Globals]: Globals[K] } = { config: DEFAULT_CONFIG };
  let i = 0;
  for (; i < args.length && (args[i] as string).startsWith('-'); i += 2) {
    const key = GLOBALS[args[i] as string];
    const value = args[i + 1];
    if (!key || value === undefined) return undefined;
    globals[key] = value;
  }
  const spec = SPECS.find((s) => wordsOf(s).every((word, k) => args[i + k] === word));
  if (!spec) return undefined;
  const rest = args.slice(i + wordsOf(spec).length);
  const json = spec.json && rest.includes('--json');
  const operands = rest.filter((arg) => !(json && arg === '--json'));
  // An option we do not take here (--help, a global after the command, a typo) goes to commander.
  if (operands.some((arg) => arg.startsWith('-'))) return undefined;
  const [required, all] = arity(spec);
  if (operands.length < required || operands.length > all) return undefined;
  return { spec, globals, operands: [...operands, ...Array<undefined>(all - operands.length)], json };
}

/** The exit code of a quick call, or undefined when argv is for cli/main.ts. */
export async function quickMain(argv: readonly string[]): Promise<number | undefined> {
  const call = quickCall(argv);
  if (!call) return undefined;
  const ctx = processContext(new LazyRunner(), call.globals);
  try {
    await call.spec.action(ctx, call.operands, { json: call.json });
    return ctx.exitCode;
  } catch (error) {
    return reportFailure(ctx.err, error);
  }
}

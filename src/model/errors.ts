// The two expected failures (DESIGN.md §2). Anything else is a bug.

export interface ConfigProblem {
  /** Dotted path of the offending field, e.g. "uplinks[1].weight". */
  readonly field: string;
  readonly problem: string;
  readonly fix: string;
}

/** The configuration (or a request built from operator input) is wrong; nothing was changed. */
export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[], source?: string) {
    const where = source ? ` in ${source}` : '';
    const lines = problems.map((p) => `  ${p.field}: ${p.problem} — ${p.fix}`);
    super(`invalid configuration${where}:\n${lines.join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** A command exited badly. Carries everything needed to reproduce it. */
export class CommandError extends Error {
  readonly argv: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(argv: readonly string[], exitCode: number | null, stderr: string, cause?: string) {
    const detail = cause ?? (stderr.trim().split('\n').slice(-3).join(' / ') || 'no output');
    super(`${argv.join(' ')} failed (exit ${exitCode ?? 'none'}): ${detail}`);
    this.name = 'CommandError';
    this.argv = argv;
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

/** A request the daemon understood but cannot carry out (unknown client, unknown uplink…). */
export class RequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RequestError';
  }
}

/** The daemon could not be asked (no answer in time, no permission, an unreadable answer) or failed inside. */
export class ControlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ControlError';
  }
}

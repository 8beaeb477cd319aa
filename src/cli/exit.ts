// Exit codes, in one place: 0 ok, 2 usage or configuration error, 1 any other failure.
// (commander's own usage errors are mapped in cli/main.ts: the quick door
// runs without commander.)

import { ConfigError, RequestError } from '../model/errors.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** Signals that end a long-running command (SIGHUP: the terminal or SSH session went away); each cleans up first. */
export const ENDING_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Raised by commands that have already explained themselves. */
export class Failure extends Error {
  constructor(
    message: string,
    readonly code: number = EXIT_FAILURE,
  ) {
    super(message);
    this.name = 'Failure';
  }
}

export function exitCodeFor(error: unknown): number {
  if (error instanceof Failure) return error.code;
  if (error instanceof ConfigError || error instanceof RequestError) return EXIT_USAGE;
  return EXIT_FAILURE;
}

/** Failures that are explained by their message; anything else is a bug and gets its stack printed. */
const EXPECTED = new Set(['ConfigError', 'CommandError', 'RequestError', 'ControlError', 'Failure', 'AlreadyRunning', 'StoreError', 'ParseError', 'SkeletonError']);

export function isExpected(error: unknown): boolean {
  return error instanceof Error && EXPECTED.has(error.name);
}

/** Says what failed (with the stack when it is a bug, to show where) and gives the exit code. */
export function reportFailure(err: (text: string) => void, error: unknown): number {
  err(`dispatcher: ${(error as Error).message}\n`);
  if (!isExpected(error)) err(`${(error as Error).stack ?? ''}\n`);
  return exitCodeFor(error);
}

// The one exec seam (Tailscale's "runner" idea): every command the dispatcher
// runs goes through a Runner, as an argument array, never through a shell.
// A prefix (e.g. ["ip", "netns", "exec", "gw"]) runs everything inside a
// network namespace; tests substitute a fake that records argv and stdin.

import { spawn as spawnChild } from 'node:child_process';
import { constants } from 'node:os';
import { execa, execaSync } from 'execa';
import { CommandError } from '../model/errors.js';
import { lineSplitter } from '../parse/lines.js';
import { spawnOffThread } from './off-thread.js';
import { polledOutput, type PolledOutput } from './polled-output.js';
import type { Process, SpawnOptions } from './spawned.js';

export type { Process, SpawnOptions } from './spawned.js';

export interface RunOptions {
  /** Text written to the command's stdin (batch payloads). */
  readonly input?: string;
  /** Killed after this long; default 30 s. */
  readonly timeoutMs?: number;
  /** Exit codes that are not failures (conntrack -D exits 1 when nothing matched). */
  readonly okExitCodes?: readonly number[];
  /** Extra environment variables (notification hooks get the change this way). */
  readonly env?: Readonly<Record<string, string>>;
  /** Runs the command with this group id: an uplink's group sends its traffic by that uplink (contract.ts uplinkGroup). */
  readonly gid?: number;
  /** Told the process id as soon as the command has started (the kernel names it in netfilter change events). */
  readonly onSpawn?: (pid: number) => void;
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/** A tool kept running to answer requests on stdin, one per line (system/tool-session.ts). */
export interface SessionSpec {
  readonly argv: readonly string[];
  /** Sent after each request; its answer, one line matching `marker`, ends the request's answer. */
  readonly markerRequest: string;
  readonly marker: RegExp;
  /** What the tool prints before it reads each request, with no newline; '' for none. */
  readonly prompt: string;
  /**
   * Sent before the marker request where the tool complains on stderr: its
   * known complaint (`errorMarker`) ends the request's complaints. stdout and
   * stderr are two pipes read apart; without it a complaint may be read after
   * the marker's answer, and missed.
   */
  readonly errorMarkerRequest?: string;
  readonly errorMarker?: RegExp;
}

export interface Runner {
  run(argv: readonly string[], options?: RunOptions): Promise<RunResult>;
  spawn(argv: readonly string[], options?: SpawnOptions): Process;
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_OUTPUT = 512 * 1024 * 1024;

export class ExecaRunner implements Runner {
  constructor(private readonly prefix: readonly string[] = []) {}

  private split(argv: readonly string[]): [string, string[]] {
    const full = [...this.prefix, ...argv];
    const [file, ...args] = full;
    if (!file) throw new RangeError('empty command');
    return [file, args];
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const [file, args] = this.split(argv);
    const subprocess = execa(file, args, {
      input: options.input ?? '',
      timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
      reject: false,
      stripFinalNewline: false,
      maxBuffer: MAX_OUTPUT,
      env: { LC_ALL: 'C', ...options.env },
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
    if (subprocess.pid !== undefined) options.onSpawn?.(subprocess.pid);
    const result = await subprocess;
    const ok = options.okExitCodes ?? [0];
    if (result.failed && result.exitCode === undefined) {
      const cause = result.timedOut ? `timed out after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` : ((result.cause as Error | undefined)?.message ?? result.shortMessage);
      throw new CommandError(argv, null, String(result.stderr ?? ''), cause);
    }
    const exitCode = result.exitCode ?? 0;
    if (!ok.includes(exitCode)) throw new CommandError(argv, exitCode, String(result.stderr));
    return { stdout: String(result.stdout), stderr: String(result.stderr), exitCode };
  }

  spawn(argv: readonly string[], options: SpawnOptions = {}): Process {
    const [file, args] = this.split(argv);
    if (options.offThread) return spawnOffThread(file, args, options);
    const polled = options.readWhenAsked && options.onLine ? polledOutput((path) => void execaSync('mkfifo', ['-m', '600', path])) : null;
    if (polled && options.onLine) return spawnPolled(file, args, polled, options.onLine);
    const child = execa(file, args, {
      reject: false,
      buffer: false,
      stdin: 'pipe',
      stdout: options.onLine ? 'pipe' : 'ignore',
      stderr: options.onErrorLine ? 'pipe' : 'ignore',
      env: { LC_ALL: 'C' },
    });
    if (options.onLine) {
      child.stdout?.setEncoding('utf8');
      child.stdout?.on('data', lineSplitter(options.onLine));
    }
    if (options.onErrorLine) {
      child.stderr?.setEncoding('utf8');
      child.stderr?.on('data', lineSplitter(options.onErrorLine));
    }
    child.stdin?.on('error', () => undefined);
    return {
      pid: child.pid,
      ended: child.then((result) => result.exitCode ?? null),
      write: (text) => void child.stdin?.write(text),
      stop: (signal = 'SIGTERM') => void child.kill(signal),
    };
  }
}

/**
 * A command whose stdout goes into `output`, read when the caller drains it;
 * stderr is not read. Node's own spawn: execa's types take no descriptor
 * above 9 for stdout.
 */
function spawnPolled(file: string, args: string[], output: PolledOutput, onLine: (line: string) => void): Process {
  const child = spawnChild(file, args, { stdio: ['pipe', output.writeFd, 'ignore'], env: { ...process.env, LC_ALL: 'C' } });
  output.handedOver();
  const split = lineSplitter(onLine);
  const drain = (): void => {
    const text = output.read();
    if (text !== '') split(text);
  };
  child.stdin?.on('error', () => undefined);
  const ended = new Promise<number | null>((resolve) => {
    let done = false;
    const finish = (code: number | null): void => {
      if (done) return;
      done = true;
      // What it printed before it ended still reaches onLine; then the FIFO is closed.
      drain();
      output.close();
      resolve(code);
    };
    // A command that cannot start reports only an error; one that ran closes with its code (null: a signal).
    child.once('error', () => finish(null));
    child.once('close', (code) => finish(code));
  });
  return {
    pid: child.pid,
    ended,
    write: (text) => void child.stdin?.write(text),
    stop: (signal = 'SIGTERM') => void child.kill(signal),
    drain,
  };
}

/**
 * Runs an operator's command in the foreground (`dispatcher exec`): its stdio
 * is ours, its group is the one given, and its exit code (or 128 + signal
 * number, as shells report it) becomes ours. Signals we receive are passed on.
 */
export async function runAttached(argv: readonly string[], gid: number): Promise<number> {
  const [file, ...args] = argv;
  if (!file) throw new RangeError('empty command');
  const child = execa(file, args, { stdio: 'inherit', reject: false, gid, extendEnv: true });
  const forward = (signal: NodeJS.Signals): void => void child.kill(signal);
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, forward);
  try {
    const result = await child;
    if (result.exitCode !== undefined) return result.exitCode;
    if (result.signal) return 128 + (constants.signals[result.signal] ?? 0);
    throw new CommandError(argv, null, '', (result.cause as Error | undefined)?.message ?? result.shortMessage);
  } finally {
    for (const signal of signals) process.off(signal, forward);
  }
}

/** What a failed command said: the first lines of its stderr (or the failure itself), short enough for status and logs. */
export function whatItSaid(error: unknown): string {
  if (error instanceof CommandError) {
    const said = error.stderr
      .trim()
      .split('\n')
      .filter((line) => line.trim() !== '')
      .slice(0, 3)
      .join('; ');
    return (said || error.message).slice(0, 300);
  }
  return (error as Error).message;
}

// A Runner that answers from canned output and records every command with its
// stdin, so engine tests run without root and assert exactly what would run.

import type { Process, RunOptions, RunResult, Runner, SpawnOptions } from '../../src/system/exec.js';
import { CommandError } from '../../src/model/errors.js';

export interface Call {
  readonly argv: readonly string[];
  readonly input?: string;
}

type Answer = string | ((argv: readonly string[], input?: string) => string);

/** The ipset session the daemon keeps running (backends/iptables/adapter.ts IPSET_SESSION). */
const IPSET_SESSION = 'stdbuf -oL ipset -';

export class FakeRunner implements Runner {
  readonly calls: Call[] = [];
  private readonly answers = new Map<string, Answer>();
  private readonly failures = new Map<string, { exitCode: number; stderr: string }>();

  answer(command: string, output: Answer): this {
    this.answers.set(command, output);
    return this;
  }

  /** The next call whose argv starts with `command` fails once. */
  failOnce(command: string, exitCode: number, stderr: string): this {
    this.failures.set(command, { exitCode, stderr });
    return this;
  }

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv, ...(options.input !== undefined ? { input: options.input } : {}) });
    return this.respond(argv, options.input);
  }

  /** The canned answer to `argv` (throws a failOnce's CommandError). */
  private respond(argv: readonly string[], input?: string): RunResult {
    const line = argv.join(' ');
    for (const [command, failure] of this.failures) {
      if (line.startsWith(command)) {
        this.failures.delete(command);
        throw new CommandError(argv, failure.exitCode, failure.stderr);
      }
    }
    // The longest matching prefix wins, so "ipset save x" can differ from "ipset".
    const match = [...this.answers.keys()].filter((k) => line.startsWith(k)).sort((a, b) => b.length - a.length)[0];
    const answer = match === undefined ? '' : (this.answers.get(match) as Answer);
    return { stdout: typeof answer === 'function' ? answer(argv, input) : answer, stderr: '', exitCode: 0 };
  }

  /** Spawned processes' line handlers, so a test can play what the process prints. */
  readonly spawned: { argv: readonly string[]; options: SpawnOptions }[] = [];

  spawn(argv: readonly string[], options: SpawnOptions = {}): Process {
    this.spawned.push({ argv, options });
    if (argv.join(' ') === IPSET_SESSION) return this.ipsetSession(argv, options);
    this.calls.push({ argv });
    return { pid: undefined, ended: new Promise(() => undefined), write() {}, stop() {} };
  }

  /**
   * `ipset -` kept running (under stdbuf): each command line read is recorded
   * (a change as a call of the session with that line as its input), and answered as
   * `ipset <line>` would be here (its canned output, or a failOnce's stderr);
   * `version` answers ipset's version line. The prompt comes before each.
   */
  private ipsetSession(argv: readonly string[], options: SpawnOptions): Process {
    const say = (line: string): void => options.onLine?.(`ipset> ${line}`);
    return {
      pid: undefined,
      ended: new Promise(() => undefined),
      write: (text: string) => {
        for (const line of text.split('\n').filter((l) => l !== '')) {
          if (line === 'version') {
            say('ipset v7.17, protocol version: 7');
            continue;
          }
          const name = /^list -t (\S+)$/.exec(line)?.[1];
          if (name !== undefined && name.length > 31) {
            options.onErrorLine?.(`ipset v7.17: Syntax error: setname '${name}' is longer than 31 characters`);
            continue;
          }
          const command = ['ipset', ...line.split(' ')];
          // A question (the check's `list -t`) is recorded as the command it asks; a change as the session's input.
          this.calls.push(/^(list|save|test) /.test(line) ? { argv: command } : { argv, input: `${line}\n` });
          try {
            for (const out of this.respond(command)
              .stdout.split('\n')
              .filter((l) => l !== ''))
              say(out);
          } catch (error) {
            options.onErrorLine?.((error as CommandError).stderr);
          }
        }
      },
      stop() {},
    };
  }

  /** Commands that change the kernel (everything but reads). */
  writes(): Call[] {
    return this.calls.filter((c) => c.input !== undefined || c.argv.includes('-w'));
  }
}

// A Runner that answers from canned output and records every command with its
// stdin, so engine tests run without root and assert exactly what would run.

import type { Process, RunOptions, RunResult, Runner, SpawnOptions } from '../../src/system/exec.js';
import { CommandError } from '../../src/model/errors.js';

export interface Call {
  readonly argv: readonly string[];
  readonly input?: string;
}

type Answer = string | ((argv: readonly string[], input?: string) => string);

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
    return { stdout: typeof answer === 'function' ? answer(argv, options.input) : answer, stderr: '', exitCode: 0 };
  }

  /** Spawned processes' line handlers, so a test can play what the process prints. */
  readonly spawned: { argv: readonly string[]; options: SpawnOptions }[] = [];

  spawn(argv: readonly string[], options: SpawnOptions = {}): Process {
    this.calls.push({ argv });
    this.spawned.push({ argv, options });
    return { pid: undefined, ended: new Promise(() => undefined), write() {}, stop() {} };
  }

  /** Commands that change the kernel (everything but reads). */
  writes(): Call[] {
    return this.calls.filter((c) => c.input !== undefined || c.argv.includes('-w'));
  }
}

// One long-lived interactive tool (`ipset -`) asked the same cheap question
// again and again, instead of one process per question. A process start costs
// the daemon about 8 ms of wall time here (fork and exec of a large process),
// and self-repair's check asks every 0.75 s; a session costs one pipe write.
//
// Each request is followed by a marker request whose one-line answer is known
// (`version`): the lines in between are the answer. Nothing is parsed here;
// the caller reads the answer (backends/iptables/check.ts).

import { CommandError } from '../model/errors.js';
import type { Clock, TimerHandle } from './clock.js';
import type { Process, Runner, SessionSpec } from './exec.js';

/** An answer later than this ends the session: the next question starts a new one. */
export const SESSION_TIMEOUT_MS = 2000;

interface Pending {
  readonly lines: string[];
  readonly errors: string[];
  readonly resolve: (answer: string) => void;
  readonly reject: (error: Error) => void;
  readonly timer: TimerHandle;
}

export class ToolSession {
  private process: Process | null = null;
  private pending: Pending | null = null;
  /** Questions wait for the one before them: the tool answers in order, one at a time. */
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  /** Processes started, for tests and the logs (a session that keeps restarting is a failing one). */
  starts = 0;

  constructor(
    private readonly runner: Runner,
    private readonly spec: SessionSpec,
    private readonly clock: Clock,
    private readonly timeoutMs = SESSION_TIMEOUT_MS,
  ) {}

  /** The tool's answer to one request line; rejects (and ends the session) when the tool fails, ends or is late. */
  ask(request: string): Promise<string> {
    if (request.includes('\n')) return Promise.reject(new RangeError('a session request is one line'));
    const answer = this.queue.then(() => this.send(request));
    this.queue = answer.catch(() => undefined);
    return answer;
  }

  /** Ends the tool; questions asked after this fail. */
  close(): void {
    this.closed = true;
    this.end(new Error('the session was closed'));
  }

  private send(request: string): Promise<string> {
    if (this.closed) return Promise.reject(new Error('the session was closed'));
    const process = this.process ?? this.start();
    return new Promise<string>((resolve, reject) => {
      const timer = this.clock.after(this.timeoutMs, () => this.end(new CommandError(this.spec.argv, null, '', `no answer to "${request}" within ${this.timeoutMs} ms`)));
      this.pending = { lines: [], errors: [], resolve, reject, timer };
      process.write(`${request}\n${this.spec.markerRequest}\n`);
    });
  }

  private start(): Process {
    this.starts += 1;
    const process = this.runner.spawn(this.spec.argv, {
      onLine: (line) => this.line(process, line),
      onErrorLine: (line) => {
        if (this.process === process) this.pending?.errors.push(line);
      },
    });
    this.process = process;
    void process.ended.then((code) => {
      if (this.process === process) this.end(new CommandError(this.spec.argv, code, this.pending?.errors.join('\n') ?? '', 'the session ended'));
    });
    return process;
  }

  private line(process: Process, raw: string): void {
    const pending = this.pending;
    if (this.process !== process || !pending) return;
    // The prompt comes before each request is read, with no newline of its own: it starts the next line printed.
    let line = raw;
    while (this.spec.prompt !== '' && line.startsWith(this.spec.prompt)) line = line.slice(this.spec.prompt.length);
    if (!this.spec.marker.test(line)) {
      if (line !== '') pending.lines.push(line);
      return;
    }
    this.pending = null;
    this.clock.clear(pending.timer);
    if (pending.errors.length > 0) pending.reject(new CommandError(this.spec.argv, null, pending.errors.join('\n')));
    else pending.resolve(pending.lines.map((l) => `${l}\n`).join(''));
  }

  /** Stops the tool and fails the question waiting, if any; the next question starts the tool again. */
  private end(error: Error): void {
    const { process, pending } = this;
    this.process = null;
    this.pending = null;
    process?.stop();
    if (pending) {
      this.clock.clear(pending.timer);
      pending.reject(error);
    }
  }
}

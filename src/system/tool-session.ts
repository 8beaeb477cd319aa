// One long-lived interactive tool (`ipset -`) asked the same cheap question
// again and again, or told a few commands, instead of one process each time. A process start costs
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
  /** The marker's answer was read; and the error marker's, where the spec has one (true from the start where not). */
  marker: boolean;
  errorMarker: boolean;
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
    return this.tell([request]);
  }

  /**
   * Commands, one per line, run in order; resolves with what they printed
   * once the tool read them all, rejects when one complained on stderr (or
   * the tool failed, ended or was late).
   */
  tell(lines: readonly string[]): Promise<string> {
    if (lines.some((line) => line.includes('\n'))) return Promise.reject(new RangeError('a session request is one line'));
    const answer = this.queue.then(() => this.send(lines.join('\n')));
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
      const { errorMarkerRequest, markerRequest } = this.spec;
      this.pending = { lines: [], errors: [], marker: false, errorMarker: errorMarkerRequest === undefined, resolve, reject, timer };
      process.write(`${request}\n${errorMarkerRequest === undefined ? '' : `${errorMarkerRequest}\n`}${markerRequest}\n`);
    });
  }

  private start(): Process {
    this.starts += 1;
    const process = this.runner.spawn(this.spec.argv, {
      onLine: (line) => this.line(process, line),
      onErrorLine: (line) => this.errorLine(process, line),
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
    pending.marker = true;
    this.finish(pending);
  }

  private errorLine(process: Process, line: string): void {
    const pending = this.pending;
    if (this.process !== process || !pending) return;
    if (this.spec.errorMarker?.test(line)) {
      pending.errorMarker = true;
      this.finish(pending);
    } else pending.errors.push(line);
  }

  /** Answers the request once both its markers were read: every complaint before the error marker has been. */
  private finish(pending: Pending): void {
    if (!pending.marker || !pending.errorMarker) return;
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

/**
 * One session per tool, shared by whoever asks it (the client sets' check,
 * the loader): one `ipset -` for the daemon, not one per user. Requests to a
 * session wait for each other.
 */
export class ToolSessions {
  private readonly sessions = new Map<string, ToolSession>();

  constructor(
    private readonly runner: Runner,
    private readonly clock: Clock,
  ) {}

  of(spec: SessionSpec): ToolSession {
    const key = spec.argv.join(' ');
    let session = this.sessions.get(key);
    if (!session) this.sessions.set(key, (session = new ToolSession(this.runner, spec, this.clock)));
    return session;
  }

  /** Ends every session's tool. */
  close(): void {
    for (const session of this.sessions.values()) session.close();
    this.sessions.clear();
  }
}

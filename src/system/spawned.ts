// What a long-running command is to its caller, and how its output reaches
// it: shared by the runner (system/exec.ts) and the worker-thread reader
// (system/off-thread.ts).

export interface SpawnOptions {
  /** Called with each line the command prints on stdout. */
  readonly onLine?: (line: string) => void;
  /** Called with each line on stderr (ignored when absent). */
  readonly onErrorLine?: (line: string) => void;
  /**
   * Read the output on a worker thread (system/off-thread.ts), so it is drained
   * while this thread is busy: for a netlink monitor that loses events once
   * its pipe stays full. The lines still reach the callbacks on this thread.
   */
  readonly offThread?: boolean;
  /**
   * Hand stdout's lines to onLine only when `drain()` is called, not as they
   * come (system/polled-output.ts): for a command that prints often and
   * whose lines can wait for the caller's next look, each of which would
   * otherwise wake the daemon. Where no FIFO can be made the lines come as
   * usual (and drain does nothing).
   */
  readonly readWhenAsked?: boolean;
}

/** A long-running command (ip monitor, the lab's daemon and servers). */
export interface Process {
  readonly pid: number | undefined;
  /** Resolves with the exit code (null when killed by a signal) once it ends. */
  readonly ended: Promise<number | null>;
  write(text: string): void;
  stop(signal?: NodeJS.Signals): void;
  /** Spawned with readWhenAsked: hands what it printed since the last drain to onLine now. */
  drain?(): void;
}

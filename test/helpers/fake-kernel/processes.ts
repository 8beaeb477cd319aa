// Long-running commands of the fake: `ip monitor …` (runs until stopped; the
// test pushes the lines the kernel would report) and the health monitor's
// `ping` (one line per interval, a reply while the target answers through
// its interface, "no answer yet" while it does not, as `ping -n -O` prints,
// stamped with the time under -D). Output spawned to be read when asked
// waits for drain, as the real FIFO does.

import type { Process, SpawnOptions } from '../../../src/system/exec.js';

let nextPid = 40_000;

export class FakeProcess implements Process {
  readonly pid = nextPid++;
  readonly ended: Promise<number | null>;
  readonly written: string[] = [];
  private finish!: (code: number | null) => void;
  private running = true;
  private readonly stoppers: (() => void)[] = [];
  private writeHandler: ((text: string) => void) | undefined;
  /** Lines printed and not yet drained (spawned with readWhenAsked). */
  private readonly held: string[] = [];

  constructor(
    readonly argv: readonly string[],
    private readonly options: SpawnOptions,
  ) {
    this.ended = new Promise((resolve) => (this.finish = resolve));
  }

  get alive(): boolean {
    return this.running;
  }

  /** The process prints a line on stdout. */
  print(line: string): void {
    if (!this.running) return;
    if (this.options.readWhenAsked) this.held.push(line);
    else this.options.onLine?.(line);
  }

  drain(): void {
    for (const line of this.held.splice(0)) this.options.onLine?.(line);
  }

  /** The process prints a line on stderr. */
  printError(line: string): void {
    if (this.running) this.options.onErrorLine?.(line);
  }

  onStop(stopper: () => void): void {
    this.stoppers.push(stopper);
  }

  /** The process ends by itself with this exit code (a monitor that crashed, ping whose device vanished). */
  exit(code: number | null): void {
    if (!this.running) return;
    this.running = false;
    for (const stopper of this.stoppers) stopper();
    // What it printed before it ended is still read.
    this.drain();
    this.finish(code);
  }

  write(text: string): void {
    this.written.push(text);
    if (this.running) this.writeHandler?.(text);
  }

  /** What the process does with what is written to its stdin (an interactive tool's answers). */
  onWrite(handler: (text: string) => void): void {
    this.writeHandler = handler;
  }

  /** Killed by a signal: ends with no exit code, as execa reports it. */
  stop(): void {
    this.exit(null);
  }
}

export interface PingArgs {
  readonly intervalMs: number;
  readonly iface: string | undefined;
  readonly target: string;
  readonly count: number | undefined;
  /** -D: each line stamped with the time it was printed. */
  readonly stamped: boolean;
}

/** Reads the options ping is given here (-n -O -D -q -i -W -I -m -c) and its target; anything else is refused. */
export function parsePing(argv: readonly string[]): PingArgs {
  let intervalMs = 1000;
  let iface: string | undefined;
  let count: number | undefined;
  let stamped = false;
  const rest: string[] = [];
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '-D') stamped = true;
    if (arg === '-n' || arg === '-O' || arg === '-D' || arg === '-q') continue;
    const value = argv[++i];
    if (arg === '-i') intervalMs = Number(value) * 1000;
    else if (arg === '-I') iface = value;
    else if (arg === '-c') count = Number(value);
    else if (arg === '-W' || arg === '-m') continue;
    else {
      rest.push(arg);
      i--;
    }
  }
  const [target] = rest;
  if (rest.length !== 1 || target === undefined || !Number.isFinite(intervalMs)) throw new Error(`fake kernel: ping with arguments it does not know: ${JSON.stringify(argv)}`);
  return { intervalMs, iface, target, count, stamped };
}

/** Starts printing ping's lines on `process` until it is stopped. */
export function runPing(process: FakeProcess, ping: PingArgs, answers: () => boolean, source: () => string | undefined): void {
  process.print(`PING ${ping.target} (${ping.target}) from ${source() ?? '0.0.0.0'} ${ping.iface ?? ''}: 56(84) bytes of data.`);
  let seq = 0;
  const timer = setInterval(
    () => {
      seq += 1;
      const stamp = ping.stamped ? `[${(Date.now() / 1000).toFixed(6)}] ` : '';
      process.print(stamp + (answers() ? `64 bytes from ${ping.target}: icmp_seq=${seq} ttl=63 time=0.042 ms` : `no answer yet for icmp_seq=${seq}`));
    },
    Math.max(1, ping.intervalMs),
  );
  timer.unref();
  process.onStop(() => clearInterval(timer));
}

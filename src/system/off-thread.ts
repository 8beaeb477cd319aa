// A long-running command whose output is read on a worker thread (Runner.spawn
// with `offThread`). Its pipe is drained however long the main thread is busy
// planning a run: `ip monitor neigh` blocks on a full pipe, the kernel's
// netlink buffer behind it then overflows and events are lost. Measured here:
// a reader that never stalls sees all of a 50,000-entry burst, while the
// daemon's reads between runs of 50–110 ms lost a third to a half of it,
// and the rescan that repairs that took most of the burst's time.
//
// The worker only moves text: lines are split and handled on the main thread,
// in order, once it is free.

import { Worker } from 'node:worker_threads';
import { lineSplitter } from '../parse/lines.js';
import type { Process, SpawnOptions } from './spawned.js';

/**
 * The worker's whole program, run from this string (eval), so it needs no
 * file of its own beside the compiled or bundled code. The command starts
 * with an argument array, never a shell. Messages out: { pid }, { out },
 * { err }, then one { exit } once its output has all been sent; in:
 * { signal } and { write }.
 */
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { spawn } = require('node:child_process');
const child = spawn(workerData.file, workerData.args, {
  stdio: ['pipe', workerData.out ? 'pipe' : 'ignore', workerData.err ? 'pipe' : 'ignore'],
  env: { ...process.env, LC_ALL: 'C' },
});
let ended = false;
const end = (code) => {
  if (ended) return;
  ended = true;
  parentPort.postMessage({ exit: code });
};
child.on('spawn', () => parentPort.postMessage({ pid: child.pid }));
child.on('error', () => end(null));
child.on('close', (code) => end(code));
child.stdin.on('error', () => undefined);
for (const name of ['out', 'err']) {
  const stream = name === 'out' ? child.stdout : child.stderr;
  if (!stream) continue;
  stream.setEncoding('utf8');
  stream.on('data', (text) => parentPort.postMessage({ [name]: text }));
}
parentPort.on('message', (message) => {
  if (message.signal) child.kill(message.signal);
  if (message.write !== undefined) child.stdin.write(message.write);
});
`;

type Message = { pid: number } | { out: string } | { err: string } | { exit: number | null };

/** Runs `file args` from a worker thread; lines reach `options` on this thread, in order. */
export function spawnOffThread(file: string, args: readonly string[], options: SpawnOptions): Process {
  const worker = new Worker(WORKER, { eval: true, workerData: { file, args, out: options.onLine !== undefined, err: options.onErrorLine !== undefined } });
  const out = options.onLine ? lineSplitter(options.onLine) : null;
  const err = options.onErrorLine ? lineSplitter(options.onErrorLine) : null;
  let pid: number | undefined;
  let settle: (code: number | null) => void = () => undefined;
  const ended = new Promise<number | null>((resolve) => {
    settle = resolve;
  });
  worker.on('message', (message: Message) => {
    if ('out' in message) out?.(message.out);
    else if ('err' in message) err?.(message.err);
    else if ('pid' in message) pid = message.pid;
    else {
      settle(message.exit);
      void worker.terminate();
    }
  });
  // The worker itself failing (it should not) ends the command as a signal would: the caller restarts it.
  worker.on('error', () => settle(null));
  worker.on('exit', () => settle(null));
  return {
    get pid() {
      return pid;
    },
    ended,
    write: (text) => worker.postMessage({ write: text }),
    stop: (signal = 'SIGTERM') => worker.postMessage({ signal }),
  };
}

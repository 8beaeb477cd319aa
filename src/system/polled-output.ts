// A command's stdout read when asked rather than as it comes: the command
// writes into a FIFO whose read end the daemon holds without registering it
// with the event loop, and reads it without blocking when it chooses (the
// health monitor's tick). A probe's ping prints ten lines a second; read as
// they come, each line would wake the daemon, and on a small virtual machine
// a wakeup costs more than the line's work. The FIFO is made in a private
// directory and removed as soon as both ends are open, so nothing is left on
// disk whatever happens to the daemon later. The directory is on tmpfs
// (/dev/shm) where there is one: a FIFO's inode takes the time of every
// write, and on ext4 each of those is a journalled inode update.

import { closeSync, constants, existsSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

/** The two ends of a FIFO whose name is already gone: `writeFd` for the command (ours is closed once it has it), `read` for us. */
export interface PolledOutput {
  readonly writeFd: number;
  /** The command has its copy of the write end: ours is closed, so the end of its output reads as the end. */
  handedOver(): void;
  /** Everything written since the last read, decoded; '' when nothing was. */
  read(): string;
  close(): void;
}

const CHUNK = 64 * 1024;
const SHM = '/dev/shm';

/**
 * Makes the FIFO with `mkfifo` (Node has no call for it; the runner, the one
 * room that starts processes, runs the command); null when it cannot be made
 * here (no mkfifo, a read-only temporary directory): the caller pipes as usual.
 */
export function polledOutput(mkfifo: (path: string) => void): PolledOutput | null {
  let dir: string | null = null;
  try {
    dir = mkdtempSync(join(existsSync(SHM) ? SHM : tmpdir(), 'dispatcher-output-'));
    const path = join(dir, 'fifo');
    mkfifo(path);
    // The read end first and non-blocking (it opens without a writer); then the write end, blocking for the command,
    // opens at once because a reader exists.
    // No access time either: a read would write the inode otherwise.
    const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOATIME);
    const writeFd = openSync(path, constants.O_WRONLY);
    return fifoEnds(readFd, writeFd);
  } catch {
    return null;
  } finally {
    if (dir !== null) rmSync(dir, { recursive: true, force: true });
  }
}

function fifoEnds(readFd: number, writeFd: number): PolledOutput {
  const buffer = Buffer.alloc(CHUNK);
  // A character split between two reads is joined, not garbled.
  const decoder = new StringDecoder('utf8');
  let writeOpen = true;
  let closed = false;
  return {
    writeFd,
    handedOver() {
      if (!writeOpen) return;
      writeOpen = false;
      closeSync(writeFd);
    },
    read() {
      if (closed) return '';
      let text = '';
      for (;;) {
        let count: number;
        // An empty FIFO answers EAGAIN, which Node throws: no stack is taken for an error that is the expected answer.
        const limit = Error.stackTraceLimit;
        Error.stackTraceLimit = 0;
        try {
          count = readSync(readFd, buffer, 0, CHUNK, null);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'EAGAIN') return text;
          throw error;
        } finally {
          Error.stackTraceLimit = limit;
        }
        // 0: every writer has closed and all is read.
        if (count === 0) return text;
        text += decoder.write(buffer.subarray(0, count));
        // Less than asked for: the FIFO was empty at that moment. Reading on would only fail with EAGAIN, whose
        // error object costs more than the read (drain is called on every tick).
        if (count < CHUNK) return text;
      }
    },
    close() {
      if (closed) return;
      closed = true;
      this.handedOver();
      closeSync(readFd);
    },
  };
}

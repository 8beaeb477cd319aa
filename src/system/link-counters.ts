// The kernel's packet counters of every interface, read from /proc/net/dev:
// one small read of this network namespace's file. The file stays open and is
// read again from its start each time (procfs regenerates it), into one
// reused buffer, so a read every 25-100 ms costs no open, close or allocation of
// its own — unlike a netfilter counter listing, which costs a process.

import { openSync, readSync } from 'node:fs';
import { type LinkCounters, parseNetDev } from '../parse/proc-net-dev.js';

export type ReadLinkCounters = () => ReadonlyMap<string, LinkCounters>;

const PATH = '/proc/net/dev';
let fd: number | null = null;
const buffer = Buffer.allocUnsafe(64 * 1024);

export const readLinkCounters: ReadLinkCounters = () => {
  fd ??= openSync(PATH, 'r');
  const length = readSync(fd, buffer, 0, buffer.length, 0);
  return parseNetDev(buffer.toString('latin1', 0, length));
};

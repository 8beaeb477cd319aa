// The packet filter's change events (`nft monitor`): every committed
// transaction, ours and other software's (iptables-nft included), as its
// event lines and the process that committed it.

import { generationEnd, type GenerationEnd } from '../parse/nft-monitor.js';
import type { Process, Runner } from './exec.js';

/** nft monitor's word when the kernel dropped events (netlink buffer overrun); nft 1.0.x prints it on stdout. */
const LOST = /lost some netlink events/i;

/** Streams each committed transaction: its event lines, then who committed it; `onLost` when events were dropped. */
export function watchNetfilter(runner: Runner, argv: readonly string[], onTransaction: (lines: readonly string[], end: GenerationEnd) => void, onLost: () => void): Process {
  let lines: string[] = [];
  return runner.spawn(argv, {
    onErrorLine: (line) => {
      if (LOST.test(line)) onLost();
    },
    onLine: (line) => {
      if (LOST.test(line)) {
        onLost();
        return;
      }
      const end = generationEnd(line);
      if (!end) {
        if (line.trim() !== '') lines.push(line);
        return;
      }
      const transaction = lines;
      lines = [];
      onTransaction(transaction, end);
    },
  });
}

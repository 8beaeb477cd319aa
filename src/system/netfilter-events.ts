// The packet filter's change events (`nft monitor`): every committed
// transaction, ours and other software's (iptables-nft included), as its
// event lines and the process that committed it.

import { generationEnd, type GenerationEnd } from '../parse/nft-monitor.js';
import type { Process, Runner } from './exec.js';

/** Streams each committed transaction: its event lines, then who committed it. */
export function watchNetfilter(runner: Runner, argv: readonly string[], onTransaction: (lines: readonly string[], end: GenerationEnd) => void): Process {
  let lines: string[] = [];
  return runner.spawn(argv, {
    onLine: (line) => {
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

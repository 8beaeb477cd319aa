// Other software's iptables and ip6tables rules that use our mark bits (pure). A MARK,
// CONNMARK or mark match outside our chains that touches marks.mask would
// fight our pool and connection fields: the config is refused, naming it.

import { isOurChain } from '../../core/contract.js';
import { hex } from '../../core/marks.js';
import type { ConfigProblem } from '../../model/errors.js';
import type { IptablesObserved } from './types.js';

const FULL_MASK = 0xffffffff;

/** Options of MARK/CONNMARK targets and mark/connmark matches that carry a value[/mask] or a mask. */
const MARK_OPTIONS = new Set(['--set-xmark', '--set-mark', '--and-mark', '--or-mark', '--xor-mark', '--mark', '--mask', '--nfmask', '--ctmask']);

/** The mark bits a rule's arguments touch or test; 0 when it has nothing to do with marks. */
export function markBitsOf(args: readonly string[]): number {
  let bits = 0;
  for (let i = 0; i < args.length - 1; i++) {
    if (!MARK_OPTIONS.has(args[i] as string)) continue;
    const value = args[i + 1] as string;
    const slash = value.indexOf('/');
    const option = args[i] as string;
    // A bare value writes or compares the whole mark; --mask/--nfmask/--ctmask are masks themselves.
    const text = slash >= 0 ? value.slice(slash + 1) : option.endsWith('mask') ? value : null;
    const mask = text === null ? FULL_MASK : Number(text);
    if (Number.isInteger(mask) && mask >= 0) bits = (bits | mask) >>> 0;
  }
  return bits;
}

export function iptablesCollisions(mask: number, observed: Pick<IptablesObserved, 'netfilter' | 'netfilter6'>): ConfigProblem[] {
  const ourMask = mask >>> 0;
  const problems: ConfigProblem[] = [];
  const families = [
    { tool: 'iptables', tables: observed.netfilter },
    { tool: 'ip6tables', tables: observed.netfilter6 ?? [] },
  ];
  for (const { tool, tables } of families)
    for (const table of tables) {
      for (const rule of table.rules) {
        if (isOurChain(rule.chain)) continue;
        const overlap = (markBitsOf(rule.args) & ourMask) >>> 0;
        if (overlap !== 0) {
          problems.push({
            field: 'marks.mask',
            problem: `${tool} rule "-t ${table.name} -A ${rule.chain} ${rule.args.join(' ')}" of other software uses mark bits ${hex(overlap)} inside marks.mask ${hex(ourMask)}`,
            fix: 'choose a marks.mask whose bits that software does not use',
          });
        }
      }
    }
  return problems;
}

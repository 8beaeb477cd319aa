// Reads the gateway's own firewall for doctor and explain: iptables' filter
// table (iptables-save, whichever iptables is installed) and nftables' whole
// ruleset as JSON, read into the judge's tables (parse/firewall/). Reading
// only; core/firewall judges them.

import type { RuleSets } from '../core/firewall/model.js';
import { iptablesKind, ruleSets } from '../parse/firewall/rule-sets.js';
import { whatItSaid, type Runner } from './exec.js';
import { findTool } from './tools.js';

async function read(runner: Runner, tool: string, argv: readonly string[]): Promise<{ text: string | null; error: string | null }> {
  if (!(await findTool(tool))) return { text: null, error: null };
  try {
    return { text: (await runner.run(argv)).stdout, error: null };
  } catch (error) {
    return { text: null, error: whatItSaid(error) };
  }
}

export async function readFirewall(runner: Runner): Promise<RuleSets> {
  const [save, version, nft] = await Promise.all([read(runner, 'iptables-save', ['iptables-save', '-t', 'filter']), read(runner, 'iptables', ['iptables', '--version']), read(runner, 'nft', ['nft', '-j', 'list', 'ruleset'])]);
  return ruleSets({ iptablesSave: save.text, iptablesError: save.error, iptablesKind: iptablesKind(version.text), nftRuleset: nft.text, nftError: nft.error });
}

// What system/firewall.ts read (iptables-save of the filter table, nft's JSON
// ruleset) as the firewall judge's tables (pure). Each table is judged once: when
// iptables is the nftables shim, its filter table also appears in nft's
// ruleset as `ip filter`, and is read through iptables-save only.

import type { FwTable, RuleSets } from '../../core/firewall/model.js';
import { parseIptablesSave } from '../iptables-save.js';
import { iptablesFilter } from './from-iptables.js';
import { nftTables } from './from-nft.js';

export interface FirewallFacts {
  /** `iptables-save -t filter`, null when iptables is not installed. */
  readonly iptablesSave: string | null;
  /** What iptables-save said when it failed (a table the shim cannot show), else null. */
  readonly iptablesError: string | null;
  /** What `iptables --version` says it is built on, null without iptables. */
  readonly iptablesKind: 'nf_tables' | 'legacy' | null;
  /** `nft -j list ruleset`, null when nft is not installed. */
  readonly nftRuleset: string | null;
  readonly nftError: string | null;
}

export function iptablesKind(version: string | null): FirewallFacts['iptablesKind'] {
  if (!version) return null;
  return version.includes('(nf_tables)') ? 'nf_tables' : 'legacy';
}

export function ruleSets(facts: FirewallFacts): RuleSets {
  const tables: FwTable[] = [];
  const unread: string[] = [];
  let shimRead = false;
  if (facts.iptablesError) unread.push(`iptables-save -t filter failed: ${facts.iptablesError}`);
  else if (facts.iptablesSave !== null) {
    try {
      const filter = parseIptablesSave(facts.iptablesSave).find((t) => t.name === 'filter');
      if (filter) tables.push(iptablesFilter(filter, facts.iptablesKind === 'legacy' ? 'iptables-legacy filter' : 'iptables filter'));
      shimRead = facts.iptablesKind === 'nf_tables';
    } catch (error) {
      unread.push(`iptables-save -t filter: ${(error as Error).message}`);
    }
  }
  if (facts.nftError) unread.push(`nft list ruleset failed: ${facts.nftError}`);
  else if (facts.nftRuleset !== null) {
    try {
      tables.push(...nftTables(facts.nftRuleset, shimRead ? ['ip filter'] : []));
    } catch (error) {
      unread.push((error as Error).message);
    }
  }
  return { tables, unread };
}

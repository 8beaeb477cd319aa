// The client sets' check (engine/repairs.ts): their headers (`ipset list -t`,
// no members: cheap at any size) say how many rules use each set and how many
// clients it holds. ipset has no change events and nft monitor does not see
// it; a set flushed or swapped by other software (a firewall's ipset plugin on
// reload), or our rules using it removed from iptables-legacy, change this
// answer. One question covers both families (ipset lists all sets at once).
//
// It is asked of one `ipset -` kept running (adapter.ts IPSET_SESSION).

import { FAMILIES, familyContract } from '../../core/family.js';
import type { NetfilterIntent } from '../../model/plan.js';
import type { NetfilterCheck } from '../backend.js';
import { IPSET_SESSION } from './adapter.js';

interface SetHeader {
  readonly set: string;
  readonly family: (typeof FAMILIES)[number];
  /** null: the set is absent; '?': the header does not say. */
  readonly header: { readonly references: string; readonly entries: string } | null;
}

/** Each client set's references and entries from one `ipset list -t`. */
function clientSetHeaders(listing: string): SetHeader[] {
  const sections = listing.split(/^(?=Name: )/m);
  return FAMILIES.map((family) => {
    const set = familyContract(family).clientSet;
    const section = sections.find((s) => s.startsWith(`Name: ${set}\n`));
    if (section === undefined) return { set, family, header: null };
    const references = /^References: ([0-9]+)$/m.exec(section)?.[1] ?? '?';
    const entries = /^Number of entries: ([0-9]+)$/m.exec(section)?.[1] ?? '?';
    return { set, family, header: { references, entries } };
  });
}

/** Pure: each client set's references and entries, or that it is absent. */
export function readClientSetHeaders(listing: string): string {
  return clientSetHeaders(listing)
    .map(({ set, header }) => (header === null ? `${set}: absent` : `${set}: ${header.references} references, ${header.entries} entries`))
    .join('; ');
}

/**
 * Pure: where the headers read right after a run disagree with the clients
 * it loaded: each set holds exactly the run's clients of its family (IPv6's
 * only in IPv6 nat mode). References are not derived (they depend on the
 * LANs and policies); a rule removed by iptables-nft has its own event.
 */
export function clientSetsDisagree(listing: string, loaded: NetfilterIntent | null): string | null {
  const wrong = clientSetHeaders(listing).flatMap(({ set, family, header }) => {
    const clients = family === 'ipv4' ? loaded?.clients : loaded?.ipv6?.clients;
    if (clients === undefined) return header === null ? [] : [`${set} exists, our run removed it`];
    if (header === null) return [`${set} is absent, our run loaded it`];
    return header.entries === String(clients.size) ? [] : [`${set} holds ${header.entries} entries, our run loaded ${clients.size}`];
  });
  return wrong.length > 0 ? wrong.join('; ') : null;
}

export const CLIENT_SET_CHECK: NetfilterCheck = {
  session: IPSET_SESSION,
  request: 'list -t',
  once: ['ipset', 'list', '-t'],
  read: readClientSetHeaders,
  disagrees: clientSetsDisagree,
};

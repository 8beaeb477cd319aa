// The client sets' check (engine/repairs.ts): their headers (`ipset list -t`,
// no members: cheap at any size) say how many rules use each set and how many
// clients it holds. ipset has no change events and nft monitor does not see
// it; a set flushed or swapped by other software (a firewall's ipset plugin on
// reload), or our rules using it removed from iptables-legacy, change this
// answer. One question covers both families (ipset lists all sets at once).
//
// It is asked of one `ipset -` kept running: without stdbuf, ipset's answers
// wait in stdio's buffer (a pipe is not a terminal) until it exits.

import { FAMILIES, familyContract } from '../../core/family.js';
import type { NetfilterIntent } from '../../model/plan.js';
import type { NetfilterCheck } from '../backend.js';

/** Pure: each client set's references and entries, or that it is absent. */
export function readClientSetHeaders(listing: string): string {
  const sections = listing.split(/^(?=Name: )/m);
  return FAMILIES.map((family) => {
    const set = familyContract(family).clientSet;
    const header = sections.find((section) => section.startsWith(`Name: ${set}\n`));
    if (header === undefined) return `${set}: absent`;
    const references = /^References: ([0-9]+)$/m.exec(header)?.[1] ?? '?';
    const entries = /^Number of entries: ([0-9]+)$/m.exec(header)?.[1] ?? '?';
    return `${set}: ${references} references, ${entries} entries`;
  }).join('; ');
}

/**
 * Pure: where the headers read right after a run disagree with the clients
 * it loaded: each set holds exactly the run's clients of its family (IPv6's
 * only in IPv6 nat mode). References are not derived (they depend on the
 * LANs and policies); a rule removed by iptables-nft has its own event.
 */
export function clientSetsDisagree(summary: string, loaded: NetfilterIntent | null): string | null {
  const wrong = FAMILIES.flatMap((family) => {
    const set = familyContract(family).clientSet;
    const clients = family === 'ipv4' ? loaded?.clients : loaded?.ipv6?.clients;
    if (clients === undefined) return summary.includes(`${set}: absent`) ? [] : [`${set} exists, our run removed it`];
    const entries = new RegExp(`${set}: [0-9?]+ references, ([0-9]+) entries`).exec(summary)?.[1];
    if (entries === undefined) return [`${set} is absent, our run loaded it`];
    return Number(entries) === clients.size ? [] : [`${set} holds ${entries} entries, our run loaded ${clients.size}`];
  });
  return wrong.length > 0 ? wrong.join('; ') : null;
}

export const CLIENT_SET_CHECK: NetfilterCheck = {
  session: {
    argv: ['stdbuf', '-oL', 'ipset', '-'],
    markerRequest: 'version',
    marker: /^ipset v\S+, protocol version: \d+$/,
    prompt: 'ipset> ',
  },
  request: 'list -t',
  once: ['ipset', 'list', '-t'],
  read: readClientSetHeaders,
  disagrees: clientSetsDisagree,
};

// The iptables + ipset backend: our chains from iptables/skeleton.rules in
// mangle and nat, loaded with one iptables-restore --noflush (and, in IPv6 nat
// mode, the same skeleton with one ip6tables-restore --noflush), and the
// client sets dispatcher-clients and dispatcher-clients6 (hash:ip with
// skbinfo) loaded with ipset restore, or, when only their members change,
// through ipset's interactive session kept running.

import { CLIENT_SET, isOurChain } from '../../core/contract.js';
import { familyContract } from '../../core/family.js';
import type { NetfilterBackend } from '../backend.js';
import { applyIptables, deleteBareTables, IPSET_SESSION, observeIptables, observeIptablesReadable, quickLines, readClientBytes, readPoolCounters } from './adapter.js';
import { CLIENT_SET_CHECK } from './check.js';
import { iptablesCollisions } from './collisions.js';
import { planIptablesChange } from './desired.js';
import { observedAfter } from './diff.js';
import { describeIptables, iptablesPayloadSize, isIptablesPayloadEmpty, renderIptables, tablesTouched } from './render.js';
import type { Skeleton } from './skeleton.js';
import type { IptablesObserved, IptablesPayload } from './types.js';

export type IptablesBackend = NetfilterBackend<IptablesObserved, IptablesPayload>;

/** "0x1000000/0xf000000" as ipset prints an skbmark; a bare value has the full mask. */
function parseSkbmark(text: string): { mark: number; mask: number } | null {
  const [mark, mask = '0xffffffff'] = text.split('/');
  const values = { mark: Number(mark), mask: Number(mask) };
  return Number.isInteger(values.mark) && Number.isInteger(values.mask) ? values : null;
}

/** The tables observed, named as tablesTouched names them ("mangle", "ip6 mangle"). */
const observedTables = (observed: IptablesObserved): string[] => [...observed.netfilter.map((t) => t.name), ...(observed.netfilter6 ?? []).map((t) => `${familyContract('ipv6').nftFamily} ${t.name}`)];

/** What each payload planned here leaves, when it changes only the client set's members (NetfilterBackend.expected). */
const leaves = new WeakMap<IptablesPayload, IptablesObserved>();

export function iptablesBackend(skeleton: Skeleton): IptablesBackend {
  return {
    name: 'iptables',
    // iptables-nft's changes (ours and a firewall reload's) show in nft monitor;
    // iptables-legacy's do not, and the client set's header check and the scan
    // are then what notices them.
    watch: { events: { argv: ['nft', 'monitor'], tables: ['ip mangle', 'ip nat', 'ip6 mangle', 'ip6 nat', 'ruleset'] }, check: CLIENT_SET_CHECK },
    watched: (observed) => observed.inNftables === true,
    observe: observeIptables,
    observeReadable: observeIptablesReadable,
    plan(intent, observed) {
      const change = planIptablesChange(skeleton, intent, observed);
      const payload = renderIptables(change);
      const after = observedAfter(observed, change);
      if (after) leaves.set(payload, after);
      return payload;
    },
    isEmpty: isIptablesPayloadEmpty,
    apply: applyIptables,
    quickLoad: { session: IPSET_SESSION, lines: quickLines },
    describe: describeIptables,
    size: iptablesPayloadSize,
    expected: (payload) => leaves.get(payload) ?? null,
    created: (observed, payload) => tablesTouched(payload).filter((record) => !observedTables(observed).includes(record)),
    async flush(runner, observed, created) {
      const change = planIptablesChange(skeleton, null, observed);
      const payload = renderIptables(change);
      await applyIptables(runner, payload);
      const tablesDeleted = await deleteBareTables(runner, created);
      const tables = [...change.netfilter, ...change.netfilter6.map((t) => ({ ...t, table: `${familyContract('ipv6').nftFamily} ${t.table}` }))];
      return {
        chains: tables.flatMap((t) => t.dropChains.map((c) => `${t.table}/${c}`)),
        hooks: tables.reduce((n, t) => n + t.deleteRules.length, 0),
        setDestroyed: change.set.destroy || change.set6.destroy,
        tablesDeleted,
        changed: !isIptablesPayloadEmpty(payload),
      };
    },
    // ip6tables' rules matter only while we load ours there.
    collisions: (config, observed) => iptablesCollisions(config.marks.mask, { netfilter: observed.netfilter, netfilter6: config.lan.ipv6.mode === 'nat' ? observed.netfilter6 : null }),
    counters: readPoolCounters,
    clientBytes: readClientBytes,
    classified(observed) {
      const clients = new Map<string, { mark: number; mask: number }>();
      for (const entry of observed.sets.entries) {
        const mark = entry.set === CLIENT_SET && typeof entry.options.skbmark === 'string' ? parseSkbmark(entry.options.skbmark) : null;
        if (mark) clients.set(entry.member, mark);
      }
      return clients;
    },
    groupMarked: (observed, group) => observed.netfilter.some((t) => t.name === 'mangle' && t.rules.some((r) => isOurChain(r.chain) && r.args.some((arg, i) => arg === '--gid-owner' && r.args[i + 1] === String(group)))),
  };
}

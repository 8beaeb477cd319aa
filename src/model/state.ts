// The dispatcher's own state: client assignments and what it changed outside
// its named objects. Persisted by src/system/store.ts.

import type { StoreFormat } from '../schema/store.js';

export interface ClientRecord {
  /** Name of the uplink whose pool holds the client. */
  readonly uplink: string;
  readonly mac: string;
  /** LAN interface it was last seen on. */
  readonly interface: string;
  /** Placed by an operator (dispatcher assign); never moved by balancing or expiry. */
  readonly pinned: boolean;
  /** Epoch milliseconds. */
  readonly firstSeen: number;
  /** The host's IPv6 addresses (same MAC, same interface) → when each was last seen: they share its pool (lan.ipv6.mode nat). */
  readonly ipv6?: Readonly<Record<string, number>>;
}

/**
 * Never written once made: a run that changes a client makes the next
 * version (core/assign.ts), and so does an operator's edit
 * (engine/reconciler.ts), each a layered map (core/layered-map.ts) that
 * costs and names only what changed. Planning knows an unchanged map by
 * identity and carries what it derived from the last version by the clients
 * that changed (core/assign.ts counts, core/netfilter.ts, backends/iptables/diff.ts).
 */
export type Assignments = ReadonlyMap<string, ClientRecord>;

/**
 * When each client was last in the neighbour table (epoch ms), kept beside
 * the assignments and not in their records: a whole read finds every client
 * present, and made a new version of 50,000 records only to move a time.
 * Not versioned: the reconciler writes it in place after each run
 * (engine/reconciler.ts), planning only reads it (core/assign.ts expiry). A
 * client with no entry counts from its firstSeen (core/assign.ts seenAt).
 */
export type LastSeen = ReadonlyMap<string, number>;

/** A client as the store writes it: its record and when it was last seen. */
export type StoredClient = ClientRecord & { readonly lastSeen: number };

/**
 * What an edit of the assignments (engine/trigger.ts Edit) may do: every
 * change goes through set, delete or clear, so that the run can note which
 * clients an edit changed (core/ha-sync.ts ClientJournal) without comparing
 * the whole table. A Map is one.
 */
export interface ClientEdits {
  get(ip: string): ClientRecord | undefined;
  has(ip: string): boolean;
  set(ip: string, record: ClientRecord): void;
  delete(ip: string): void;
  clear(): void;
}

/** The persisted store (dispatcher.json): its format is defined once, by src/schema/store.ts. */
export type StoreData = StoreFormat;

/** StoredClient and OwnedRanges are the store schema's own shapes: a compile error here means the two drifted apart. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Holds<T extends true> = T;
export type StoreShapesAgree = Holds<Same<StoredClient, StoreFormat['clients'][string]>> | Holds<Same<OwnedRanges, NonNullable<StoreFormat['ranges']>>>;

/** The part of a config that says which routing tables and rule priorities are ours. */
export interface OwnedRanges {
  readonly tables: { readonly base: number };
  readonly rules: { readonly priority: number };
}

export type UplinkState = 'up' | 'down';

/** Health as the probes judge it; 'unknown' until the first verdict. */
export type HealthState = 'unknown' | UplinkState;

export interface HealthVerdict {
  readonly state: HealthState;
  readonly reason: string;
  /** Up, but poor: why (its loss or latency); absent while it is not degraded. */
  readonly degraded?: string;
}

/** One uplink as the planner sees it: config plus what the kernel says about it. */
export interface UplinkView {
  readonly name: string;
  readonly index: number;
  readonly interface: string;
  /** Its share of new clients and of the multipath route: the configured weight, lowered while it is degraded. */
  readonly weight: number;
  /** Up, but poor: why; absent while it is not degraded. */
  readonly degraded?: string;
  /** Its tier (1: main lines): only the live lines of the lowest tier with a live line carry traffic (core/uplinks.ts carrying). */
  readonly tier: number;
  readonly state: UplinkState;
  /** Why it is in that state, in words for the operator. */
  readonly reason: string;
  /** The link exists and is administratively up, so routes and sysctls can name it. */
  readonly present: boolean;
  readonly address?: string;
  readonly gateway?: string;
  /** Where the gateway came from: config, ppp peer, an existing route or a DHCP lease. */
  readonly gatewaySource?: 'config' | 'ppp-peer' | 'route' | 'dhcp-lease';
  readonly pointToPoint: boolean;
  /** IPv6 views only: judged by the line's own IPv6 probes (uplinks[].ipv6.probe), not by the line's verdict. */
  readonly ownVerdict?: true;
  /**
   * IPv6 views only: the address the gateway is reached at through this line
   * (its AAAA record): the gateway's LAN address translated onto the line's
   * routed prefix (with ddns, connections to it are given to the gateway),
   * else the line's own global address; absent when it has neither.
   */
  readonly inbound?: string;
}

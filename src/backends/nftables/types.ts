// The nftables backend's own data: what it observes of its table (`nft -j
// list ruleset`) and what it loads (`nft -f -` text). Nothing
// outside src/backends/nftables/ needs these.

/** A client map element's counter as nft lists it and takes it back: [packets, bytes]. */
export type ElementCounter = readonly [number, number];

/** Our table as the kernel has it. */
export interface NftObserved {
  /** Whether table inet dispatcher exists. */
  readonly table: boolean;
  /** The digest of the table's rules and chains as last loaded (a rule comment), null when unreadable. */
  readonly digest: string | null;
  /** Client address (either family: the clients and clients6 maps) → the pool chain its element jumps to ("pool_01000000_0f000000"). */
  readonly clients: ReadonlyMap<string, string>;
  /** The elements' counters, [packets, bytes], of those that counted anything: carried over when an element is written again. */
  readonly counters: ReadonlyMap<string, ElementCounter>;
  /** Each policy's host set (p1_hosts, …) and its addresses. */
  readonly hostSets: ReadonlyMap<string, ReadonlySet<string>>;
  /** Rules in each of our chains: a chain emptied or a rule deleted by other software shows here. */
  readonly rulesPerChain: Readonly<Record<string, number>>;
  /** Groups whose sockets get an uplink's mark (`meta skgid` rules). */
  readonly groups: readonly number[];
  /** Other software's rules that write or test mark bits, as "table/chain: bits" for collisions. */
  readonly foreignMarks: readonly { readonly where: string; readonly bits: number }[];
}

/** One `nft -f -` transaction; '' when nothing is to change. */
export interface NftPayload {
  readonly text: string;
  /** Whether the payload (re)builds the whole table, or only changes map elements. */
  readonly whole: boolean;
}

// The verified configuration. Produced only by src/config/verify.ts from the
// YAML the operator wrote (documented in pools/README.md); every value here has
// already been checked, defaulted and normalised.

export interface ProbeConfig {
  /** Addresses probed through this uplink (the health issue uses them). */
  readonly targets: readonly string[];
}

export interface UplinkConfig {
  /** Stable identity used by the CLI, JSON output and the store. */
  readonly name: string;
  readonly interface: string;
  /** Fixed next hop; absent when it is discovered (ppp peer, current routes). */
  readonly gateway?: string;
  readonly weight: number;
  readonly probe: ProbeConfig;
}

export interface LanConfig {
  readonly interfaces: readonly string[];
  /** Normalised CIDR text; empty means every unicast address on the LAN interfaces. */
  readonly subnets: readonly string[];
}

export interface ClientsConfig {
  /** Seconds a client may be absent from the neighbour table before its assignment is dropped; 0 keeps it forever. */
  readonly expireSeconds: number;
  /** Upper bound on assigned clients; also the ipset's maxelem. */
  readonly max: number;
}

export interface Config {
  readonly lan: LanConfig;
  readonly uplinks: readonly UplinkConfig[];
  readonly scan: { readonly schedule: string };
  /** Directory of the lowdb store. */
  readonly state: string;
  /** Control socket of the daemon. */
  readonly socket: string;
  readonly marks: { readonly mask: number };
  /** Routing table ids used: base .. base + 99 (iptables/README.md). */
  readonly tables: { readonly base: number };
  /** ip rule priorities used: priority .. priority + 99. */
  readonly rules: { readonly priority: number };
  readonly clients: ClientsConfig;
}

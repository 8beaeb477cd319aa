// The verified configuration. Produced only by src/config/verify.ts from the
// YAML the operator wrote (documented in pools/README.md); every value here has
// already been checked, defaulted and normalised.

/** How an uplink's health is judged; global defaults under `health`, overridden per uplink under `probe`. */
export interface HealthSettings {
  /** Time between probes to each target. */
  readonly intervalMs: number;
  /** A reply later than this counts as lost. */
  readonly timeoutMs: number;
  /** Consecutive lost probes that make a target dead. */
  readonly down: number;
  /** Consecutive answered probes that make a dead target alive again. */
  readonly up: number;
  /** A target is also dead when more than this share of the last `window` probes was lost. */
  readonly lossPercent: number;
  readonly window: number;
  /** Replies slower than this count as lost; 0 disables the check. */
  readonly latencyMs: number;
  /** Targets that must be alive for the uplink to be up (k of n). */
  readonly reliability: number;
  /** Minimum time an uplink stays down before failing back. */
  readonly holdMs: number;
}

/** Flap damping: each fall adds 1 to a penalty that halves every halfLife. */
export interface DampingConfig {
  readonly halfLifeMs: number;
  /** At or above this penalty a fallen uplink is held down… */
  readonly suppress: number;
  /** …until its penalty has decayed below this. */
  readonly reuse: number;
}

export interface ProbeConfig extends HealthSettings {
  /** Addresses probed through this uplink; empty means its gateway. */
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
  /** pppd's ipparam that identifies this uplink in ip-up/ip-down hooks (default: its name). */
  readonly ipparam: string;
  /** A dhclient lease file to discover the gateway from (default: the usual Debian paths). */
  readonly leaseFile?: string;
  /** Where to learn the uplink's public address when another NAT sits in front of it. */
  readonly publicAddress?: PublicAddressConfig;
}

/** An "what is my address" URL, fetched through the uplink itself. */
export interface PublicAddressConfig {
  /** http:// or https:// URL whose body is the address… */
  readonly url: string;
  /** …or whose JSON body holds it under this key. */
  readonly field?: string;
  /** Fetched again this often (and whenever the uplink comes up or its address changes). */
  readonly everyMs: number;
  /** A fetch still running after this is abandoned. */
  readonly timeoutMs: number;
}

/** Dynamic DNS (RFC 2136 with TSIG, sent by nsupdate): one A record per live uplink. */
export interface DdnsConfig {
  /** Name or address of the primary server that accepts updates. */
  readonly server: string;
  readonly port: number;
  readonly zone: string;
  /** The name whose A records are kept equal to the live uplinks' public addresses. */
  readonly name: string;
  /** TSIG key file as BIND writes it (tsig-keygen, ddns-confgen). */
  readonly keyFile: string;
  readonly ttl: number;
  /** Uplinks whose address is never published. */
  readonly exclude: readonly string[];
  /** The server's records are compared with ours this often even when nothing changed here. */
  readonly everyMs: number;
  /** One query or update still unanswered after this has failed. */
  readonly timeoutMs: number;
}

export interface StaticRoute {
  /** CIDR text. */
  readonly destination: string;
  /** Uplink names in order of preference: the first live one carries the route. */
  readonly via: readonly string[];
}

export interface EmailConfig {
  readonly to: readonly string[];
  readonly from: string;
  /** SMTP relay; absent means the local sendmail. */
  readonly smtp?: { readonly host: string; readonly port: number };
  /** At most one mail per uplink this often; later changes are summed up in the next one. */
  readonly everyMs: number;
}

export interface NotifyConfig {
  /** Programs run on every state change, with the change in their environment. */
  readonly exec: readonly string[];
  /** A hook program still running after this is killed. */
  readonly timeoutMs: number;
  readonly email?: EmailConfig;
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
  /** Upper bound on addresses assigned for one MAC (a host claiming a whole subnet fills no pool). */
  readonly perMac: number;
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
  /** Group ids whose sockets leave by one uplink (`dispatcher exec`): base + uplink index. */
  readonly groups: { readonly base: number };
  readonly clients: ClientsConfig;
  readonly damping: DampingConfig;
  readonly staticRoutes: readonly StaticRoute[];
  readonly notify: NotifyConfig;
  readonly ddns?: DdnsConfig;
  /** Where the Prometheus endpoint listens (GET /metrics); absent: no endpoint. */
  readonly metrics?: { readonly host: string; readonly port: number };
}

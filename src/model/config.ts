// The verified configuration, as the rest of the program reads it. Its shape,
// defaults and documentation are defined once, by the schema in
// src/schema/config.ts (what the operator writes, pools/README.md, turned into
// these normalised values); these are its output types, read-only, under the
// names the rest of the code uses. Produced only by src/config/verify.ts.

import type { z } from 'zod';
import type { configSchema } from '../schema/config.js';

/** Read-only all the way down: a verified config is never changed, only replaced. */
type Frozen<T> = T extends readonly (infer U)[] ? readonly Frozen<U>[] : T extends object ? { readonly [K in keyof T]: Frozen<T[K]> } : T;

export type Config = Frozen<z.output<typeof configSchema>>;
export type LanConfig = Config['lan'];
/** The netfilter backend the config chooses (src/backends/). */
export type BackendName = Config['netfilter']['backend'];
export type UplinkConfig = Config['uplinks'][number];
/** Health settings of one uplink: the global `health` section with its `probe` overrides on top. */
export type ProbeConfig = UplinkConfig['probe'];
/** How an uplink's health is judged (interval, timeout, down/up counts, loss, latency, reliability, hold). */
export type HealthSettings = Omit<ProbeConfig, 'targets'>;
/** Flap damping: each fall adds 1 to a penalty that halves every halfLife. */
export type DampingConfig = Config['damping'];
export type DegradedConfig = Config['degraded'];
export type PassiveConfig = Config['passive'];
/** An "what is my address" URL, fetched through the uplink itself. */
export type PublicAddressConfig = NonNullable<UplinkConfig['publicAddress']>;
/** Dynamic DNS (RFC 2136 with TSIG, sent by nsupdate): one A record per live uplink. */
export type DdnsConfig = NonNullable<Config['ddns']>;
export type StaticRoute = Config['staticRoutes'][number];
export type NotifyConfig = Config['notify'];
export type EmailConfig = NonNullable<NotifyConfig['email']>;
export type ClientsConfig = Config['clients'];

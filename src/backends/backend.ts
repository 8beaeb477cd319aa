// The netfilter backend seam (DESIGN.md §2b): everything the dispatcher does
// with the packet filter goes through one of these. The planner hands it a
// NetfilterIntent in no tool's words; the backend observes its own objects,
// turns intent + observation into its payload (pure), loads it, removes it,
// reads its counters and spots other software's rules in its way. What it
// observes and what it loads are its own business: the engine carries them
// as opaque values between observe, plan and apply.
//
// Routes, ip rules and sysctls are shared by every backend and stay outside
// (src/core/diff.ts, src/render/payloads.ts, src/system/kernel.ts).
//
// iptables + ipset (src/backends/iptables/), or a table of our own in
// nftables (src/backends/nftables/), chosen by netfilter.backend.

import type { PoolBytes } from '../core/traffic.js';
import type { Config } from '../model/config.js';
import type { ConfigProblem } from '../model/errors.js';
import type { NetfilterIntent } from '../model/plan.js';
import type { Runner, SessionSpec } from '../system/exec.js';

export type { BackendName } from '../model/config.js';
import type { BackendName } from '../model/config.js';

/** What `dispatcher flush` removed of the backend's objects. */
export interface NetfilterRemoval {
  /** Our chains removed, as "table/chain". */
  readonly chains: readonly string[];
  /** Jumps into them removed from other software's (or built-in) chains. */
  readonly hooks: number;
  /** The client classifier (set or map) was removed. */
  readonly setDestroyed: boolean;
  /** Tables removed because we had created them and they were left bare. */
  readonly tablesDeleted: readonly string[];
  /** Anything was loaded at all (false: nothing of ours was there). */
  readonly changed: boolean;
}

/** A client as the kernel classifies it now: the mark its packets get, under this mask. */
export interface ClassifiedClient {
  readonly mark: number;
  readonly mask: number;
}

/**
 * How other software's changes to the backend's objects are noticed at once
 * (engine/repairs.ts), beside the periodic scan.
 */
export interface NetfilterWatch {
  /** `nft monitor`-style events, and which of their tables ("ip mangle"; "ruleset" for a flush of all) hold ours; null: none. */
  readonly events: { readonly argv: readonly string[]; readonly tables: readonly string[] } | null;
  /** A cheap read whose answer changes when ours change in ways no event reports; null: the events cover everything. */
  readonly check: NetfilterCheck | null;
}

/**
 * The check as a question: asked of a tool kept running where the tool has an
 * interactive mode (no process per check), or as one command when that fails.
 */
export interface NetfilterCheck {
  /** The tool kept running; null: one command per check. */
  readonly session: SessionSpec | null;
  /** The question, one line, for the session. */
  readonly request: string;
  /** The same question as one command. */
  readonly once: readonly string[];
  /** Pure: the answer as a summary to compare between checks (and show in the log when it changes). */
  readonly read: (answer: string) => string;
  /**
   * Pure: how the answer read right after a run disagrees with what that run
   * loaded (null: it agrees). Its summary then becomes what later checks
   * compare with, so a change made while the run loaded is caught here.
   */
  readonly disagrees: (answer: string, loaded: NetfilterIntent | null) => string | null;
}

/** A backend's session for payloads that change only the clients' elements (NetfilterBackend.quickLoad). */
export interface QuickLoad<Payload> {
  readonly session: SessionSpec;
  /** Pure: the payload as the session's commands; null: loaded by apply. */
  lines(payload: Payload): readonly string[] | null;
}

export interface NetfilterBackend<Observed = unknown, Payload = unknown> {
  readonly name: BackendName;
  readonly watch: NetfilterWatch;

  /** Reads our objects (and what collisions need of other software's). A failed read fails the run. */
  observe(runner: Runner): Promise<Observed>;
  /** For `dispatcher plan` without root: whatever can be read, the rest empty, and the names of the tools that could not read. */
  observeReadable(runner: Runner): Promise<{ observed: Observed; unreadable: string[] }>;

  /** Pure: the payload that takes the kernel from `observed` to `intent` (null: nothing of ours remains). */
  plan(intent: NetfilterIntent | null, observed: Observed): Payload;
  isEmpty(payload: Payload): boolean;
  /** Loads a payload, atomically where the tool allows; the first failing command throws a CommandError. */
  apply(runner: Runner, payload: Payload): Promise<void>;
  /**
   * Where the tool has an interactive mode: a payload that changes only the
   * clients' elements as the commands of a session kept running
   * (engine/loader.ts), one pipe write instead of a process per run (a client
   * arriving among many waits about 10 ms less here). `lines` is pure; null:
   * this payload is loaded by apply.
   */
  readonly quickLoad?: QuickLoad<Payload>;
  /** The payload as readable text under the commands that load it, for `dispatcher plan` ('' when empty). */
  describe(payload: Payload): string;
  /** Lines loaded per tool, for the run report and the logs. */
  size(payload: Payload): Readonly<Record<string, number>>;
  /**
   * Pure: whether the watch's events report every change other software makes
   * to these objects (the check covering what they do not): then a scheduled
   * scan may plan from what the last run left, reading them only every few
   * minutes (engine/reconciler.ts). False for iptables-legacy, whose tables
   * report no change.
   */
  watched(observed: Observed): boolean;
  /**
   * Pure: what observe would read once this payload is loaded, as the backend
   * can tell without reading (a payload that changes only the clients'
   * elements); null when it cannot. A run on neighbour events alone plans from
   * this instead of reading the kernel again (engine/reconciler.ts). For an
   * empty payload it may be a lighter form of what was read, which the
   * reconciler keeps until the next read (null: it keeps the reading).
   */
  expected(payload: Payload): Observed | null;
  /** Pure: tables the payload creates that `observed` did not have, recorded so that flush can remove them again. */
  created(observed: Observed, payload: Payload): string[];

  /** Removes everything of ours and the bare tables of `created` (recorded by earlier runs). */
  flush(runner: Runner, observed: Observed, created: readonly string[]): Promise<NetfilterRemoval>;

  /** Pure: other software's rules that use our mark bits; they refuse the config. */
  collisions(config: Config, observed: Observed): ConfigProblem[];
  /** Bytes per pool from our counting rules, by uplink name. */
  counters(runner: Runner, config: Config): Promise<Record<string, PoolBytes>>;
  /** Bytes per client address (either family), sent and received together, from the client set's or map's own counters. */
  clientBytes(runner: Runner): Promise<ReadonlyMap<string, number>>;
  /** Pure: the clients the kernel classifies now (address → mark), so a restart after a crash can adopt them. */
  classified(observed: Observed): ReadonlyMap<string, ClassifiedClient>;
  /** Pure: whether the rule marking the sockets of `group` (`dispatcher exec --uplink`) is loaded. */
  groupMarked(observed: Observed, group: number): boolean;
}

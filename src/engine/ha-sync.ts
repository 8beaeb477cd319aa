// The warm standby of a pair: the master sends its clients to the backup
// over the state channel (system/ha-channel.ts) — the whole table when the
// channel comes up, then after every run what changed (core/ha-sync.ts) —
// and the backup takes them as its own, in the order sent, through its
// reconciler: its kernel holds the same pools, so a takeover moves nobody.
// Every gateway of a pair listens; only the master sends. What changed is
// what the reconciler noted in the master's journal since the last message
// (core/ha-sync.ts ClientJournal): a run costs by what it changed, not by
// the number of clients; only the greeting holds the whole table.

import { applySync, ClientJournal, layoutOf, parseSyncBody, snapshotOf } from '../core/ha-sync.js';
import type { HaRole } from '../core/netfilter.js';
import type { Config } from '../model/config.js';
import type { Clock } from '../system/clock.js';
import { type ChannelListener, type ChannelSender, listenHaChannel, sendHaChannel } from '../system/ha-channel.js';
import type { Logger } from '../system/logger.js';
import type { Reconciler } from './reconciler.js';

export interface HaSyncDeps {
  readonly log: Logger;
  readonly clock: Clock;
  readonly reconciler: Reconciler;
  /** This gateway's address on the sync link (read from the interface). */
  readonly ownAddress: () => Promise<string>;
  /** The shared key (read from ha.key). */
  readonly key: () => Promise<string>;
  /** A backup's conntrackd asks the master's for its whole table (`conntrackd -n`). */
  readonly resyncConnections: () => Promise<void>;
}

export interface HaSyncView {
  /** Whether the channel to the peer is up (the master's view; a backup hears rather than sends). */
  readonly sending: boolean;
  /** The newest message's time from send to the peer's ack, ms. */
  readonly lagMs: number | null;
  readonly problem: string | null;
  /** A backup's view: the master's channel to it is up (heard within 3 s; heartbeats come every second). */
  readonly hearing: boolean;
  /** When the backup last applied a message from the master (epoch ms). */
  readonly lastReceived: number | null;
  /** A connection refused: from where, why (a wrong key), when. */
  readonly refused: { readonly from: string; readonly why: string; readonly at: number } | null;
}

export class HaSync {
  private listener: ChannelListener | null = null;
  private sender: ChannelSender | null = null;
  /** The clients changed since the last message, while this gateway is master. */
  private readonly journal = new ClientJournal();
  private lastReceived: number | null = null;
  /** Why the master's tables are not taken (its uplinks or marks differ from ours); null: they are. */
  private mismatch: string | null = null;
  private refused: HaSyncView['refused'] = null;
  private key = '';

  constructor(
    private readonly deps: HaSyncDeps,
    private readonly config: NonNullable<Config['ha']>,
  ) {}

  async start(): Promise<void> {
    const { log } = this.deps;
    this.key = await this.deps.key();
    const own = await this.deps.ownAddress();
    this.listener = await listenHaChannel(
      own,
      this.config.port,
      this.config.peer,
      this.key,
      async (text) => {
        const body = parseSyncBody(text);
        if (!body) throw new Error('a message of a shape this version does not know');
        // A master takes its own decisions: what the peer sends while both think they are (a failback under way) is
        // not taken, and its connection closed, so when this gateway is backup again the peer starts over with its whole table.
        if (this.deps.reconciler.role === 'master') return false;
        // A master whose lines or marks differ from ours: its pools would be other lines here. Nothing of it is taken, and
        // its connection is closed unacknowledged: it connects again within a second with its whole table, checked again
        // (so a reload that mends either side is taken at once).
        if (body.kind === 'snapshot') {
          const ours = layoutOf(this.deps.reconciler.currentConfig);
          const mismatch = body.layout === ours ? null : `the master has ${body.layout}; this gateway ${ours}: give both the same uplinks, in the same order, and the same marks`;
          if (mismatch && mismatch !== this.mismatch) {
            this.refused = { from: this.config.peer, why: mismatch, at: this.deps.clock.now() };
            log.error('the master’s config does not match: its clients are not taken', { why: mismatch });
          }
          this.mismatch = mismatch;
        }
        if (this.mismatch) return false;
        this.lastReceived = this.deps.clock.now();
        await this.deps.reconciler.request(`ha sync (${body.kind})`, { edit: (clients) => applySync(clients, body) });
        // A whole table comes when the channel is up again (a cut sync link, the master back): conntrackd may have missed as much; ask it for all too.
        if (body.kind === 'snapshot') await this.deps.resyncConnections();
        return true;
      },
      (from, why) => {
        this.refused = { from, why, at: this.deps.clock.now() };
        log.error('refused a connection on the state channel', { from, why });
      },
      log,
    );
    log.info('state channel listening', { address: own, port: this.config.port });
  }

  /** The role changed: a master sends, any other role only listens. */
  roleChanged(role: HaRole): void {
    if (role === 'master' && !this.sender) {
      this.journal.clear();
      this.deps.reconciler.keepJournal(this.journal);
      this.sender = sendHaChannel(this.config.peer, this.config.port, this.key, () => this.greeting(), this.deps.log);
    } else if (role !== 'master') {
      this.stopSending();
    }
  }

  /** After every run: a master sends what changed since it last sent. */
  afterRun(): void {
    if (!this.sender) return;
    // Not connected: the next connection starts with the whole table, so what was noted meanwhile is not needed.
    if (!this.sender.connected) {
      this.journal.clear();
      return;
    }
    const changes = this.journal.take(this.deps.reconciler.clients);
    if (changes) this.sender.send(JSON.stringify(changes));
  }

  view(): HaSyncView {
    return { sending: this.sender?.connected ?? false, lagMs: this.sender?.lagMs ?? null, problem: this.sender?.problem ?? null, hearing: this.listener?.hearing() ?? false, lastReceived: this.lastReceived, refused: this.refused };
  }

  async stop(): Promise<void> {
    this.stopSending();
    await this.listener?.close();
    this.listener = null;
  }

  private stopSending(): void {
    if (!this.sender) return;
    this.sender.stop();
    this.sender = null;
    this.deps.reconciler.keepJournal(null);
    this.journal.clear();
  }

  /** A new connection's first message: the whole table; changes are noted from here on. */
  private greeting(): string {
    this.journal.clear();
    return JSON.stringify(snapshotOf(this.deps.reconciler.clients, layoutOf(this.deps.reconciler.currentConfig)));
  }
}

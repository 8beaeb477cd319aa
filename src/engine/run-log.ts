// What the reconcile loop tells the operator, and how often: a line per new
// client (a summary past 20), conflicts once when they appear, caps once
// when they start refusing, uplinks falling and returning, a total outage.
// Kept apart from the run so the run says what happened and this room
// decides how much of it reaches the log.

import type { AssignResult, Refusal } from '../core/assign.js';
import type { Config } from '../model/config.js';
import type { UplinkView } from '../model/state.js';
import type { Logger } from '../system/logger.js';

export class RunLog {
  /** Conflicts reported so far (each is logged once, when it appears). */
  private reported: readonly string[] = [];
  /** Caps already reported as refusing clients ("clients.max", "clients.per_mac MAC"). */
  private readonly capsHit = new Set<string>();
  private allDown = false;

  constructor(private readonly log: Logger) {}

  get conflicts(): readonly string[] {
    return this.reported;
  }

  conflictsSeen(conflicts: readonly string[]): void {
    for (const conflict of conflicts.filter((c) => !this.reported.includes(c))) this.log.warn('conflict', { detail: conflict });
    this.reported = conflicts;
  }

  assignments(result: AssignResult, complete: boolean, clients: Config['clients']): void {
    const { log } = this;
    if (result.added.length <= 20) {
      for (const { ip, uplink } of result.added) log.info('client assigned', { client: ip, uplink });
    } else {
      const perUplink: Record<string, number> = {};
      for (const { uplink } of result.added) perUplink[uplink] = (perUplink[uplink] ?? 0) + 1;
      log.info('clients assigned', { count: result.added.length, perUplink });
    }
    for (const { ip, from, uplink } of result.moved) log.info('client moved: its uplink left the config', { client: ip, from, uplink });
    if (result.expired.length > 0) log.info('clients expired', { count: result.expired.length, clients: result.expired.slice(0, 20) });
    this.refusals(result.refused, complete, clients);
  }

  /**
   * One line when a cap starts refusing clients (clients.max, or clients.per_mac
   * for a MAC not reported yet), not one per run or per address: a hostile
   * host claiming a whole subnet must not flood the log. A full scan with
   * nothing refused resets it.
   */
  private refusals(refused: readonly Refusal[], complete: boolean, { max, perMac }: Config['clients']): void {
    if (refused.length === 0) {
      if (complete && this.capsHit.size > 0) {
        this.capsHit.clear();
        this.log.info('no client is refused by a cap any more');
      }
      return;
    }
    const fresh = new Map<string, { cap: Refusal['cap']; mac: string; count: number }>();
    for (const { cap, mac } of refused) {
      const key = cap === 'clients.per_mac' ? `${cap} ${mac}` : cap;
      if (this.capsHit.has(key)) continue;
      const entry = fresh.get(key) ?? { cap, mac, count: 0 };
      entry.count++;
      fresh.set(key, entry);
    }
    for (const key of fresh.keys()) this.capsHit.add(key);
    let lines = 0;
    for (const { cap, mac, count } of fresh.values()) {
      if (lines++ === 20) {
        this.log.warn('more MACs reached clients.per_mac', { macs: fresh.size - 20 });
        break;
      }
      if (cap === 'clients.per_mac') this.log.warn(`clients.per_mac reached: MAC ${mac} already has ${perMac} addresses; ${count} more left unassigned`, { cap, mac, perMac, refused: count });
      else if (cap === 'clients.max') this.log.warn(`clients.max reached: ${max} clients assigned; ${count} new clients left unassigned`, { cap, max, refused: count });
      else this.log.warn(`no uplink to assign to: ${count} new clients left unassigned`, { refused: count });
    }
  }

  fell(uplink: UplinkView, connections: number): void {
    this.log.warn('uplink down: its pool moved to the survivors, its connections forgotten', { uplink: uplink.name, reason: uplink.reason, connections });
  }

  returned(uplink: UplinkView): void {
    this.log.info('uplink up: its pool is back home', { uplink: uplink.name });
  }

  /** A lower tier is up again: this line stops carrying; its connections were forgotten (a count) or left to finish (null). */
  standsBy(uplink: UplinkView, forgotten: number | null): void {
    const what = forgotten === null ? 'its connections finish there (failback: keep)' : 'its connections forgotten (failback: move)';
    this.log.info(`uplink stands by: a line of a lower tier is up; ${what}`, { uplink: uplink.name, tier: uplink.tier, ...(forgotten === null ? {} : { connections: forgotten }) });
  }

  /** Every line of the lower tiers is down: this standby line carries now. */
  takesOver(uplink: UplinkView): void {
    this.log.warn('uplink takes over: every line of a lower tier is down', { uplink: uplink.name, tier: uplink.tier });
  }

  /** Said once when every uplink is down, and once when one returns. */
  outage(uplinks: readonly UplinkView[]): void {
    const allDown = uplinks.length > 0 && uplinks.every((u) => u.state === 'down');
    if (allDown && !this.allDown) this.log.error('CRITICAL: every uplink is down; routes stay in place until one returns', { uplinks: uplinks.map((u) => `${u.name}: ${u.reason}`) });
    if (!allDown && this.allDown) this.log.info('an uplink is back after a total outage', { up: uplinks.filter((u) => u.state === 'up').map((u) => u.name) });
    this.allDown = allDown;
  }
}

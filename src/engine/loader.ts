// Loads a run's payloads into the kernel, in dependency order (DESIGN.md §1):
// sysctls, the netfilter backend's batch, then one ip -batch per family; the
// first failure stops the run.
//
// A payload that changes only the clients' elements (a client arriving,
// moving or leaving) goes to the backend's interactive session, kept running
// (NetfilterBackend.quickLoad): one pipe write instead of a process, about
// 10 ms less for each client arriving among many. When the session fails, the
// payload is loaded by the backend's apply at once, and apply alone loads for
// a minute before the session is tried again. The session is the one the
// client sets' check asks (engine/repairs.ts): ipset does not report its
// changes to nft monitor, so it need not run through the writer.

import type { NetfilterBackend } from '../backends/backend.js';
import type { KernelPayloads } from '../render/payloads.js';
import type { Clock } from '../system/clock.js';
import { type Runner, whatItSaid } from '../system/exec.js';
import { applyIpBatch, writeSysctls } from '../system/kernel.js';
import type { Logger } from '../system/logger.js';
import { ToolSessions } from '../system/tool-session.js';

/** After the session failed, payloads are loaded by apply for this long. */
export const QUICK_RETRY_MS = 60_000;

export class PayloadLoader {
  private failedAt: number | null = null;
  /** The sessions, and whether they are this loader's own to end. */
  private readonly sessions: ToolSessions;
  private readonly ownSessions: boolean;

  constructor(
    /** Reads and the ip and sysctl writes. */
    private readonly runner: Runner,
    /** Netfilter's processes (self-repair tells our changes from other software's by the processes it starts). */
    private readonly writer: Runner,
    private readonly clock: Clock,
    private readonly log: Logger,
    /** Shared with the check (engine/repairs.ts) and ended by their owner; without it the loader keeps its own. */
    sessions?: ToolSessions,
  ) {
    this.ownSessions = sessions === undefined;
    this.sessions = sessions ?? new ToolSessions(runner, clock);
  }

  async load<P>(backend: NetfilterBackend<unknown, P>, payloads: KernelPayloads<P>): Promise<void> {
    await writeSysctls(this.runner, payloads.sysctls);
    if (!backend.isEmpty(payloads.netfilter)) await this.loadNetfilter(backend, payloads.netfilter);
    await applyIpBatch(this.runner, payloads.ip);
    await applyIpBatch(this.runner, payloads.ip6, 'ipv6');
  }

  /** Ends the session's tool when it is the loader's own (the daemon stopping). */
  close(): void {
    if (this.ownSessions) this.sessions.close();
  }

  private async loadNetfilter<P>(backend: NetfilterBackend<unknown, P>, payload: P): Promise<void> {
    const quick = backend.quickLoad;
    const lines = quick?.lines(payload) ?? null;
    const now = this.clock.now();
    if (quick && lines !== null && lines.length > 0 && (this.failedAt === null || now - this.failedAt >= QUICK_RETRY_MS)) {
      try {
        await this.sessions.of(quick.session).tell(lines);
        this.failedAt = null;
        return;
      } catch (error) {
        if (this.failedAt === null) this.log.warn(`loading through ${quick.session.argv.join(' ')} failed: loading by process for a minute`, { error: whatItSaid(error) });
        this.failedAt = now;
      }
    }
    await backend.apply(this.writer, payload);
  }
}

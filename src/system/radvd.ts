// radvd, the router advertisement daemon of IPv6 prefix mode, run by the
// dispatcher with its own config and pid file in the state directory, so it
// never touches a radvd the operator runs (/etc/radvd.conf). radvd forks
// into the background: it outlives a daemon restart (hosts keep their
// router and addresses), and the next run finds it by its pid file and
// reloads it rather than starting a second one. A change of the config is
// written atomically and signalled (SIGHUP: radvd advertises the new
// lifetimes at once, measured at 50–60 ms to the hosts). Flush (no
// announcement) stops it: its last advertisement deprecates the prefixes.

import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Announcement } from '../model/plan.js';
import { radvdConf } from '../render/radvd-conf.js';
import type { Runner } from './exec.js';

/** What a sync did to radvd. */
export type AdvertiserAction = 'started' | 'reloaded' | 'stopped' | 'unchanged';

const CONF = 'radvd.conf';
const PID = 'radvd.pid';
/** How long radvd may take to write its pid file after forking, or to exit after SIGTERM. */
const SETTLE_MS = 3000;

/** After radvd failed to start, runs within this long fail at once with the same reason instead of waiting SETTLE_MS again. */
const RETRY_MS = 30_000;

const readText = (path: string): Promise<string | null> => readFile(path, 'utf8').catch(() => null);

export class Radvd {
  private readonly conf: string;
  private readonly pidFile: string;
  /** The last failed start, while it holds back the next (RETRY_MS). */
  private failed: { readonly at: number; readonly message: string } | null = null;

  constructor(
    private readonly runner: Runner,
    stateDir: string,
  ) {
    this.conf = join(stateDir, CONF);
    this.pidFile = join(stateDir, PID);
  }

  /** radvd as the announcement wants it: running with its config, or stopped (null). */
  async sync(announcement: Announcement | null): Promise<AdvertiserAction> {
    const pid = await this.running();
    if (announcement === null) {
      if (pid === null && (await readText(this.conf)) === null) return 'unchanged';
      if (pid !== null) await this.stop(pid);
      await rm(this.conf, { force: true });
      return pid === null ? 'unchanged' : 'stopped';
    }
    const text = radvdConf(announcement);
    const changed = (await readText(this.conf)) !== text;
    if (changed) {
      await writeFile(`${this.conf}.new`, text, { mode: 0o644 });
      await rename(`${this.conf}.new`, this.conf);
    }
    if (pid === null) {
      await this.start();
      return 'started';
    }
    if (!changed) return 'unchanged';
    process.kill(pid, 'SIGHUP');
    return 'reloaded';
  }

  /** The pid of the radvd running with our config, or null (no pid file, a stale one, or another program under that pid). */
  async running(): Promise<number | null> {
    const pid = Number((await readText(this.pidFile))?.trim());
    if (!Number.isInteger(pid) || pid <= 0) return null;
    const cmdline = await readText(`/proc/${pid}/cmdline`);
    return cmdline?.split('\0').includes(this.conf) ? pid : null;
  }

  private async start(): Promise<void> {
    if (this.failed && Date.now() - this.failed.at < RETRY_MS) throw new Error(`${this.failed.message} (tried again within ${RETRY_MS / 1000} s)`);
    try {
      // radvd checks the config, forks, and its parent exits; the child writes the pid file (radvd's lock
      // on it refuses a second radvd while one lives, so a stale file is left for radvd to judge).
      await this.runner.run(['radvd', '--config', this.conf, '--pidfile', this.pidFile, '--logmethod', 'syslog']);
      for (let waited = 0; waited < SETTLE_MS; waited += 50) {
        if ((await this.running()) !== null) {
          this.failed = null;
          return;
        }
        await sleep(50);
      }
      throw new Error(`radvd did not start (no process behind ${this.pidFile} after ${SETTLE_MS} ms; its messages are in the system log)`);
    } catch (error) {
      this.failed = { at: Date.now(), message: (error as Error).message };
      throw error;
    }
  }

  /** SIGTERM (radvd's last advertisement deprecates the prefixes), SIGKILL if it has not gone in SETTLE_MS; its files go once it has. */
  private async stop(pid: number): Promise<void> {
    const gone = async (): Promise<boolean> => {
      for (let waited = 0; waited < SETTLE_MS; waited += 50) {
        if ((await readText(`/proc/${pid}/cmdline`)) === null) return true;
        await sleep(50);
      }
      return false;
    };
    process.kill(pid, 'SIGTERM');
    if (!(await gone())) {
      process.kill(pid, 'SIGKILL');
      if (!(await gone())) throw new Error(`radvd (pid ${pid}) did not end after SIGTERM and SIGKILL`);
    }
    await rm(this.pidFile, { force: true });
  }
}

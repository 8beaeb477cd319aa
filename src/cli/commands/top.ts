import type { Command } from 'commander';
import { parseDurationMs } from '../../core/duration.js';
import { lineQuality } from '../../core/history.js';
import { rates } from '../../core/traffic.js';
import type { Traffic } from '../../schema/control.js';
import { fromDaemon, type CliContext } from '../context.js';
import { ENDING_SIGNALS, EXIT_USAGE, Failure } from '../exit.js';
import { renderTop, type TopUplink } from '../top-view.js';

const HISTORY = 60;
const ALTERNATE_SCREEN = '\x1b[?1049h';
const MAIN_SCREEN = '\x1b[?1049l';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';
const HOME_AND_CLEAR = '\x1b[H\x1b[2J';

/**
 * `dispatcher top`: a terminal view refreshed every --interval — per uplink
 * its state, clients, throughput (from the interface counters), RTT and loss,
 * with sparklines of the last minute. On a terminal it draws on the
 * alternate screen with the cursor hidden (both given back on exit, Ctrl-C
 * included), each frame replacing the last, lines cut to the terminal's width
 * and a compact layout under 80 columns; piped, frames follow each other
 * (--count for a fixed number).
 */
export function registerTop(program: Command, ctx: CliContext): void {
  program
    .command('top')
    .description('live view of uplinks: state, clients, throughput, RTT and loss, with charts (Ctrl-C to leave)')
    .option('--interval <duration>', 'time between frames', '1s')
    .option('--count <n>', 'stop after this many frames (default: until interrupted)')
    .action(async (options: { interval: string; count?: string }) => {
      const interval = parseDurationMs(options.interval);
      const count = options.count === undefined ? Infinity : Number(options.count);
      if (interval === null || interval < 100) throw new Failure(`--interval ${options.interval} is not a duration of 100ms or more`, EXIT_USAGE);
      if (!(count >= 1)) throw new Failure(`--count ${options.count} is not a positive number`, EXIT_USAGE);
      const tty = process.stdout.isTTY === true;
      // As full-screen terminal tools do: the alternate screen with the cursor hidden, both given back however it ends.
      const restore = (): void => void process.stdout.write(`${SHOW_CURSOR}${MAIN_SCREEN}`);
      if (tty) {
        process.stdout.write(`${ALTERNATE_SCREEN}${HIDE_CURSOR}`);
        process.once('exit', restore);
      }
      const history = new Map<string, { throughput: number[]; rtt: (number | null)[] }>();
      let previous: Traffic | null = null;
      let stop = false;
      let wake = (): void => undefined;
      // Ctrl-C (or SIGTERM, SIGHUP) ends it at once, between frames or during the wait, and the finally below gives the screen back.
      const quit = (): void => {
        stop = true;
        wake();
      };
      for (const signal of ENDING_SIGNALS) process.on(signal, quit);
      try {
        for (let frame = 0; frame < count && !stop; frame++) {
          if (frame > 0) {
            await new Promise<void>((resolve) => {
              const timer = setTimeout(resolve, interval);
              wake = () => {
                clearTimeout(timer);
                resolve();
              };
            });
            if (stop) break;
          }
          const [status, traffic] = await Promise.all([fromDaemon(ctx, { cmd: 'status' }), fromDaemon(ctx, { cmd: 'traffic' })]);
          if (!status || !traffic) throw new Failure('the daemon is not running (dispatcher start)');
          const speed = previous ? rates(previous, traffic) : null;
          previous = traffic;
          const uplinks: TopUplink[] = status.uplinks.map((u) => {
            const { rttMs, lossPercent: loss } = lineQuality(u.health);
            const rx = speed?.uplinks[u.name]?.rx ?? 0;
            const tx = speed?.uplinks[u.name]?.tx ?? 0;
            const past = history.get(u.name) ?? { throughput: [], rtt: [] };
            history.set(u.name, past);
            if (speed) past.throughput.push(rx + tx);
            past.rtt.push(u.state === 'up' ? rttMs : null);
            past.throughput.splice(0, Math.max(0, past.throughput.length - HISTORY));
            past.rtt.splice(0, Math.max(0, past.rtt.length - HISTORY));
            return { name: u.name, interface: u.interface, state: u.state, clients: u.clients, reason: u.reason, rx, tx, rttMs, lossPercent: loss, throughputHistory: past.throughput, rttHistory: past.rtt };
          });
          const ddns = status.ddns ? (status.ddns.error ? `FAILING: ${status.ddns.error}` : `${status.ddns.name} ${status.ddns.inSync ? 'in sync' : 'checking'}`) : null;
          const width = tty ? (process.stdout.columns ?? 80) : Number.POSITIVE_INFINITY;
          ctx.out(`${tty ? HOME_AND_CLEAR : frame > 0 ? '\n' : ''}${renderTop({ at: new Date(), clients: status.clients, uplinks, ddns }, width)}`);
        }
      } finally {
        for (const signal of ENDING_SIGNALS) process.off(signal, quit);
        if (tty) {
          process.off('exit', restore);
          restore();
        }
      }
    });
}

import type { Command } from 'commander';
import type { TimelineEventView } from '../../schema/control.js';
import { fromDaemon, type CliContext } from '../context.js';
import { Failure } from '../exit.js';

/** How long one --follow request waits for the next event (the control socket closes idle connections after 60 s). */
const FOLLOW_WAIT_MS = 25_000;
/** How often --follow asks again while the daemon does not answer. */
const RETRY_MS = 1_000;

/** One event per line: local time, kind, the line it is about, what happened. */
export function eventLine(event: TimelineEventView): string {
  const at = new Date(event.at);
  const time = `${at.toLocaleDateString('sv')} ${at.toLocaleTimeString('sv')}`;
  return `${time}  ${event.kind.padEnd(8)}  ${(event.uplink ?? '-').padEnd(6)}  ${event.text}`;
}

/**
 * `dispatcher events`: the daemon's timeline (the web page shows the same):
 * verdicts, failovers and failbacks, DNS updates, repairs, reloads and
 * refused configs, operator actions. --follow keeps printing as they happen
 * (each request waits for the next event, no polling), across restarts of
 * the daemon; --json prints one JSON object per line.
 */
export function registerEvents(program: Command, ctx: CliContext): void {
  program
    .command('events')
    .description("the daemon's timeline: verdicts, failovers, failbacks, DNS updates, repairs, reloads, operator actions (the newest 1000)")
    .option('--follow', 'keep printing new events as they happen (Ctrl-C to leave)')
    .option('--json', 'one JSON object per line')
    .action(async (options: { follow?: boolean; json?: boolean }) => {
      const print = (events: readonly TimelineEventView[]): void => {
        for (const event of events) ctx.out(`${options.json ? JSON.stringify(event) : eventLine(event)}\n`);
      };
      let answer = await fromDaemon(ctx, { cmd: 'events' });
      if (!answer) throw new Failure('the daemon is not running: the timeline lives in it (dispatcher start)');
      print(answer.events);
      // Ctrl-C ends it as it ends tail -f: by the signal, wherever the wait is.
      let waiting = false;
      while (options.follow) {
        const after: number = answer.last;
        const started: string = answer.started;
        // A restarted daemon (another `started`) answers with what it has from the start.
        const next = await fromDaemon(ctx, { cmd: 'events', after, started, waitMs: FOLLOW_WAIT_MS }).catch(() => null);
        if (next === null) {
          // Stopped or restarting: followed again once it answers, as tail -F follows a file that comes back.
          if (!waiting) ctx.err('(the daemon is not answering; waiting for it)\n');
          waiting = true;
          await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
          continue;
        }
        waiting = false;
        answer = next;
        print(answer.events);
      }
    });
}

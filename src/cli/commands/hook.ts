import type { Command } from 'commander';
import { checkHook } from '../../core/requests.js';
import { askDaemon, resultOf } from '../../system/control-client.js';
import { socketFor, type CliContext } from '../context.js';
import { EXIT_FAILURE, Failure } from '../exit.js';
import { registerSpec, type CommandSpec } from '../spec.js';

/**
 * pppd does not wait for its hooks, but a hook that hangs is still a bug:
 * give up after this. Not shorter: on a gateway busy starting many programs
 * at once (measured: 200 CLI calls in parallel on 2 cores) the daemon takes
 * seconds to get the CPU, and a hook that gave up would lose the event.
 */
const HOOK_TIMEOUT_MS = 10_000;

export const hookSpec: CommandSpec = {
  name: 'hook',
  description: 'tell the running daemon about a ppp link (pppd runs this from ip-up.d/ip-down.d); answered at once',
  operands: [
    ['<event>', 'ip-up or ip-down'],
    ['<interface>', 'ppp interface, e.g. ppp0'],
    ['<tty>', 'tty device'],
    ['<speed>', 'speed'],
    ['<local>', 'local IP address'],
    ['<remote>', 'remote IP address'],
    ['[ipparam]', 'pppd ipparam (identifies the uplink)'],
  ],
  json: false,
  action: async (ctx, [event = '', iface = '', tty = '', speed = '', local = '', remote = '', ipparam]) => {
    const request = checkHook({ event, interface: iface, tty, speed, local, remote, ...(ipparam ? { ipparam } : {}) });
    const socket = await socketFor(ctx);
    const response = await askDaemon(socket, request, HOOK_TIMEOUT_MS).catch((error: Error) => {
      throw new Failure(`${error.message} (the daemon still sees link changes itself)`);
    });
    if (!response) {
      ctx.err(`dispatcher: not running (no daemon on ${socket}); ${event} on ${iface} not passed on\n`);
      ctx.exitCode = EXIT_FAILURE;
      return;
    }
    const result = resultOf<'hook'>(response);
    ctx.out(`${event} on ${iface}: passed to the daemon (uplink ${result.uplink})\n`);
  },
};

export function registerHook(program: Command, ctx: CliContext): void {
  registerSpec(program, ctx, hookSpec);
}

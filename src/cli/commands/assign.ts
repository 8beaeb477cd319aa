import type { Command } from 'commander';
import { checkAssignment, checkClientAddress } from '../../core/requests.js';
import { RequestError } from '../../model/errors.js';
import { configFor, fromDaemon, printJson, type CliContext } from '../context.js';
import { registerSpec, type CommandSpec } from '../spec.js';

export const assignSpec: CommandSpec = {
  name: 'assign',
  description: "pin a client to an uplink's pool (kept until released)",
  operands: [
    ['<ip>', 'client address'],
    ['<uplink>', 'uplink name'],
  ],
  json: true,
  action: async (ctx, [ip = '', uplink = ''], options) => {
    // A running daemon checks the request against the config it runs with.
    const live = await fromDaemon(ctx, { cmd: 'assign', ip, uplink });
    if (!live) {
      // No daemon: the store is ours alone, and the next start applies it.
      const config = await configFor(ctx);
      checkAssignment(config, ip, uplink);
      // The store (and its schema) only when no daemon answers: start-up matters (cli/main.ts).
      const { Store } = await import('../../system/store.js');
      const store = await Store.open(config.state);
      const now = Date.now();
      await store.save((data) => {
        data.clients[ip] = { mac: '', interface: '', firstSeen: now, lastSeen: now, ...data.clients[ip], uplink, pinned: true };
      });
    }
    if (options.json) printJson(ctx, { ip, uplink, pinned: true, applied: live !== null });
    else ctx.out(`${ip} pinned to ${uplink}${live ? '' : ' (stored; the daemon is not running and applies it when it starts)'}\n`);
  },
};

export const releaseSpec: CommandSpec = {
  name: 'release',
  description: "forget a client's assignment (if it is still present it joins the least-loaded pool again)",
  operands: [['<ip>', 'client address']],
  json: true,
  action: async (ctx, [ip = ''], options) => {
    checkClientAddress(ip);
    const live = await fromDaemon(ctx, { cmd: 'release', ip });
    let from = live?.released;
    if (!live) {
      const config = await configFor(ctx);
      // The store (and its schema) only when no daemon answers: start-up matters (cli/main.ts).
      const { Store } = await import('../../system/store.js');
      const store = await Store.open(config.state);
      from = store.data.clients[ip]?.uplink;
      if (!from) throw new RequestError(`${ip} is not assigned to any pool`);
      await store.save((data) => {
        delete data.clients[ip];
      });
    }
    if (options.json) printJson(ctx, { ip, released: from, applied: live !== null });
    else ctx.out(`${ip} released from ${from}\n`);
  },
};

export function registerAssign(program: Command, ctx: CliContext): void {
  registerSpec(program, ctx, assignSpec);
  registerSpec(program, ctx, releaseSpec);
}

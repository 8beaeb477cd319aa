import type { Command } from 'commander';
import { POLICY_PROTOCOLS, type PolicyProtocol } from '../../core/balance/policy-match.js';
import { explanationText } from '../../core/explain.js';
import { checkClientAddress, checkExplainAddress } from '../../core/requests.js';
import { fromDaemon, printJson, type CliContext } from '../context.js';
import { Failure } from '../exit.js';

/** A whole number from min to max, or a Failure naming the option. */
function wholeOption(name: string, text: string, min: number, max: number): number {
  const value = Number(text);
  if (!/^[0-9]+$/.test(text) || value < min || value > max) throw new Failure(`${name} ${JSON.stringify(text)}: write a whole number from ${min} to ${max}`);
  return value;
}

/** --to and what policies may also need to know of the connection; those need --to. */
function connectionFacts(options: { to?: string; protocol?: string; port?: string; dscp?: string }) {
  if (options.to === undefined) {
    if (options.protocol !== undefined || options.port !== undefined || options.dscp !== undefined) throw new Failure('--protocol, --port and --dscp describe a connection: give its destination with --to');
    return {};
  }
  const protocol = options.protocol;
  if (protocol !== undefined && !(POLICY_PROTOCOLS as readonly string[]).includes(protocol)) throw new Failure(`--protocol ${JSON.stringify(protocol)}: write one of ${POLICY_PROTOCOLS.join(', ')}`);
  return {
    to: checkClientAddress(options.to),
    ...(protocol !== undefined ? { protocol: protocol as PolicyProtocol } : {}),
    ...(options.port !== undefined ? { port: wholeOption('--port', options.port, 1, 65535) } : {}),
    ...(options.dscp !== undefined ? { dscp: wholeOption('--dscp', options.dscp, 0, 63) } : {}),
  };
}

export function registerExplain(program: Command, ctx: CliContext): void {
  program
    .command('explain')
    .description('why a client sits where it does: pool, mark, rule, table, route, uplink, and what happens if that uplink dies')
    .argument('<ip>', "client address (IPv4, or one of a host's IPv6 addresses)")
    .option('--to <address>', "where its new connections to this address go (a static route, a policy, or the destination mode's bucket)")
    .option('--protocol <name>', `with --to: the connection's protocol, for policies that match one (${POLICY_PROTOCOLS.join(', ')})`)
    .option('--port <number>', 'with --to: its destination port, for policies that match ports')
    .option('--dscp <number>', 'with --to: the DSCP value of its first packet, for policies that match DSCP')
    .option('--json', 'print JSON')
    .action(async (ip: string, options: { json?: boolean; to?: string; protocol?: string; port?: string; dscp?: string }) => {
      const address = checkExplainAddress(ip);
      if (address.includes(':') && options.to !== undefined) throw new Failure("--to is for IPv4 clients: an IPv6 address leaves by its host's pool, or by a policy naming its host");
      const result = await fromDaemon(ctx, { cmd: 'explain', ip: address, ...connectionFacts(options) });
      if (!result) throw new Failure('the daemon is not running: explain reads its live pools and uplinks (dispatcher start)');
      if (options.json) {
        printJson(ctx, result);
        return;
      }
      ctx.out(explanationText(ip, result));
    });
}

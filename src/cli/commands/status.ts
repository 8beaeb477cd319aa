import type { Command } from 'commander';
import type { DdnsStatus, PublicAddressStatus, RunReport, Status, UplinkHealthSnapshot } from '../../schema/control.js';
import { EXIT_FAILURE } from '../exit.js';
import { configFor, fromDaemon, printJson, type CliContext } from '../context.js';
import { formatBalance, table } from '../format.js';
import { offlinePools } from './pools.js';
import { registerSpec, type CommandSpec } from '../spec.js';

function ago(epochMs: number): string {
  const s = Math.max(0, Math.round((Date.now() - epochMs) / 1000));
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${Math.round(s / 3600)} h`;
}

function describeHealth(name: string, health: UplinkHealthSnapshot | null): string {
  if (!health) return `${name}: no probes`;
  const targets = health.targets.map((t) => {
    const rtt = t.lastRttMs === null ? '-' : `${t.lastRttMs.toFixed(2)} ms (avg ${t.avgRttMs?.toFixed(2)})`;
    const lastLost = t.lastLost === null ? '' : `  last lost: ${t.lastLost}`;
    return `    ${t.target.padEnd(15)} ${t.method.padEnd(4)} ${t.alive === null ? 'no verdict' : t.alive ? 'alive' : 'DEAD'}  rtt ${rtt}  loss ${t.lossPercent}% of ${t.probes}${lastLost}`;
  });
  const { passive } = health;
  const passiveLine = passive
    ? [
        `    passive: a stall of ${passive.stallMs} ms is asked at once (≤ ${passive.detectionMs} ms to a verdict on a line carrying traffic); stalls ${passive.answered} quiet, ${passive.silent} silent${passive.last ? `; last: ${passive.last}` : ''}`,
      ]
    : [];
  const damping = health.suppressed ? `, held down for flapping (penalty ${health.penalty})` : health.penalty > 0 ? `, flap penalty ${health.penalty}` : '';
  return [
    `${name}: ${health.state}${health.degraded ? ` but DEGRADED (${health.degraded}): a smaller share of new clients` : ''} for ${ago(health.since)}, ${health.transitions} transitions${damping}`,
    `    worst-case detection ${health.detectionMs} ms, failback ${health.failbackMs} ms (from the active settings); probes every ${health.intervalMs} ms ≈ ${health.probeKbps.out} kbit/s out, ${health.probeKbps.in} kbit/s in`,
    ...passiveLine,
    ...targets,
  ].join('\n');
}

function describePublic(name: string, address: PublicAddressStatus | null): string | null {
  if (!address || address.source === 'interface') return null;
  return `  ${name}: ${address.address ?? 'unknown'} from ${address.url}${address.error ? ` — lookup failing (${address.failures}×): ${address.error}` : ''}`;
}

function describeDdns(ddns: DdnsStatus | null): string {
  if (!ddns) return '';
  const state = ddns.error ? `FAILING (${ddns.failures}×, next try ${ddns.retryAt ?? '-'}): ${ddns.error}` : ddns.inSync ? 'in sync' : 'checking';
  return `\ndns ${ddns.name} at ${ddns.server}: ${state}\n  wanted ${ddns.wanted.join(' ') || '(none)'}; server holds ${ddns.published?.join(' ') || '(unknown)'}; ${ddns.updates} updates, ${ddns.checks} checks, last check ${ddns.checkedAt ?? '-'}\n`;
}

function describeRun(run: RunReport | null): string {
  if (!run) return 'no run yet';
  const what = run.ok ? `ok in ${run.durationMs} ms` : `FAILED: ${run.error}`;
  const applied = Object.entries(run.applied)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return `${run.at} (${run.reasons.join(', ')}): ${what}${applied ? `; loaded ${applied} lines` : '; kernel already matched'}`;
}

export const statusSpec: CommandSpec = {
  name: 'status',
  description: 'show whether the daemon runs, uplink states and the last reconcile (exit 1 when not running)',
  operands: [],
  json: true,
  action: async (ctx, _operands, options) => {
    const status = await fromDaemon(ctx, { cmd: 'status' });
    if (!status) {
      const config = await configFor(ctx);
      const pools = await offlinePools(ctx.runner, config);
      if (options.json) printJson(ctx, { running: false, socket: config.socket, ...pools });
      else ctx.out(`dispatcher is not running (no daemon on ${config.socket})\n${pools.clients} clients in the store\n`);
      ctx.exitCode = EXIT_FAILURE;
      return;
    }
    if (options.json) {
      printJson(ctx, status);
      return;
    }
    const uplinks = table(
      ['UPLINK', 'INTERFACE', 'STATE', 'WEIGHT', 'CLIENTS', 'GATEWAY', 'REASON'],
      status.uplinks.map((u) => [u.name, u.interface, u.state, String(u.weight), String(u.clients), u.gateway ? `${u.gateway} (${u.gatewaySource})` : '-', u.reason]),
    );
    const conflicts = [...status.conflicts, ...(status.advertisements ? [`the LAN's router advertisements failed (${status.advertisements}); the next run tries again`] : [])].map((c) => `warning: ${c}\n`).join('');
    const health = status.uplinks
      .flatMap((u) => [
        describeHealth(u.name, u.health),
        ...(u.ipv6 ? [u.ipv6.health ? describeHealth(`${u.name} IPv6`, u.ipv6.health) : `${u.name} IPv6: ${u.ipv6.state} (${u.ipv6.reason}), next hop ${u.ipv6.gateway ?? 'none'}`] : []),
        ...(u.ipv6?.announced ? [`${u.name} IPv6 prefix ${u.ipv6.announced.prefix}: announced ${u.ipv6.announced.preferred ? 'preferred' : 'deprecated (hosts choose another line for new connections)'}`] : []),
      ])
      .join('\n');
    const routes = status.staticRoutes.map((r) => `  ${r.destination} via first live of ${r.via.join(', ')}`).join('\n');
    const policies = status.policies.map((p) => `  ${p.name}: ${p.match} → ${p.action}${p.pool !== null ? ` (now ${p.uplink ?? 'none live: over the lines that carry'})` : ''}`).join('\n');
    const publics = status.uplinks
      .map((u) => describePublic(u.name, u.publicAddress))
      .filter((line) => line !== null)
      .join('\n');
    ctx.out(
      `dispatcher ${status.version}, pid ${status.pid}, up ${status.uptimeSeconds} s, config ${status.config}\n` +
        `${status.clients} clients\n${formatBalance(status)}\n${describePair(status.ha)}${uplinks}\nhealth:\n${health}\n${routes ? `\nstatic routes:\n${routes}\n` : ''}${policies ? `\npolicies (first match wins):\n${policies}\n` : ''}${publics ? `\npublic addresses:\n${publics}\n` : ''}${describeDdns(status.ddns)}\nlast run: ${describeRun(status.lastRun)}\n${conflicts}`,
    );
  },
};

export function registerStatus(program: Command, ctx: CliContext): void {
  registerSpec(program, ctx, statusSpec);
}

/** One of a pair: its role and the state channel, as a line (none alone), and a warning for each thing that fails. */
function describePair(ha: Status['ha']): string {
  if (!ha) return '';
  const channel =
    ha.role === 'master'
      ? ha.sending
        ? `sending to ${ha.peer}${ha.lagMs !== null ? `, last acknowledged after ${ha.lagMs} ms` : ''}`
        : `not reaching ${ha.peer}${ha.problem ? ` (${ha.problem})` : ''}: the backup is not kept up to date`
      : `${ha.hearing ? 'hearing the master' : 'not hearing the master (the sync link, its dispatcher?): not kept up to date'}; ${ha.lastReceived ? `its last change applied at ${ha.lastReceived}` : 'no change from it yet'}`;
  const refused = ha.refused ? `\nwarning: refused ${ha.refused.from} on the state channel at ${ha.refused.at} (${ha.refused.why})` : '';
  // `?.`: a daemon from before the conntrackd check answers without it.
  const conntrackd = ha.conntrackd?.ok === false ? `\nwarning: conntrackd does not answer (${ha.conntrackd.problem ?? 'no answer'}, asked at ${ha.conntrackd.checkedAt}): connections are not synced, and a takeover drops them` : '';
  return `pair: ${ha.role}${ha.role === 'master' ? '' : ' (fenced: forwards nothing)'}; ${channel}${refused}${conntrackd}\n`;
}

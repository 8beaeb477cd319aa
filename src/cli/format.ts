// Plain-text tables for people; --json is for programs.

import type { PoolsReport } from '../schema/control.js';

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/** In the destination and connection modes: which share of new connections each line's pool takes. */
export function formatBalance(report: { readonly balance: PoolsReport['balance']; readonly uplinks: readonly { readonly name: string; readonly buckets: number | null }[] }): string {
  if (report.balance === 'host') return '';
  const by = report.balance === 'destination' ? 'client and destination address' : 'connection (addresses, protocol, ports)';
  const sharing = report.uplinks.filter((u) => (u.buckets ?? 0) > 0);
  const total = sharing.reduce((sum, u) => sum + (u.buckets ?? 0), 0);
  const shares = sharing.map((u) => `${u.name} ${u.buckets}`);
  return `balance: ${report.balance} — each new connection's line by a hash of its ${by}, ${total} buckets: ${shares.join(', ')}; clients keep their pools, but new connections do not follow them\n`;
}

export function formatPools(report: Pick<PoolsReport, 'balance' | 'uplinks'>): string {
  const { uplinks } = report;
  const summary = table(
    ['UPLINK', 'INTERFACE', 'STATE', 'TIER', 'WEIGHT', 'ADDRESS', 'GATEWAY', 'CLIENTS'],
    uplinks.map((u) => [u.name, u.interface, u.degraded ? 'degraded' : u.role === 'standby' ? 'standby' : u.state, String(u.tier), String(u.weight), u.address ?? '-', u.gateway ?? '-', String(u.clients.length)]),
  );
  const members = uplinks.map((u) => {
    const pinned = new Set(u.pinned);
    const list = u.clients.map((c) => (pinned.has(c) ? `${c}*` : c));
    return `${u.name}: ${list.length > 0 ? list.join(' ') : '(none)'}`;
  });
  const anyPinned = uplinks.some((u) => u.pinned.length > 0);
  return `${formatBalance(report)}${summary}\n${members.join('\n')}\n${anyPinned ? '(* pinned by an operator)\n' : ''}`;
}

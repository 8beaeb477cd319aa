// Plain-text tables for people; --json is for programs.

import type { PoolView } from '../schema/control.js';

export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

export function formatPools(uplinks: readonly PoolView[]): string {
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
  return `${summary}\n${members.join('\n')}\n${anyPinned ? '(* pinned by an operator)\n' : ''}`;
}

// What `dispatcher top` draws (pure): one frame from the daemon's status, the
// byte rates since the previous frame, and a short history per uplink for
// the sparklines of throughput and RTT.

import { table } from './format.js';

export interface TopUplink {
  readonly name: string;
  readonly interface: string;
  readonly state: string;
  readonly clients: number;
  readonly reason: string;
  /** Bytes per second received and sent on the interface since the previous frame. */
  readonly rx: number;
  readonly tx: number;
  /** Average RTT over the live targets, ms; null without an answer. */
  readonly rttMs: number | null;
  readonly lossPercent: number;
  /** Newest last. */
  readonly throughputHistory: readonly number[];
  readonly rttHistory: readonly (number | null)[];
}

export interface TopFrame {
  readonly at: Date;
  readonly clients: number;
  readonly uplinks: readonly TopUplink[];
  readonly ddns: string | null;
}

const BARS = '▁▂▃▄▅▆▇█';

export function sparkline(values: readonly (number | null)[], width = 30): string {
  const recent = values.slice(-width);
  const top = Math.max(0, ...recent.map((v) => v ?? 0));
  return recent.map((v) => (v === null ? ' ' : top === 0 ? BARS[0] : BARS[Math.min(BARS.length - 1, Math.floor((v / top) * (BARS.length - 1)))])).join('');
}

export function rate(bytesPerSecond: number): string {
  const bits = bytesPerSecond * 8;
  if (bits >= 1e9) return `${(bits / 1e9).toFixed(1)} Gbit/s`;
  if (bits >= 1e6) return `${(bits / 1e6).toFixed(1)} Mbit/s`;
  if (bits >= 1e3) return `${(bits / 1e3).toFixed(1)} kbit/s`;
  return `${Math.round(bits)} bit/s`;
}

/** Terminals narrower than this get the compact layout: no interface, loss or reason columns, shorter charts. */
export const COMPACT_BELOW = 80;

/** One frame, each line cut to `width` columns (the terminal's; unlimited when piped). */
export function renderTop(frame: TopFrame, width = Number.POSITIVE_INFINITY): string {
  const compact = width < COMPACT_BELOW;
  const rtt = (u: TopUplink): string => (u.rttMs === null ? '-' : `${u.rttMs.toFixed(u.rttMs < 1 ? 3 : 1)} ms`);
  const state = (u: TopUplink): string => (u.state === 'up' ? 'up' : 'DOWN');
  const header = compact ? ['UPLINK', 'STATE', 'CLIENTS', 'RX', 'TX', 'RTT'] : ['UPLINK', 'IF', 'STATE', 'CLIENTS', 'RX', 'TX', 'RTT', 'LOSS', 'WHY'];
  const rows = frame.uplinks.map((u) =>
    compact ? [u.name, state(u), String(u.clients), rate(u.rx), rate(u.tx), rtt(u)] : [u.name, u.interface, state(u), String(u.clients), rate(u.rx), rate(u.tx), rtt(u), `${u.lossPercent}%`, u.state === 'up' ? '' : u.reason],
  );
  const bars = compact ? 15 : 30;
  const name = compact ? 8 : 12;
  const charts = frame.uplinks.flatMap((u) => [
    `${u.name.padEnd(name)} traffic ${sparkline(u.throughputHistory, bars)}  max ${rate(Math.max(0, ...u.throughputHistory))}`,
    `${''.padEnd(name)} rtt     ${sparkline(u.rttHistory, bars)}`,
  ]);
  const title = `dispatcher top — ${compact ? frame.at.toISOString().slice(11, 19) : frame.at.toISOString()} — ${frame.clients} clients${frame.ddns ? ` — dns ${frame.ddns}` : ''}`;
  const text = `${title}\n\n${table(header, rows)}\n${charts.join('\n')}\n`;
  return Number.isFinite(width)
    ? text
        .split('\n')
        .map((line) => [...line].slice(0, width).join(''))
        .join('\n')
    : text;
}

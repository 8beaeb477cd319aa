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

export function renderTop(frame: TopFrame): string {
  const rows = frame.uplinks.map((u) => [
    u.name,
    u.interface,
    u.state === 'up' ? 'up' : 'DOWN',
    String(u.clients),
    rate(u.rx),
    rate(u.tx),
    u.rttMs === null ? '-' : `${u.rttMs.toFixed(u.rttMs < 1 ? 3 : 1)} ms`,
    `${u.lossPercent}%`,
    u.state === 'up' ? '' : u.reason,
  ]);
  const charts = frame.uplinks.flatMap((u) => [`${u.name.padEnd(12)} traffic ${sparkline(u.throughputHistory)}  max ${rate(Math.max(0, ...u.throughputHistory))}`, `${''.padEnd(12)} rtt     ${sparkline(u.rttHistory)}`]);
  return (
    `dispatcher top — ${frame.at.toISOString()} — ${frame.clients} clients${frame.ddns ? ` — dns ${frame.ddns}` : ''}\n\n` +
    table(['UPLINK', 'IF', 'STATE', 'CLIENTS', 'RX', 'TX', 'RTT', 'LOSS', 'WHY'], rows) +
    `\n${charts.join('\n')}\n`
  );
}

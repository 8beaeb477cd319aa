// Small statistics for the benchmark: order statistics and the two-point
// growth fit used to extrapolate the per-client baseline.

/** The p-th percentile (0–100) by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length)));
  return sorted[rank - 1] as number;
}

export function median(samples: readonly number[]): number {
  return percentile(samples, 50);
}

/**
 * Fits t(n) = a·n + b·n² through two measured points (no constant: zero
 * clients cost nothing) and returns t at `n`. The per-client loop grows
 * faster than linearly (each `iptables -A` rewrites the whole table), so a
 * straight line would flatter it; when noise makes the points say otherwise,
 * a straight line through the larger point is used.
 */
export function extrapolate(points: readonly [readonly [number, number], readonly [number, number]], n: number): number {
  const [[n1, t1], [n2, t2]] = points;
  const b = (t2 / n2 - t1 / n1) / (n2 - n1);
  if (!Number.isFinite(b) || b < 0) return (t2 / n2) * n; // a straight line through the larger point
  const a = t1 / n1 - b * n1;
  return Math.max(a, 0) * n + b * n * n;
}

export function round(value: number, digits = 0): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

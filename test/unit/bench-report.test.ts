// The benchmark's pure parts: statistics, the baseline extrapolation, ratios
// and targets, the markdown table and the SVG chart.

import { describe, expect, test } from '@jest/globals';
import { renderChart } from '../../src/bench/chart.js';
import { figure, renderMarkdown, type BenchResults } from '../../src/bench/report.js';
import { extrapolate, median, percentile } from '../../src/bench/stats.js';

describe('statistics', () => {
  test('percentiles by nearest rank', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i); // 100 … 1, unsorted on purpose
    expect(percentile(samples, 50)).toBe(50);
    expect(percentile(samples, 95)).toBe(95);
    expect(percentile(samples, 100)).toBe(100);
    expect(median([3, 1, 2])).toBe(2);
    expect(percentile([], 50)).toBeNaN();
  });

  test('the baseline extrapolation passes through both measured points and grows at least linearly', () => {
    const points = [
      [500, 1500],
      [1000, 3700],
    ] as const;
    expect(extrapolate(points, 500)).toBeCloseTo(1500);
    expect(extrapolate(points, 1000)).toBeCloseTo(3700);
    // Quadratic growth: 5,000 clients cost more than five times 1,000.
    expect(extrapolate(points, 5000)).toBeGreaterThan(5 * 3700);
    // Points that say "sublinear" are not trusted: the fit falls back to a straight line.
    expect(
      extrapolate(
        [
          [500, 2000],
          [1000, 3000],
        ],
        2000,
      ),
    ).toBeCloseTo(6000);
  });
});

describe('figures', () => {
  test('ratio is baseline ÷ ours when lower is better, ours ÷ baseline for rates; targets are judged', () => {
    const time = figure({ name: 't', unit: 'ms', value: 250, baseline: 5000, target: { text: '≤ 500 ms', max: 500 } });
    expect(time.ratio).toBe(20);
    expect(time.target).toEqual({ text: '≤ 500 ms', met: true });
    const rate = figure({ name: 'r', unit: 'pps', value: 80, baseline: 100, lowerIsBetter: false, target: { text: '≥ 0.85×', min: 85 } });
    expect(rate.ratio).toBeCloseTo(0.8);
    expect(rate.target?.met).toBe(false);
    expect(figure({ name: 'n', unit: '', value: 0, baseline: null, baselineNote: 'none' }).ratio).toBeNull();
  });

  const results: BenchResults = {
    started: '2026-11-22T00:00:00.000Z',
    durationS: 10,
    quick: true,
    machine: { cpus: 2, kernel: '6.18', node: 'v20' },
    scenarios: [
      {
        id: 'programming',
        title: 'Programming <time>',
        baseline: 'one iptables process per client',
        figures: [figure({ name: '10,000 clients', unit: 'ms', value: 400, baseline: 40_000, target: { text: '≤ 0.5 s', max: 500 } }), figure({ name: 'moved', unit: '', value: 0, baseline: null, baselineNote: '—' })],
        notes: ['a note'],
      },
    ],
  };

  test('the markdown table carries value, baseline, ratio and the target verdict', () => {
    const md = renderMarkdown(results);
    expect(md).toContain('| 10,000 clients | 400 ms | 40,000 ms | 100× | ≤ 0.5 s: met |');
    expect(md).toContain('![Programming <time>](programming.svg)');
    expect(md).toContain('- a note');
  });

  test('the chart has a bar for ours and the baseline, scaled to the larger, with escaped text', () => {
    const svg = renderChart(results.scenarios[0]!);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('Programming &#60;time&#62;');
    const widths = [...svg.matchAll(/class="(ours|baseline)" x="\d+" y="\d+" width="([\d.]+)"/g)].map((m) => [m[1], Number(m[2])]);
    expect(widths).toEqual([
      ['ours', expect.any(Number)],
      ['baseline', expect.any(Number)],
      ['ours', expect.any(Number)],
    ]);
    const [ours, baseline] = widths.map(([, w]) => w as number);
    expect((baseline as number) / (ours as number)).toBeCloseTo(100, 0);
  });
});

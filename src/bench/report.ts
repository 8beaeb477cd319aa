// The benchmark's results as data (bench/results.json) and as a markdown
// table (bench/RESULTS.md). Every figure carries the baseline it was measured
// against in the same run, so the ratio survives a noisy machine.

export interface Figure {
  readonly name: string;
  readonly unit: string;
  /** Our measured value. */
  readonly value: number;
  /** The baseline's value for the same thing, or null where none exists (said in `baselineNote`). */
  readonly baseline: number | null;
  readonly baselineNote?: string;
  /** How many times better than the baseline (baseline ÷ value when lower is better). */
  readonly ratio: number | null;
  readonly lowerIsBetter: boolean;
  /** The issue's target, when it sets one, and whether this run met it. */
  readonly target?: { readonly text: string; readonly met: boolean };
}

export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly baseline: string;
  readonly figures: readonly Figure[];
  readonly notes: readonly string[];
}

export interface BenchResults {
  readonly started: string;
  readonly durationS: number;
  readonly quick: boolean;
  readonly machine: { readonly cpus: number; readonly kernel: string; readonly node: string };
  readonly scenarios: readonly ScenarioResult[];
}

export interface FigureInput {
  readonly name: string;
  readonly unit: string;
  readonly value: number;
  readonly baseline: number | null;
  readonly baselineNote?: string;
  readonly lowerIsBetter?: boolean;
  /** Target as a bound on the value: met when value <= max (or >= min). */
  readonly target?: { readonly text: string; readonly max?: number; readonly min?: number };
}

export function figure(input: FigureInput): Figure {
  const lowerIsBetter = input.lowerIsBetter ?? true;
  const { baseline, value } = input;
  let ratio: number | null = null;
  if (baseline !== null && baseline > 0 && value > 0) ratio = lowerIsBetter ? baseline / value : value / baseline;
  const target = input.target && {
    text: input.target.text,
    met: (input.target.max === undefined || value <= input.target.max) && (input.target.min === undefined || value >= input.target.min),
  };
  return {
    name: input.name,
    unit: input.unit,
    value,
    baseline,
    ...(input.baselineNote ? { baselineNote: input.baselineNote } : {}),
    ratio,
    lowerIsBetter,
    ...(target ? { target } : {}),
  };
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return '—';
  if (Number.isInteger(value)) return value.toLocaleString('en-US');
  if (Math.abs(value) >= 100) return Math.round(value).toLocaleString('en-US');
  if (Math.abs(value) >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

function formatRatio(ratio: number | null): string {
  if (ratio === null) return '—';
  return `${ratio >= 10 ? Math.round(ratio).toLocaleString('en-US') : ratio.toFixed(2)}×`;
}

export function renderMarkdown(results: BenchResults): string {
  const out = [
    '# Benchmark results',
    '',
    `Run ${results.started} (${results.quick ? 'quick' : 'full'} run, ${Math.round(results.durationS)} s) on ${results.machine.cpus} CPUs, Linux ${results.machine.kernel}, Node ${results.machine.node}.`,
    'Every figure is measured against a baseline in the same run; the ratio says how many times better ours is (above 1 is better, for rates our value ÷ the baseline).',
    '',
  ];
  for (const scenario of results.scenarios) {
    out.push(`## ${scenario.title}`, '', `Baseline: ${scenario.baseline}`, '', `![${scenario.title}](${scenario.id}.svg)`, '');
    out.push('| Figure | Ours | Baseline | Ratio | Target |', '|---|---:|---:|---:|---|');
    for (const f of scenario.figures) {
      const baseline = f.baseline === null ? (f.baselineNote ?? '—') : `${formatNumber(f.baseline)} ${f.unit}${f.baselineNote ? ` (${f.baselineNote})` : ''}`;
      const target = f.target ? `${f.target.text}: ${f.target.met ? 'met' : '**missed**'}` : '';
      out.push(`| ${f.name} | ${formatNumber(f.value)} ${f.unit} | ${baseline} | ${formatRatio(f.ratio)} | ${target} |`);
    }
    if (scenario.notes.length > 0) out.push('', ...scenario.notes.map((n) => `- ${n}`));
    out.push('');
  }
  return out.join('\n');
}

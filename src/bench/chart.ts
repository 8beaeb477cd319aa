// One SVG chart per scenario: a row per figure, our bar against the
// baseline's, each row scaled to its own larger value (figures in one
// scenario have different units), with the numbers written on the bars.

import { formatNumber, type ScenarioResult } from './report.js';

const WIDTH = 760;
const LABEL = 250;
const BAR = 16;
const ROW = 2 * BAR + 26;
const OURS = '#2b7bb9';
const BASE = '#b9b9b9';

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function label(value: number, unit: string): string {
  return `${formatNumber(value)} ${unit}`;
}

export function renderChart(scenario: ScenarioResult): string {
  const top = 40;
  const height = top + scenario.figures.length * ROW + 30;
  const span = WIDTH - LABEL - 120;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    `<text x="10" y="22" font-size="15" font-weight="bold">${escapeXml(scenario.title)}</text>`,
  ];
  scenario.figures.forEach((f, row) => {
    const y = top + row * ROW;
    const scale = Math.max(f.value, f.baseline ?? 0) || 1;
    const width = (v: number): number => Math.max(1, (v / scale) * span);
    parts.push(`<text x="10" y="${y + BAR}" >${escapeXml(f.name)}</text>`);
    parts.push(`<rect class="ours" x="${LABEL}" y="${y}" width="${width(f.value).toFixed(1)}" height="${BAR}" fill="${OURS}"/>`);
    parts.push(`<text x="${LABEL + width(f.value) + 6}" y="${y + BAR - 3}">${escapeXml(label(f.value, f.unit))}</text>`);
    if (f.baseline !== null) {
      parts.push(`<rect class="baseline" x="${LABEL}" y="${y + BAR + 2}" width="${width(f.baseline).toFixed(1)}" height="${BAR}" fill="${BASE}"/>`);
      parts.push(`<text x="${LABEL + width(f.baseline) + 6}" y="${y + 2 * BAR - 1}" fill="#555">${escapeXml(label(f.baseline, f.unit))}</text>`);
    }
  });
  const legendY = height - 12;
  parts.push(`<rect x="10" y="${legendY - 10}" width="12" height="12" fill="${OURS}"/><text x="28" y="${legendY}">dispatcher</text>`);
  parts.push(`<rect x="110" y="${legendY - 10}" width="12" height="12" fill="${BASE}"/><text x="128" y="${legendY}">baseline: ${escapeXml(scenario.baseline.slice(0, 90))}</text>`);
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

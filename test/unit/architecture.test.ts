// The lines the design draws. The layering (what each room may import) is
// checked over the real module graph by dependency-cruiser with the rules in
// .dependency-cruiser.cjs — every folder, multi-line, type-only and dynamic
// imports; the source text is checked for shells and hidden tests.

import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
  });
}

const sources = files(SRC).map((path) => ({ path: relative(SRC, path), text: readFileSync(path, 'utf8') }));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

interface Cruise {
  readonly summary: { readonly violations: readonly { readonly from: string; readonly to: string; readonly rule: { readonly name: string } }[]; readonly totalCruised: number };
}

describe('architecture', () => {
  test('the layering of ARCHITECTURE.md holds over the real module graph (dependency-cruiser)', () => {
    const cli = join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs');
    const out = execFileSync(process.execPath, [cli, 'src', '--config', '.dependency-cruiser.cjs', '--output-type', 'json', '--no-progress'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    const { summary } = JSON.parse(out) as Cruise;
    expect(summary.totalCruised).toBeGreaterThan(100);
    expect(summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
  });

  test('no shell anywhere: no shell option, no command strings', () => {
    // execa's $`…` template and child_process exec() take command strings; RegExp#exec is fine.
    const offenders = sources.filter((s) => /shell\s*:\s*true|execaCommand|(?<![\w$])\$`|execSync|spawnSync|(?<!\.)\bexec\(/.test(s.text)).map((s) => s.path);
    expect(offenders).toEqual([]);
  });

  test('a failing run is never hidden: no focused or skipped tests', () => {
    const TESTS = fileURLToPath(new URL('../', import.meta.url));
    const offenders = files(TESTS)
      .filter((path) => /\b(it|test|describe)\.(skip|only)\(|\bx(it|describe)\(/.test(readFileSync(path, 'utf8').replace(/\/(?:\\\/|[^/\n])+\/[gimsuy]*/g, '')))
      .map((path) => relative(TESTS, path));
    expect(offenders).toEqual([]);
  });
});

// The lines the design draws, checked on the source text: pure code imports
// no I/O, only src/system/exec.ts starts processes, and nothing uses a shell.

import { describe, expect, test } from '@jest/globals';
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
const imports = (text: string): string[] => [...text.matchAll(/^import .* from '([^']+)';$/gm)].map((m) => m[1] as string);

const PURE = ['model/', 'core/', 'parse/', 'render/', 'config/verify.ts'];
const IMPURE_MODULES = /^(node:(fs|child_process|net|dgram|http|os)|node:fs\/promises|execa|lowdb|lowdb\/node|commander|cron)$|\/(system|engine|cli|lab)\//;

describe('architecture', () => {
  test('pure code imports no I/O module and nothing with side effects', () => {
    const offenders = sources
      .filter((s) => PURE.some((p) => s.path.startsWith(p)))
      .flatMap((s) => imports(s.text).filter((m) => IMPURE_MODULES.test(m)).map((m) => `${s.path} imports ${m}`));
    expect(offenders).toEqual([]);
  });

  test('only src/system/exec.ts starts processes', () => {
    const starters = sources.filter((s) => /from 'execa'|from 'node:child_process'/.test(s.text)).map((s) => s.path);
    expect(starters).toEqual(['system/exec.ts']);
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

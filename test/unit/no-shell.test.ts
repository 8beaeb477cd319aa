// No shell, proven at run time (the architecture test proves it on the source
// text): the real runner is driven in a child process whose child_process
// module records every program it starts. Hostile strings — shell
// metacharacters, newlines, very long and non-ASCII text, as they could come
// from ARP lines, hook arguments, config or DNS names — must reach the
// program literally, as one argument, and nothing may start a shell. The test
// fails if one ever does.

import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SHELLS = /(^|\/)(sh|bash|dash|zsh|ksh|busybox)$/;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-noshell-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// It starts node and a dozen printf processes: a generous time limit on a busy 2-core machine (rule 6), where jest's 5 s was once not enough.
test('hostile strings reach programs literally through the real runner, and no shell is ever started', async () => {
  if (!existsSync(join(ROOT, 'dist/system/exec.js'))) throw new Error('dist/ is missing: run npm run build (npm test does)');
  const marker = join(dir, 'pwned');
  const hostile = [
    `ppp0; touch ${marker}`,
    `$(touch ${marker})`,
    `\`touch ${marker}\``,
    `a\ntouch ${marker}`,
    `x' || touch '${marker}`,
    `"; touch ${marker}; "`,
    '*',
    '~root',
    '-n',
    `lan0 && touch ${marker} &`,
    'интерфейс-名前-é-\u202e',
    'A'.repeat(100_000),
  ];
  const script = join(dir, 'drive.mjs');
  await writeFile(
    script,
    `import { ExecaRunner } from ${JSON.stringify(join(ROOT, 'dist/system/exec.js'))};
const runner = new ExecaRunner();
const args = JSON.parse(process.env.HOSTILE);
const outputs = [];
for (const arg of args) outputs.push((await runner.run(['printf', '%s', arg])).stdout);
const p = runner.spawn(['printf', '%s\\n', ...args.slice(0, 4)], {});
await p.ended;
// Read off the main thread (ip monitor neigh): started from a worker, by the same rule.
const off = runner.spawn(['printf', '%s\\n', ...args.slice(4, 8)], { offThread: true, onLine: () => undefined });
await off.ended;
// Output read when asked (the probes' ping): its FIFO is made by mkfifo, with an argument array too. Drained as the
// health monitor does, on a timer: more than the FIFO holds is printed here.
const polled = [];
const asked = runner.spawn(['printf', '%s\\n', ...args.slice(8)], { readWhenAsked: true, onLine: (line) => polled.push(line) });
const draining = setInterval(() => asked.drain(), 10);
await asked.ended;
clearInterval(draining);
process.stdout.write(JSON.stringify({ outputs, polled }));
`,
  );
  const log = join(dir, 'spawns.jsonl');
  const stdout = execFileSync(process.execPath, ['--require', join(ROOT, 'test/helpers/record-spawns.cjs'), script], {
    env: { ...process.env, SPAWN_LOG: log, HOSTILE: JSON.stringify(hostile) },
    maxBuffer: 64 * 1024 * 1024,
  }).toString();
  expect(JSON.parse(stdout)).toEqual({ outputs: hostile, polled: hostile.slice(8) });
  expect(existsSync(marker)).toBe(false);
  const starts = (await readFile(log, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { fn: string; file: string; args: string[]; shell: boolean });
  expect(starts.length).toBe(hostile.length + 4);
  for (const start of starts) {
    expect(start.shell).toBe(false);
    expect(start.file).not.toMatch(SHELLS);
    expect(start.file).toMatch(/(^|\/)(printf|mkfifo)$/);
  }
  expect(starts.filter((s) => s.file.endsWith('mkfifo'))).toHaveLength(1);
}, 30_000);

test('the recorder itself catches a shell (so the test above cannot pass vacuously)', async () => {
  const log = join(dir, 'control.jsonl');
  const script = join(dir, 'shell.cjs');
  await writeFile(script, "require('node:child_process').execSync('true'); require('node:child_process').spawnSync('true', [], { shell: true });\n");
  execFileSync(process.execPath, ['--require', join(ROOT, 'test/helpers/record-spawns.cjs'), script], { env: { ...process.env, SPAWN_LOG: log } });
  const starts = (await readFile(log, 'utf8'))
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { shell: boolean });
  expect(starts.some((s) => s.shell)).toBe(true);
});

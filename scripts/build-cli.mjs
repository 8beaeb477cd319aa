#!/usr/bin/env node
// Bundles the CLI for a fast start (bin/setup runs this after tsc):
// src/cli/main.ts and everything it imports, dependencies included, become a
// few ES modules in dist/cli-bundle/ with source maps. Node then reads a
// handful of files instead of hundreds, and each command's own code (and
// what only it needs, e.g. the daemon for `start`) sits in a chunk of its own
// that is loaded only when that command runs (cli/main.ts imports commands
// lazily; esbuild splits at those imports).
//
// The quick door (src/cli/quick.ts: hook, status, pools, assign, release, ha ROLE
// against a running daemon) is one CommonJS file, dist/cli-bundle/quick.cjs,
// which bin/dispatcher (CommonJS too) requires: on Node 20 an ES module entry
// costs some 20 ms of start-up more than a CommonJS one, and this start-up is
// part of failover time (the ppp ip-down hook) and takeover time (keepalived's
// notify script). What the quick door imports lazily (the config, the store,
// the command runner: paths a running daemon's answer does not take) stays
// ES modules in dist/cli-bundle/quick/, one entry per module it imports, so
// that the CommonJS file holds only the code every quick call runs.
//
//   node scripts/build-cli.mjs [OUTDIR]      (default dist/cli-bundle)

import { readFile, rename, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const target = resolve(root, process.argv[2] ?? 'dist/cli-bundle');
// Built beside the target, then swapped in: a CLI started while this runs
// (tests, a running lab) finds the old bundle or the new one, never half of one.
const outdir = `${target}.new-${process.pid}`;

/**
 * Modules find files beside the program by paths relative to their own URL
 * (iptables/skeleton.rules, pools/*.yaml, bin/dispatcher, dist/lab/agent.js),
 * written for tsc's layout where src/x/y.ts runs as dist/x/y.js. In a bundle
 * every module shares its file's URL, so give each module back the URL it
 * has in tsc's layout. Chunks all sit directly in outdir (no chunk folders),
 * so one relative path per module holds for whichever chunk it lands in.
 * `fileUrl` is the bundle file's own URL as an expression of its format.
 */
const keepModuleUrls = (outdir, fileUrl) => ({
  name: 'keep-module-urls',
  setup(builder) {
    builder.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => {
      if (!args.path.startsWith(join(root, 'src', '/'))) return undefined;
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const asBuilt = join(root, 'dist', relative(join(root, 'src'), args.path)).replace(/\.ts$/, '.js');
      const url = `new URL(${JSON.stringify(relative(outdir, asBuilt))}, ${fileUrl}).href`;
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
});

/** A module's entry name in the quick door's lazy part: its path under src/, e.g. config/peek.ts → config-peek. */
const lazyName = (path) => relative(join(root, 'src'), path).replace(/\.ts$/, '').replaceAll('/', '-');

/**
 * Leaves the quick door's lazy imports (`import()`) out of its CommonJS file:
 * each becomes an import of its module's entry in `lazyDir`, and is noted in
 * `lazy` so that the ES part builds it.
 */
const lazyImports = (lazy, lazyDir) => ({
  name: 'lazy-imports',
  setup(builder) {
    builder.onResolve({ filter: /.*/ }, (args) => {
      if (args.kind !== 'dynamic-import') return undefined;
      const path = resolve(args.resolveDir, args.path).replace(/\.js$/, '.ts');
      lazy.set(lazyName(path), path);
      return { path: `./${join(lazyDir, `${lazyName(path)}.js`)}`, external: true };
    });
  },
});

const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  // Stack traces name the src/ lines; the maps need not carry the sources themselves.
  sourcesContent: false,
  logLevel: 'warning',
};

/** ES modules: the entries and what they import statically in one file each, what they import lazily (or share) in chunks beside them. */
function esmBundle(entryPoints, dir) {
  return build({
    ...common,
    entryPoints,
    outdir: dir,
    splitting: true,
    format: 'esm',
    chunkNames: '[name]-[hash]',
    // Dependencies written as CommonJS call require(): give the ES module one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    plugins: [keepModuleUrls(dir, 'import.meta.url')],
  });
}

/** The quick door: one CommonJS file of what every quick call runs, its lazy imports as ES modules in quick/. */
async function quickBundle(dir) {
  const lazy = new Map();
  await build({
    ...common,
    entryPoints: { quick: 'src/cli/quick.ts' },
    outdir: dir,
    outExtension: { '.js': '.cjs' },
    format: 'cjs',
    // import() stays import() (of an ES module), rather than a require of code bundled in.
    supported: { 'dynamic-import': true },
    plugins: [keepModuleUrls(dir, 'require("node:url").pathToFileURL(__filename)'), lazyImports(lazy, 'quick')],
  });
  await esmBundle(Object.fromEntries(lazy), join(dir, 'quick'));
}

try {
  await esmBundle({ main: 'src/cli/main.ts' }, outdir);
  await quickBundle(outdir);
} catch (error) {
  await rm(outdir, { recursive: true, force: true });
  throw error;
}
const old = `${target}.old-${process.pid}`;
await rename(target, old).catch((error) => {
  if (error.code !== 'ENOENT') throw error;
});
await rename(outdir, target);
await rm(old, { recursive: true, force: true });

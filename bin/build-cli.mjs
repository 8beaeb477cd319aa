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
// against a running daemon) is bundled on its own into dist/cli-bundle/quick/,
// so that everything it needs at start is one file: shared chunks with main
// would make it some sixteen modules, and on Node 20 each costs start-up.
//
//   node bin/build-cli.mjs [OUTDIR]      (default dist/cli-bundle)

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
 * every module shares its chunk's URL, so give each module back the URL it
 * has in tsc's layout. Chunks all sit directly in outdir (no chunk folders),
 * so one relative path per module holds for whichever chunk it lands in.
 */
const keepModuleUrls = (outdir) => ({
  name: 'keep-module-urls',
  setup(builder) {
    builder.onLoad({ filter: /\/src\/.*\.ts$/ }, async (args) => {
      if (!args.path.startsWith(join(root, 'src', '/'))) return undefined;
      const source = await readFile(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const asBuilt = join(root, 'dist', relative(join(root, 'src'), args.path)).replace(/\.ts$/, '.js');
      const url = `new URL(${JSON.stringify(relative(outdir, asBuilt))}, import.meta.url).href`;
      return { contents: source.replaceAll('import.meta.url', url), loader: 'ts' };
    });
  },
});

/** One bundle: an entry and what it imports statically in one file, what it imports lazily in chunks beside it. */
function bundle(name, entry, dir) {
  return build({
    absWorkingDir: root,
    entryPoints: { [name]: entry },
    outdir: dir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    // Stack traces name the src/ lines; the maps need not carry the sources themselves.
    sourcesContent: false,
    chunkNames: '[name]-[hash]',
    // Dependencies written as CommonJS call require(): give the ES module one.
    banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
    plugins: [keepModuleUrls(dir)],
    logLevel: 'warning',
  });
}

try {
  await bundle('main', 'src/cli/main.ts', outdir);
  await bundle('quick', 'src/cli/quick.ts', join(outdir, 'quick'));
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

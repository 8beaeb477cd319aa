// The layering of src/ as rules over the real module graph (every folder,
// multi-line, type-only and dynamic imports). ARCHITECTURE.md explains the
// rooms; test/unit/architecture.test.ts runs these rules, so CI holds them.
/* eslint-disable */
const IO = '^(node:)?(fs|fs/promises|child_process|net|dgram|http|https|os|dns|tls|worker_threads|cluster)$|^(execa|lowdb|lowdb/node|commander|cron|pino|nodemailer)$';
const room = (name) => `^src/${name}/`;

module.exports = {
  forbidden: [
    {
      severity: 'error',
      name: 'pure-rooms-no-io',
      comment: 'model, core, parse, render and schema are pure: no I/O module, nothing with effects',
      from: { path: '^src/(model|core|parse|render|schema)/' },
      to: { path: IO },
    },
    {
      severity: 'error',
      name: 'pure-rooms-no-effectful-rooms',
      comment: 'the planner, parsers, renderers and schemas know no effects, loop, screen, lab or backend adapter',
      from: { path: '^src/(model|core|parse|render|schema)/' },
      to: { path: '^src/(system|engine|cli|lab|bench|probes|backends/[^/]+/adapter)' },
    },
    {
      severity: 'error',
      name: 'model-is-types',
      comment: 'types import nothing of logic (the schemas they are inferred from are definitions)',
      from: { path: room('model') },
      to: { path: '^src/', pathNot: '^src/(model|schema)/' },
    },
    {
      severity: 'error',
      name: 'config-verify-is-pure',
      comment: 'config: load reads one file; verification and checks are pure and reach no effects',
      from: { path: room('config') },
      to: { path: '^src/(system|engine|cli|lab|bench|backends|probes)/' },
    },
    {
      severity: 'error',
      name: 'config-only-load-reads-files',
      comment: 'load.ts reads and verifies the config file; peek.ts reads only where the daemon listens',
      from: { path: room('config'), pathNot: '^src/config/(load|peek)\\.ts$' },
      to: { path: IO },
    },
    {
      severity: 'error',
      name: 'only-exec-starts-processes',
      comment: 'every command goes through the Runner of src/system/exec.ts (argument arrays, never a shell)',
      from: { pathNot: '^src/system/exec\\.ts$' },
      to: { path: '^(node:)?child_process$|^execa$' },
    },
    {
      severity: 'error',
      name: 'system-knows-no-loop',
      comment: 'adapters know no loop, no commands, no lab',
      from: { path: room('system') },
      to: { path: '^src/(engine|cli|lab|bench|backends|probes)/' },
    },
    {
      severity: 'error',
      name: 'backends-and-probes-only-through-the-runner',
      comment: 'backends and probe methods issue commands through the injected Runner and open sockets through the injected ProbeSockets; they open nothing themselves',
      from: { path: '^src/(backends|probes)/' },
      to: { path: `${IO}|^src/(engine|cli|lab|bench)/|^src/system/(?!(exec|clock|probe-sockets)\\.ts$)` },
    },
    {
      severity: 'error',
      name: 'engine-knows-no-commands-or-lab',
      comment: 'the daemon knows no CLI commands; the product does not depend on its lab or bench',
      from: { path: room('engine') },
      to: { path: '^src/(cli|lab|bench)/' },
    },
    {
      severity: 'error',
      name: 'engine-effects-through-system',
      comment: 'the engine opens no socket, file or process itself: effects live behind src/system/',
      from: { path: room('engine') },
      to: { path: IO },
    },
    {
      severity: 'error',
      name: 'cli-knows-no-lab-internals',
      from: { path: room('cli'), pathNot: '^src/cli/commands/lab(-ha)?\\.ts$' },
      to: { path: '^src/(lab|bench)/' },
    },
    {
      severity: 'error',
      name: 'quick-door-loads-no-commander',
      comment: 'cli/quick.ts runs the daemon-answered commands (ha master|backup|fault too) without commander (start-up is failover time): it and what it loads use commander for types only',
      from: { path: '^src/cli/(quick|spec|context|exit|lazy-runner)\\.ts$|^src/cli/commands/(hook|status|pools|assign|ha)\\.ts$' },
      to: { path: '(^|/)commander(/|$)', dependencyTypesNot: ['type-only'] },
    },
    {
      severity: 'error',
      name: 'product-does-not-depend-on-bench',
      from: { path: '^src/', pathNot: '^src/bench/' },
      to: { path: room('bench') },
    },
    {
      severity: 'error',
      name: 'no-unresolvable',
      from: { path: '^src/' },
      comment: 'a relative import that leads nowhere (packages are checked by tsc)',
      to: { couldNotResolve: true, path: '^\\.' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: { path: '^src/|^node:|^[a-z@]' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'], conditionNames: ['import', 'node', 'default'] },
    moduleSystems: ['es6', 'cjs'],
    detectJSDocImports: false,
  },
};

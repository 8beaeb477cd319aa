// Preloaded with `node --require` by the no-shell test: wraps every way
// child_process can start a program, before any module of ours (or execa)
// is loaded, and appends one JSON line per start to $SPAWN_LOG. The test then
// proves from what actually ran that no shell was ever started.
'use strict';
const cp = require('node:child_process');
const { appendFileSync } = require('node:fs');

const log = process.env.SPAWN_LOG;
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) {
  const original = cp[name];
  cp[name] = function recorded(...params) {
    const [file, args, options] = params;
    const opts = Array.isArray(args) ? options : args;
    // exec/execSync always run their command through /bin/sh.
    const shell = name === 'exec' || name === 'execSync' || Boolean(opts && typeof opts === 'object' && opts.shell);
    appendFileSync(log, `${JSON.stringify({ fn: name, file, args: Array.isArray(args) ? args : [], shell })}\n`);
    return original.apply(this, params);
  };
}
require('node:module').syncBuiltinESMExports();

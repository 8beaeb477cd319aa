// Before the namespace suites: remove what a test or lab run that died
// without cleaning up (SIGKILL, a CI time-out) left behind, never a live
// run's (src/lab/leftovers.ts). Plain JavaScript on the built program:
// jest loads a project's global set-up outside its TypeScript transform.

import { cleanLeftovers } from '../dist/lab/leftovers.js';
import { ExecaRunner } from '../dist/system/exec.js';

export default async function removeLeftovers() {
  // Without root there are no namespaces of ours to remove (the suites that need root say so).
  if (process.getuid?.() !== 0) return;
  const removed = await cleanLeftovers(new ExecaRunner());
  for (const l of removed) process.stderr.write(`removed ${l.kind} ${l.name}, left by process ${l.owner}, which is gone\n`);
}

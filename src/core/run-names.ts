// Names of what a lab, a test or a doctor check creates outside itself
// (network namespaces, temporary directories): `dsp<tag>-<pid>-<n>-<rest>`.
// The tag says who made it, the pid which process owns it, n which of its
// runs. That is what lets a later run remove the leftovers of one that died
// without cleaning up (lab/leftovers.ts) and never touch a live one's.

const NAME = /^dsp([a-z]*)-([1-9][0-9]*)-./;
/** Process start times are known to 1/100 s; a thing made in its owner's first instant must not look older than it. */
const SLACK_MS = 20;

/** The prefix of a run's names: `dsp<tag>-<pid>-<n>-`. */
export function runName(tag: string, pid: number, n: number): string {
  if (!/^[a-z]*$/.test(tag)) throw new Error(`a run tag is lower-case letters, not "${tag}"`);
  return `dsp${tag}-${pid}-${n}-`;
}

/** The pid that owns a name, or null when the name is not one of ours. */
export function ownerOf(name: string): number | null {
  const match = NAME.exec(name);
  return match ? Number(match[2]) : null;
}

/**
 * Whether a thing made at `madeMs` by pid `owner` is left over: the owner is
 * gone (`ownerStartMs` null), or the process now holding its pid started
 * after the thing was made (pids are reused: pid_max is 32768 on many machines).
 */
export function isLeftover(madeMs: number, ownerStartMs: number | null): boolean {
  return ownerStartMs === null || ownerStartMs > madeMs + SLACK_MS;
}

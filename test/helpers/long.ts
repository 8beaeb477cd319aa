// The long versions of the reliability tests (`npm run test:long`) run with
// DISPATCHER_LONG=1; CI runs the same tests in a reduced form. One switch, so
// the reduced and the full run are the same code.

export const LONG = process.env.DISPATCHER_LONG === '1';

/** The full size in a long run, the reduced one otherwise. */
export function scale(reduced: number, full: number): number {
  return LONG ? full : reduced;
}

// Reads that may fail without root (`dispatcher plan`) and are then planned
// as empty: one helper, so every reader names what it could not read alike.

/**
 * For reads that may fail without root (`dispatcher plan`): `attempt(what,
 * read, fallback)` gives the read's value, or the fallback with `what` added
 * to `unreadable`, so the caller can say what it could not read.
 */
export function readsOrNames(unreadable: string[]): <T>(what: string, read: Promise<T>, fallback: T) => Promise<T> {
  return (what, read, fallback) =>
    read.catch(() => {
      unreadable.push(what);
      return fallback;
    });
}

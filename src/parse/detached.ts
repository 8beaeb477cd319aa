// Strings cut from a command's output that outlive it. V8 cuts a substring
// of 13 characters or more as a view into the string it came from, so one
// address kept from a 50,000-line read keeps its whole chunk of output alive
// (measured at 50,000 clients: 3 MB of `ip neigh` text held by the keys a
// whole read changed in the clients' map, 4 MB of `ipset save` text by a
// set's name).

/** Below this length V8 copies a substring instead of making a view. */
const VIEW_MIN = 13;

/**
 * A copy of `text` that holds nothing else alive: a join writes its parts
 * into one new flat string (a concatenation cut again would be a view into
 * the concatenation: twice the objects).
 */
export function detached(text: string): string {
  return text.length < VIEW_MIN ? text : [text.charAt(0), text.slice(1)].join('');
}

/**
 * One string per distinct value (interface names, set names, marks: a
 * handful of values on thousands of lines), each detached; past `max`
 * distinct values it starts afresh, so unexpected input cannot grow it.
 */
export function interner(max = 64): (text: string) => string {
  const seen = new Map<string, string>();
  return (text) => {
    let kept = seen.get(text);
    if (kept === undefined) {
      if (seen.size >= max) seen.clear();
      kept = detached(text);
      seen.set(kept, kept);
    }
    return kept;
  };
}

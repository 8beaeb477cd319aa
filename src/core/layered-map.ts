// A map that is never written once made, whose next version costs what
// changed, not its size: a base map shared by every version (never written)
// and a small top layer of the changes since the base. One client arriving
// among 50,000 makes a new assignments map and a new client map per run
// (model/state.ts); copying either took about 10 ms each on this machine.
//
// Each version remembers the version it was made from and which keys
// changed (its lineage), so what was derived from an older version (the
// client map, the client set's diff) can be carried forward by those keys
// alone: core/netfilter.ts, backends/iptables/diff.ts. The older version is
// held weakly: a long run of versions is not kept alive by the newest.

const ABSENT: unique symbol = Symbol('absent');

/** A version's origin: the version it was made from, and the keys set or deleted since. */
interface Lineage<K, V> {
  readonly from: WeakRef<LayeredMap<K, V>>;
  readonly keys: readonly K[];
}

/**
 * The top layer is folded into a new base once it holds more than this
 * share of the entries (or 1,024, whichever is more): each version copies
 * only its top layer, and the whole map is copied once per that many changes.
 */
const FOLD_SHARE = 1 / 16;
const FOLD_MIN = 1024;

/** Values are never undefined (a deletion is marked apart). */
export class LayeredMap<K, V> implements ReadonlyMap<K, V> {
  private constructor(
    private readonly base: ReadonlyMap<K, V>,
    private readonly top: ReadonlyMap<K, V | typeof ABSENT>,
    readonly size: number,
    private readonly lineage: Lineage<K, V> | null,
  ) {}

  /** `entries` as a layered map: a layered map is given back as it is, anything else is copied (its owner may write it again). */
  static of<K, V>(entries: ReadonlyMap<K, V> | Iterable<readonly [K, V]>): LayeredMap<K, V> {
    if (entries instanceof LayeredMap) return entries;
    const base = new Map<K, V>(entries as Iterable<readonly [K, V]>);
    return new LayeredMap(base, new Map(), base.size, null);
  }

  get(key: K): V | undefined {
    if (this.top.size === 0) return this.base.get(key);
    const value = this.top.get(key);
    if (value !== undefined) return value === ABSENT ? undefined : value;
    return this.base.get(key);
  }

  has(key: K): boolean {
    if (this.top.size === 0) return this.base.has(key);
    const value = this.top.get(key);
    if (value !== undefined) return value !== ABSENT;
    return this.base.has(key);
  }

  /** A draft of the next version; its done() gives this map back when nothing changed. */
  draft(): MapDraft<K, V> {
    return new MapDraft(this);
  }

  /**
   * The keys changed from `ancestor` to this version, when this version was
   * made from it within `maxSteps` versions (and they are still held) and
   * fewer than `maxKeys` keys changed; null otherwise (a caller then compares whole).
   */
  changedSince(ancestor: ReadonlyMap<K, V>, maxSteps: number, maxKeys: number): ReadonlySet<K> | null {
    const keys = new Set<K>();
    let version: LayeredMap<K, V> | undefined = this;
    for (let step = 0; step <= maxSteps && version !== undefined; step++) {
      if (version === ancestor) return keys;
      const lineage: Lineage<K, V> | null = version.lineage;
      if (lineage === null) return null;
      for (const key of lineage.keys) keys.add(key);
      if (keys.size > maxKeys) return null;
      version = lineage.from.deref();
    }
    return null;
  }

  /** Made by MapDraft.done(): the changes on this version's layers. */
  withChanges(changes: ReadonlyMap<K, V | typeof ABSENT>, size: number): LayeredMap<K, V> {
    const lineage = { from: new WeakRef<LayeredMap<K, V>>(this), keys: [...changes.keys()] };
    if (this.top.size + changes.size > Math.max(FOLD_MIN, size * FOLD_SHARE)) {
      // A native copy of the base, then the layers on it: about 5 ms at 50,000 entries here.
      const base = new Map<K, V>(this.base);
      for (const layer of [this.top, changes]) {
        for (const [key, value] of layer) {
          if (value === ABSENT) base.delete(key);
          else base.set(key, value);
        }
      }
      return new LayeredMap(base, new Map(), size, lineage);
    }
    const top = new Map(this.top);
    for (const [key, value] of changes) {
      // A key the base does not hold needs no tombstone once deleted.
      if (value === ABSENT && !this.base.has(key)) top.delete(key);
      else top.set(key, value);
    }
    return new LayeredMap(this.base, top, size, lineage);
  }

  // A version without a top layer (every one right after a fold) iterates its base natively: a generator costs
  // several times as much per entry, and whole derivations and writes walk 50,000 of them.
  entries(): MapIterator<[K, V]> {
    return this.top.size === 0 ? this.base.entries() : this.layered();
  }

  keys(): MapIterator<K> {
    return this.top.size === 0 ? this.base.keys() : this.layeredKeys();
  }

  values(): MapIterator<V> {
    return this.top.size === 0 ? this.base.values() : this.layeredValues();
  }

  private *layered(): MapIterator<[K, V]> {
    const top = this.top;
    for (const entry of this.base) if (!top.has(entry[0])) yield entry;
    for (const [key, value] of top) if (value !== ABSENT) yield [key, value];
  }

  private *layeredKeys(): MapIterator<K> {
    for (const [key] of this.layered()) yield key;
  }

  private *layeredValues(): MapIterator<V> {
    for (const [, value] of this.layered()) yield value;
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  forEach(callback: (value: V, key: K, map: ReadonlyMap<K, V>) => void, thisArg?: unknown): void {
    for (const [key, value] of this.entries()) callback.call(thisArg, value, key, this);
  }

  get [Symbol.toStringTag](): string {
    return 'LayeredMap';
  }
}

/** The next version being written: reads see the writes; done() makes the version. */
export class MapDraft<K, V> {
  private readonly changes = new Map<K, V | typeof ABSENT>();
  private count: number;

  constructor(private readonly from: LayeredMap<K, V>) {
    this.count = from.size;
  }

  get size(): number {
    return this.count;
  }

  get(key: K): V | undefined {
    const value = this.changes.get(key);
    if (value !== undefined) return value === ABSENT ? undefined : value;
    return this.from.get(key);
  }

  has(key: K): boolean {
    const value = this.changes.get(key);
    if (value !== undefined) return value !== ABSENT;
    return this.from.has(key);
  }

  set(key: K, value: V): this {
    if (!this.has(key)) this.count += 1;
    this.changes.set(key, value);
    return this;
  }

  delete(key: K): boolean {
    if (!this.has(key)) return false;
    this.count -= 1;
    this.changes.set(key, ABSENT);
    return true;
  }

  clear(): void {
    for (const key of this.from.keys()) this.changes.set(key, ABSENT);
    for (const [key, value] of this.changes) if (value !== ABSENT && !this.from.has(key)) this.changes.delete(key);
    this.count = 0;
  }

  /** The entries as written so far. */
  *entries(): MapIterator<[K, V]> {
    for (const entry of this.from) if (!this.changes.has(entry[0])) yield entry;
    for (const [key, value] of this.changes) if (value !== ABSENT) yield [key, value];
  }

  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries();
  }

  *values(): MapIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  /** Each key written so far, with its value before the draft and now (undefined: absent). */
  *changed(): Generator<[K, V | undefined, V | undefined]> {
    for (const [key, value] of this.changes) yield [key, this.from.get(key), value === ABSENT ? undefined : value];
  }

  /** The new version (the map drafted from when nothing was written). */
  done(): LayeredMap<K, V> {
    return this.changes.size === 0 ? this.from : this.from.withChanges(this.changes, this.count);
  }
}

/**
 * What `whole` derives from a map (and a context), kept for the last map
 * asked about and carried forward to a later version of it by the keys that
 * changed (`carry`), when it is a few versions and changes on
 * (LayeredMap.changedSince). `key` names the context: another key derives whole.
 */
export class Derivation<K, V, D, C = undefined> {
  private last: { readonly map: ReadonlyMap<K, V>; readonly key: string; readonly value: D } | null = null;

  constructor(
    private readonly whole: (map: ReadonlyMap<K, V>, context: C) => D,
    private readonly carry: (value: D, keys: ReadonlySet<K>, before: ReadonlyMap<K, V>, after: ReadonlyMap<K, V>, context: C) => D,
  ) {}

  of(map: ReadonlyMap<K, V>, ...[key, context]: C extends undefined ? [key?: string, context?: C] : [key: string, context: C]): D {
    const name = key ?? '';
    const last = this.last;
    if (last?.map === map && last.key === name) return last.value;
    const keys = last?.key === name ? changedKeys(map, last.map) : null;
    const value = last && keys ? this.carry(last.value, keys, last.map, map, context as C) : this.whole(map, context as C);
    this.last = { map, key: name, value };
    return value;
  }
}

/** How many versions back a derivation is carried from (a run makes one or two: an operator's edit, the assignment). */
const CARRY_STEPS = 8;

/**
 * Beyond this share of the entries changed, carrying is no cheaper than
 * deriving whole. (A run that adds 15,000 clients of a burst makes such a
 * version; the next run, one client, is carried from it.)
 */
const CARRY_SHARE = 1 / 2;

/** The keys changed from `before` to `after` when `after` is a later version of it, a few versions and fewer than half its entries on; null: compare them whole. */
export function changedKeys<K, V>(after: ReadonlyMap<K, V>, before: ReadonlyMap<K, V>): ReadonlySet<K> | null {
  return after instanceof LayeredMap ? after.changedSince(before, CARRY_STEPS, Math.max(FOLD_MIN, after.size * CARRY_SHARE)) : null;
}

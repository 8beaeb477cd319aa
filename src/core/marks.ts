// The mark layout: one configurable mask whose set bits are split into two
// fields (iptables/README.md, "Marks"):
//   pool field (lower half of the bits): the pool the client belongs to;
//   conn field (upper half):             the uplink a connection actually uses,
//                                        kept in the connmark.
// A field value of 0 means "none", so uplink index i is stored as i + 1 and a
// field of b bits holds at most 2^b - 1 uplinks. The mask need not be
// contiguous: values are deposited into the mask's bits from the lowest up.

export interface MarkLayout {
  readonly mask: number;
  readonly poolMask: number;
  readonly connMask: number;
  /** How many uplinks fit in the narrower field. */
  readonly capacity: number;
}

function setBits(mask: number): number[] {
  const bits: number[] = [];
  for (let bit = 0; bit < 32; bit++) if ((mask >>> bit) & 1) bits.push(bit);
  return bits;
}

function maskFromBits(bits: number[]): number {
  return bits.reduce((mask, bit) => (mask | (1 << bit)) >>> 0, 0);
}

export function markLayout(mask: number): MarkLayout {
  const bits = setBits(mask >>> 0);
  const half = Math.floor(bits.length / 2);
  const poolBits = bits.slice(0, bits.length - half);
  const connBits = bits.slice(bits.length - half);
  return {
    mask: mask >>> 0,
    poolMask: maskFromBits(poolBits),
    connMask: maskFromBits(connBits),
    capacity: Math.max(0, 2 ** Math.min(poolBits.length, connBits.length) - 1),
  };
}

/** Spreads the bits of `value` over the set bits of `fieldMask`, lowest first. */
export function deposit(value: number, fieldMask: number): number {
  let result = 0;
  let source = value;
  for (const bit of setBits(fieldMask)) {
    if (source & 1) result = (result | (1 << bit)) >>> 0;
    source = Math.floor(source / 2);
  }
  if (source !== 0) throw new RangeError(`value ${value} does not fit in mask ${hex(fieldMask)}`);
  return result;
}

/** Inverse of deposit: gathers the field's bits back into a small number. */
export function extract(mark: number, fieldMask: number): number {
  let value = 0;
  let weight = 1;
  for (const bit of setBits(fieldMask)) {
    if ((mark >>> bit) & 1) value += weight;
    weight *= 2;
  }
  return value;
}

export function poolMark(layout: MarkLayout, uplinkIndex: number): number {
  return deposit(uplinkIndex + 1, layout.poolMask);
}

export function connMark(layout: MarkLayout, uplinkIndex: number): number {
  return deposit(uplinkIndex + 1, layout.connMask);
}

/** Hex the way iptables-save, ipset and ip print marks: 0x-prefixed, no padding. */
export function hex(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

/** Reads "0x…" or decimal mark text; null when it is not a 32-bit value. */
export function parseMark(text: string): number | null {
  const value = /^0x[0-9a-f]{1,8}$/i.test(text) ? parseInt(text.slice(2), 16) : /^[0-9]{1,10}$/.test(text) ? Number(text) : NaN;
  return Number.isInteger(value) && value >= 0 && value <= 0xffffffff ? value : null;
}

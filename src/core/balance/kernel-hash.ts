// The kernel's own hashes (pure), so `dispatcher explain IP --to DEST` can say
// which bucket — and so which line — a client's connections to a destination
// take in the destination mode, without sending anything. Both are Bob
// Jenkins' lookup3 hash as the kernel implements it (include/linux/jhash.h):
//   iptables HMARK (net/netfilter/xt_HMARK.c): jhash_3words(lower address,
//     higher address, ports, seed) — the addresses in host order, sorted so
//     both directions hash alike; the ports are 0 when not hashed;
//   nftables jhash (net/netfilter/nft_hash.c): jhash over the concatenated
//     registers (each field in its own 32-bit register, network byte order,
//     read as little-endian words on x86).
// Each is scaled to the buckets with reciprocal_scale: (hash × n) >> 32.
// test/integration/balance.test.ts holds them equal to what the kernel does.

const INITVAL = 0xdeadbeef;

const rol = (x: number, k: number): number => ((x << k) | (x >>> (32 - k))) >>> 0;

/** The three words of the hash's state, [a, b, c]: a Uint32Array wraps every step to 32 bits, as the kernel's u32 does. */
type State = Uint32Array;

/** __jhash_mix: six rounds of x -= y; x ^= rol(y, k); y += z, over the words in turn. */
function mix(h: State): void {
  const round = (x: 0 | 1 | 2, y: 0 | 1 | 2, z: 0 | 1 | 2, k: number): void => {
    h[x] = (h[x] as number) - (h[y] as number);
    h[x] = (h[x] as number) ^ rol(h[y] as number, k);
    h[y] = (h[y] as number) + (h[z] as number);
  };
  round(0, 2, 1, 4);
  round(1, 0, 2, 6);
  round(2, 1, 0, 8);
  round(0, 2, 1, 16);
  round(1, 0, 2, 19);
  round(2, 1, 0, 4);
}

/** __jhash_final: returns c. */
function final(h: State): number {
  const step = (x: 0 | 1 | 2, y: 0 | 1 | 2, k: number): void => {
    h[x] = (h[x] as number) ^ (h[y] as number);
    h[x] = (h[x] as number) - rol(h[y] as number, k);
  };
  step(2, 1, 14);
  step(0, 2, 11);
  step(1, 0, 25);
  step(2, 1, 16);
  step(0, 2, 4);
  step(1, 0, 14);
  step(2, 1, 24);
  return h[2] as number;
}

/** jhash(): the bytes read as little-endian 32-bit words, the tail byte by byte. */
export function jhash(bytes: Uint8Array, seed: number): number {
  const h: State = new Uint32Array(3).fill((INITVAL + bytes.length + seed) >>> 0);
  // Bytes past the end count as 0, as the kernel's fall-through switch adds only those present.
  const word = (at: number, end: number): number => {
    const byte = (i: number): number => (at + i < end ? (bytes[at + i] as number) : 0);
    return (byte(0) | (byte(1) << 8) | (byte(2) << 16) | (byte(3) << 24)) >>> 0;
  };
  let k = 0;
  for (; bytes.length - k > 12; k += 12) {
    for (const i of [0, 1, 2] as const) h[i] = (h[i] as number) + word(k + 4 * i, bytes.length);
    mix(h);
  }
  if (bytes.length - k === 0) return h[2] as number;
  for (const i of [0, 1, 2] as const) h[i] = (h[i] as number) + word(k + 4 * i, bytes.length);
  return final(h);
}

/** jhash_3words(). */
function jhash3(a: number, b: number, c: number, seed: number): number {
  const init = (seed + INITVAL + (3 << 2)) >>> 0;
  return final(Uint32Array.from([a + init, b + init, c + init]));
}

/** reciprocal_scale(): a 32-bit hash into 0 … n − 1. */
export function reciprocalScale(hash: number, n: number): number {
  return Number((BigInt(hash >>> 0) * BigInt(n)) >> 32n);
}

/** An IPv4 address as its number (host order). */
const numeric = (address: number): number => address >>> 0;

/** The bucket iptables' HMARK gives a packet from `source` to `destination`, addresses only (destination mode). */
export function hmarkAddressBucket(source: number, destination: number, seed: number, buckets: number): number {
  const [low, high] = numeric(source) <= numeric(destination) ? [source, destination] : [destination, source];
  return reciprocalScale(jhash3(numeric(low), numeric(high), 0, seed), buckets);
}

/** The bucket nftables' `jhash ip saddr . ip daddr` gives the same packet. */
export function nftAddressBucket(source: number, destination: number, seed: number, buckets: number): number {
  const bytes = new Uint8Array(8);
  new DataView(bytes.buffer).setUint32(0, numeric(source));
  new DataView(bytes.buffer).setUint32(4, numeric(destination));
  return reciprocalScale(jhash(bytes, seed), buckets);
}

// How a fake tool fails: the exit code and stderr the real tool gives for the
// same mistake (measured in a scratch namespace, iproute2 6.1, iptables
// 1.8.9 nf_tables, ipset 7.17, conntrack 1.4.7). FakeKernel turns it into the
// CommandError (or the tolerated result) the real runner would produce.

export class ToolFailure extends Error {
  constructor(
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(stderr.trim());
    this.name = 'ToolFailure';
  }
}

/** An IPv4 address as a number, or null when it is not one. */
export function ipv4(text: string): number | null {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^[0-9]{1,3}$/.test(p) || Number(p) > 255)) return null;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** "a.b.c.d/len" (or a bare address, /32) as [network number, prefix length]; null when not a prefix. */
export function prefix(text: string): [number, number] | null {
  const [address, length = '32'] = text === 'default' ? ['0.0.0.0', '0'] : text.split('/');
  const n = ipv4(address ?? '');
  const len = Number(length);
  if (n === null || !/^[0-9]{1,2}$/.test(length) || len > 32) return null;
  return [n, len];
}

export function contains(net: string, address: string): boolean {
  const p = prefix(net);
  const a = ipv4(address);
  if (!p || a === null) return false;
  const mask = p[1] === 0 ? 0 : (0xffffffff << (32 - p[1])) >>> 0;
  return (p[0] & mask) >>> 0 === (a & mask) >>> 0;
}

/** A mark or mask as lowercase hex, as the tools print them. */
export function hexOf(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}

/** A number as the tools accept it (decimal or 0x hex); null when it is not one. */
export function parseNumber(text: string): number | null {
  if (/^0x[0-9a-f]+$/i.test(text)) return Number.parseInt(text.slice(2), 16);
  if (/^[0-9]+$/.test(text)) return Number(text);
  return null;
}

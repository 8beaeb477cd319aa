// Reading an uplink's public address from the answer of a "what is my
// address" URL. The answer comes from the internet, so it is untrusted: it is
// published in DNS only if it is one IPv4 address that could be ours on the
// internet (not private, shared, loopback, link-local or reserved).

import { cidrContains, formatIpv4, isUnicastHost, parseCidr, parseIpv4, type Cidr } from './ipv4.js';
import { excerpt } from './names.js';

/** Addresses that are never an uplink's public address: behind them sits yet another NAT. */
const NOT_PUBLIC: readonly Cidr[] = ['10.0.0.0/8', '100.64.0.0/10', '172.16.0.0/12', '192.168.0.0/16'].map((text) => parseCidr(text) as Cidr);

export type AddressAnswer = { readonly address: string } | { readonly error: string };

/** The public address in a URL's answer: the whole body (surrounding space ignored), or `field` of its JSON. */
export function readPublicAddress(body: string, field?: string): AddressAnswer {
  let text = body.trim();
  if (field !== undefined) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return { error: `the answer is not JSON: ${excerpt(text)}` };
    }
    const value = typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>)[field] : undefined;
    if (typeof value !== 'string') return { error: `the answer has no text field "${field}": ${excerpt(text)}` };
    text = value.trim();
  }
  const address = parseIpv4(text);
  if (address === null) return { error: `the answer is not an IPv4 address: ${excerpt(text)}` };
  if (!isUnicastHost(address) || NOT_PUBLIC.some((cidr) => cidrContains(cidr, address))) {
    return { error: `${formatIpv4(address)} is not a public address (private, shared, loopback or reserved)` };
  }
  return { address: formatIpv4(address) };
}

// Shapes of the names that reach the kernel or the store. Interface names go
// into iptables arguments, ip commands and sysctl keys, so anything beyond the
// characters Linux itself accepts in practice is refused (no '+', which
// iptables reads as a wildcard, no '/', no spaces, at most 15 bytes). Text
// that fails such checks is shown in messages through excerpt().

export const INTERFACE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;

/** Uplink names: used in CLI arguments, JSON and environment variables. */
export const UPLINK_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,31}$/;

export function isInterfaceName(text: string): boolean {
  return INTERFACE_NAME.test(text) && text !== '.' && text !== '..';
}

export function isUplinkName(text: string): boolean {
  return UPLINK_NAME.test(text);
}

/** Untrusted text for a message: JSON-quoted (control characters escaped) and cut to 40 characters. */
export function excerpt(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);
}

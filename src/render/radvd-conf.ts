// The router advertisements of IPv6 prefix mode, as radvd's config file
// (src/system/radvd.ts runs radvd with it and reloads it on every change).
// Pure. A deprecated prefix keeps its valid lifetime (hosts keep their
// addresses, and whatever still works on them) with a preferred lifetime of
// 0, so hosts choose another prefix for new connections (RFC 8475);
// DeprecatePrefix makes radvd's last advertisement, when flush stops it, do
// the same for every prefix. Advertisements every 10–30 s (radvd's default
// is up to 600 s): a host that missed the one sent at a change hears the
// next soon; router lifetime is radvd's default, three times that: hosts
// drop the gateway as their router 90 s after radvd is killed (the service
// unit's stop or restart), at once after radvd is stopped (flush).

import type { Announcement } from '../model/plan.js';

/** Hosts prefer a live line's addresses for 4 hours and keep them a day (radvd's defaults), refreshed by every advertisement. */
const PREFERRED_SECONDS = 14_400;
const VALID_SECONDS = 86_400;

export function radvdConf(announcement: Announcement): string {
  const prefixes = announcement.prefixes.flatMap(({ uplink, prefix, preferred }) => [
    `  # ${uplink}: ${preferred ? 'carries IPv6' : 'does not carry IPv6 (deprecated)'}`,
    `  prefix ${prefix} {`,
    '    AdvOnLink on;',
    '    AdvAutonomous on;',
    `    AdvValidLifetime ${VALID_SECONDS};`,
    `    AdvPreferredLifetime ${preferred ? PREFERRED_SECONDS : 0};`,
    '    DeprecatePrefix on;',
    '  };',
  ]);
  return [
    '# Written by dispatcher (lan.ipv6.mode: prefix) at every change of the lines; edits are overwritten.',
    `interface ${announcement.interface} {`,
    '  AdvSendAdvert on;',
    '  MinRtrAdvInterval 10;',
    '  MaxRtrAdvInterval 30;',
    ...prefixes,
    '};',
    '',
  ].join('\n');
}

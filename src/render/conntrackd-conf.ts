// conntrackd's config for one gateway of a pair (`dispatcher ha render`;
// pure): FTFW over the dedicated sync link (reliable: lost messages are sent
// again), the external cache kept (the backup holds the master's connections
// apart from its own kernel until a takeover commits them, conntrackd -c),
// and every runtime path under the dispatcher's state directory, so that two
// gateways of a lab on one host do not share a lock, socket or log.
// Connections to and from the gateways themselves (the sync link, loopback,
// the shared addresses' own services) are not synced: each has its own.

import type { Config } from '../model/config.js';

/** conntrackd's default port for the sync messages (UDP, on the sync link only). */
export const CONNTRACKD_PORT = 3780;

/** Where a pair's runtime files live: under the dispatcher's state directory. */
export function haRuntimeDir(state: string): string {
  return `${state.replace(/\/+$/, '')}/ha`;
}

export function conntrackdPaths(state: string): { lock: string; socket: string; log: string } {
  const dir = haRuntimeDir(state);
  return { lock: `${dir}/conntrackd.lock`, socket: `${dir}/conntrackd.ctl`, log: `${dir}/conntrackd.log` };
}

/** `ownAddress`: this gateway's IPv4 address on the sync link (read from the interface when rendering). */
export function conntrackdConf(config: Config, ownAddress: string): string {
  const ha = config.ha;
  if (!ha) throw new Error('conntrackdConf: the config has no ha section');
  const paths = conntrackdPaths(config.state);
  const shared = [ha.lanAddress.address, ...config.uplinks.flatMap((u) => (u.haAddress ? [u.haAddress.address] : []))];
  const ignored = ['127.0.0.1', ownAddress, ha.peer, ...shared];
  return [
    '# Written by `dispatcher ha render`; edits are overwritten. Run: conntrackd -C <this file>',
    'Sync {',
    '    Mode FTFW {',
    // The backup keeps what the master sends apart (the external cache) until a takeover commits it.
    '        DisableExternalCache off',
    '        CommitTimeout 1800',
    '        PurgeTimeout 5',
    '    }',
    '    UDP {',
    `        IPv4_address ${ownAddress}`,
    `        IPv4_Destination_Address ${ha.peer}`,
    `        Port ${CONNTRACKD_PORT}`,
    `        Interface ${ha.interface}`,
    '        SndSocketBuffer 1249280',
    '        RcvSocketBuffer 1249280',
    '        Checksum on',
    '    }',
    '}',
    'General {',
    '    HashSize 32768',
    '    HashLimit 131072',
    `    LogFile ${paths.log}`,
    '    Syslog off',
    `    LockFile ${paths.lock}`,
    '    UNIX {',
    `        Path ${paths.socket}`,
    '    }',
    '    NetlinkBufferSize 2097152',
    '    NetlinkBufferSizeMaxGrowth 8388608',
    '    Filter From Userspace {',
    '        Protocol Accept {',
    '            TCP',
    '            UDP',
    '            ICMP',
    '        }',
    '        Address Ignore {',
    ...[...new Set(ignored)].map((address) => `            IPv4_address ${address}`),
    '        }',
    '    }',
    '}',
    '',
  ].join('\n');
}

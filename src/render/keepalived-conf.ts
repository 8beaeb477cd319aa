// keepalived's config for one gateway of a pair (`dispatcher ha render`;
// pure): one VRRP instance on the LAN holding the clients' gateway address
// and every line's shared address, so the LAN side and the lines move
// together. VRRP speaks on the LAN itself, never on the sync link: a cut sync
// link leaves one master (the LAN decides), never two.
//
// keepalived adds the addresses before it runs the notify script and never
// waits for it (keepalived issues #2254, #2414), so the new master's kernel
// would meet the moved connections before conntrackd has committed them and
// answer them with resets. The dispatcher keeps a fence (model/plan.ts
// FenceIntent: a prerouting chain that drops before conntrack confirms an
// entry) while it is not master and lifts it only after the commit
// (`dispatcher ha master`); this file only starts that.

import type { Config } from '../model/config.js';

/** VRRPv3 adverts every 200 ms: a dead master is noticed after about 3 adverts and the skew, under 1 s. */
export const ADVERT_SECONDS = 0.2;

/**
 * With preempt: a gateway that comes back waits this long before it takes
 * the role back, so the state channel has sent it the master's clients
 * (within a second of its dispatcher starting) and the failback moves no one.
 */
export const PREEMPT_DELAY_SECONDS = 5;

/** `notify`: the notify script's absolute path (keepalived passes it "INSTANCE" NAME STATE PRIORITY). */
export function keepalivedConf(config: Config, notify: string): string {
  const ha = config.ha;
  if (!ha) throw new Error('keepalivedConf: the config has no ha section');
  const lan = config.lan.interfaces[0] as string;
  const addresses = [`${ha.lanAddress.address}/${ha.lanAddress.prefix} dev ${lan}`, ...config.uplinks.flatMap((u) => (u.haAddress ? [`${u.haAddress.address}/${u.haAddress.prefix} dev ${u.interface}`] : []))];
  return [
    '# Written by `dispatcher ha render`; edits are overwritten.',
    '# Run: keepalived -n -f <this file> -p <dir>/keepalived.pid -r <dir>/vrrp.pid -c <dir>/checkers.pid',
    'global_defs {',
    `    router_id dispatcher-${ha.routerId}-${ha.priority}`,
    '    vrrp_version 3',
    // The notify script runs as root; keepalived checks that no one else can change it or its directories.
    '    script_user root',
    '    enable_script_security',
    // Switches and clients learn the new master's MAC from these at once, and again a second later.
    '    vrrp_garp_master_delay 1',
    '    vrrp_garp_master_repeat 3',
    '}',
    '',
    'vrrp_instance dispatcher {',
    // Both start as backup: the priorities (and preempt) decide, never the order they start in.
    '    state BACKUP',
    `    interface ${lan}`,
    `    virtual_router_id ${ha.routerId}`,
    `    priority ${ha.priority}`,
    `    advert_int ${ADVERT_SECONDS}`,
    ...(ha.preempt ? [`    preempt_delay ${PREEMPT_DELAY_SECONDS}`] : ['    nopreempt']),
    '    virtual_ipaddress {',
    ...addresses.map((line) => `        ${line}`),
    '    }',
    `    notify ${notify}`,
    '}',
    '',
  ].join('\n');
}

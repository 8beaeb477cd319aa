// The netfilter intent (pure): what the packet filter must do for this config,
// these uplinks and these assignments, in no tool's words. A backend
// (src/backends/) spells it in its own tool's language.

import type { Config } from '../model/config.js';
import type { NetfilterIntent } from '../model/plan.js';
import type { Assignments, UplinkView } from '../model/state.js';
import { planChoose } from './balance/policies.js';
import { planSpread } from './balance/spread.js';
import { uplinkGroup } from './contract.js';
import { connMark, markLayout, poolMark } from './marks.js';

export function planNetfilter(config: Config, uplinks: readonly UplinkView[], assignments: Assignments): NetfilterIntent {
  const layout = markLayout(config.marks.mask);
  const poolMarks = new Map(uplinks.map((u) => [u.name, poolMark(layout, u.index)]));
  const clients = new Map<string, number>();
  for (const [ip, record] of assignments) {
    const mark = poolMarks.get(record.uplink);
    if (mark !== undefined) clients.set(ip, mark);
  }
  return {
    connMask: layout.connMask,
    poolMask: layout.poolMask,
    lans: config.lan.interfaces,
    uplinks: uplinks.map((u) => ({ name: u.name, interface: u.interface, connMark: connMark(layout, u.index), poolMark: poolMark(layout, u.index), group: uplinkGroup(config, u.index) })),
    clients,
    maxClients: config.clients.max,
    choose: planChoose(config, assignments),
    spread: planSpread(config, uplinks),
  };
}

// An uplink as a run sees it (UplinkView), for tests of the pure planner: up
// with an address and a gateway on a plain (not point-to-point) link, tier 1,
// weight 1, unless the test says otherwise.

import type { UplinkView } from '../../src/model/state.js';

export function uplinkView(name: string, index: number, iface: string, over: Partial<UplinkView> = {}): UplinkView {
  const state = over.state ?? 'up';
  return {
    name,
    index,
    interface: iface,
    weight: 1,
    tier: 1,
    state,
    reason: state,
    present: true,
    address: `192.0.2.${10 + index}`,
    gateway: `198.51.100.${4 * index + 1}`,
    pointToPoint: false,
    ...over,
  };
}

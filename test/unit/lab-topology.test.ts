// The dual-stack lab's topology and the config it runs with
// (pools/lab-dual-stack.yaml) must describe the same lines: each line's
// IPv6 next hop, delegated prefix and probe target in the config are the
// ones the topology builds. The namespace test (lab.test.ts) runs them.

import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { parseConfig } from '../../src/config/load.js';
import { DEFAULT_UPLINKS, describeTopology } from '../../src/lab/topology.js';
import { uplinkByAddress6 } from '../../src/lab/harness.js';

const config = parseConfig(readFileSync(new URL('../../pools/lab-dual-stack.yaml', import.meta.url), 'utf8'), 'lab-dual-stack.yaml');
const topo = describeTopology({ prefix: 'dsplabt-1-1-', clients: 2, uplinks: DEFAULT_UPLINKS, ipv6: true });

describe('the dual-stack lab', () => {
  test('its config is the IPv4 lab in IPv6 nat mode, on the LAN prefix the lab announces', () => {
    expect(config.lan.ipv6).toEqual({ mode: 'nat', prefix: topo.ipv6?.lanPrefix });
    expect(config.uplinks.map((u) => u.interface)).toEqual(topo.uplinks.map((u) => u.interface));
  });

  test("each line's IPv6 in the config is what the topology builds: point-to-point lines with the ISP's link-local next hop and a delegated prefix, the ethernet line discovering and masquerading", () => {
    topo.uplinks.forEach((u, i) => {
      const ipv6 = config.uplinks[i]?.ipv6;
      expect(ipv6?.prefix).toBe(u.ipv6?.prefix);
      expect(ipv6?.gateway).toBe(u.pointToPoint ? u.ipv6?.gateway : null);
      expect(ipv6?.targets).toEqual([u.ipv6?.core]);
    });
  });

  test("an address seen at the internet host names its line: inside a delegated prefix, or a masquerading line's own", () => {
    expect(uplinkByAddress6(topo, '2001:db8:1:100::a')).toBe('isp1');
    expect(uplinkByAddress6(topo, '2001:db8:2:100:1:2:3:4')).toBe('isp2');
    expect(uplinkByAddress6(topo, '2001:db8:3::2')).toBe('isp3');
    expect(uplinkByAddress6(topo, '2001:db8:3::5')).toBeUndefined();
  });

  test('without --ipv6 the lab has no IPv6 at all', () => {
    const plain = describeTopology({ prefix: 'dsplabt-1-1-', clients: 2, uplinks: DEFAULT_UPLINKS });
    expect(plain.ipv6).toBeNull();
    expect(plain.uplinks.some((u) => u.ipv6 !== undefined)).toBe(false);
  });
});

// Config versus other software already in the kernel: collisions refuse the
// config (start and reload), our own objects never count.

import { describe, expect, test } from '@jest/globals';
import { markBitsOf } from '../../src/backends/iptables/collisions.js';
import { routingCollisions } from '../../src/core/collisions.js';
import type { Config } from '../../src/model/config.js';
import type { ConfigProblem } from '../../src/model/errors.js';
import type { IpRule } from '../../src/model/kernel.js';
import { parseIptablesSave } from '../../src/parse/iptables-save.js';
import { backend, capturedKernel, labConfig, netfilterOf, pristineKernel } from '../helpers/scenario.js';
import type { KernelState } from '../helpers/scenario.js';

/** What start and reload refuse: the shared checks, then the backend's, in that order (engine/daemon.ts). */
function kernelCollisions(config: Config, kernel: KernelState): ConfigProblem[] {
  return [...routingCollisions(config, kernel), ...backend.collisions(config, netfilterOf(kernel))];
}

const rule = (r: Partial<IpRule> & { priority: number }): IpRule => ({ src: 'all', table: '100', ...r });
const withRules = (kernel: KernelState, ...rules: IpRule[]): KernelState => ({ ...kernel, rules: [...kernel.rules, ...rules] });

describe('mark bits a rule uses', () => {
  test('targets and matches with value/mask, bare values and mask options', () => {
    expect(markBitsOf(['-j', 'MARK', '--set-xmark', '0x100/0x3f00'])).toBe(0x3f00);
    expect(markBitsOf(['-m', 'mark', '--mark', '0x40000/0xff0000', '-j', 'ACCEPT'])).toBe(0xff0000);
    expect(markBitsOf(['-j', 'CONNMARK', '--restore-mark', '--nfmask', '0x3f00', '--ctmask', '0x3f00'])).toBe(0x3f00);
    expect(markBitsOf(['-j', 'MARK', '--set-mark', '1'])).toBe(0xffffffff);
    expect(markBitsOf(['-p', 'udp', '--dport', '53', '-j', 'ACCEPT'])).toBe(0);
  });
});

describe('kernel collisions', () => {
  test('our own programming (a restart) and a foreign-free gateway are fine', () => {
    expect(kernelCollisions(labConfig, capturedKernel())).toEqual([]);
    expect(kernelCollisions(labConfig, pristineKernel())).toEqual([]);
  });

  test("mwan3's 0x3f00 and Tailscale's 0xff0000 do not collide with the default mask", () => {
    const kernel = withRules(pristineKernel(), rule({ priority: 2001, fwmark: 0x100, fwmask: 0x3f00, table: '1' }), rule({ priority: 5210, fwmark: 0x80000, fwmask: 0xff0000, table: 'main' }));
    const netfilter = parseIptablesSave('*mangle\n:PREROUTING ACCEPT [0:0]\n:mwan3_hook - [0:0]\n-A PREROUTING -j mwan3_hook\n-A mwan3_hook -j CONNMARK --restore-mark --nfmask 0x3f00 --ctmask 0x3f00\nCOMMIT\n');
    expect(kernelCollisions(labConfig, { ...kernel, netfilter })).toEqual([]);
  });

  test('a foreign rule in our priorities, one looking up our tables, and one testing our mark bits are each named', () => {
    const kernel = withRules(pristineKernel(), rule({ priority: 4150, table: 'main' }), rule({ priority: 900, table: '3105' }), rule({ priority: 901, fwmark: 0x1000000, fwmask: 0xff000000, table: '7' }));
    const problems = kernelCollisions(labConfig, kernel);
    expect(problems.map((p) => p.field)).toEqual(['rules.priority', 'tables.base', 'marks.mask']);
    expect(problems[0]?.problem).toMatch(/ip rule 4150 .* sits in our priorities 4100–4199/);
    expect(problems[1]?.problem).toMatch(/looks up table 3105, inside our tables 3100–3199/);
    expect(problems[2]?.problem).toMatch(/tests mark bits 0xff000000 inside marks.mask 0xff000000/);
  });

  test('foreign routes in our tables and foreign MARK rules on our bits', () => {
    const base = pristineKernel();
    const route = { table: '3150', dst: 'default', type: 'unicast', protocol: 'static', nexthops: [{ gateway: '192.0.2.1', dev: 'ppp0', weight: 1, onlink: false }], linkdown: false };
    const netfilter = parseIptablesSave('*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i lan0 -j MARK --set-xmark 0x1000000/0x1000000\nCOMMIT\n');
    const problems = kernelCollisions(labConfig, { ...base, routes: [...base.routes, route], netfilter });
    expect(problems.map((p) => p.field)).toEqual(['tables.base', 'marks.mask']);
    expect(problems[1]?.problem).toMatch(/-t mangle -A PREROUTING -i lan0 -j MARK --set-xmark 0x1000000\/0x1000000" of other software uses mark bits 0x1000000/);
  });
});

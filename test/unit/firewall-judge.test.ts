// The firewall judge on the rule sets ufw and firewalld generate (test/fixtures/firewalls,
// captured from a namespace that loaded them), hand-written nftables rule sets and shapes
// it cannot judge. The namespace suite (test/integration/firewall.test.ts) checks the
// verdicts against the kernel's own.

import { describe, expect, test } from '@jest/globals';
import { firewallFindings, firewallForClient, type FirewallScope } from '../../src/core/firewall/findings.js';
import { ruleSets, type FirewallFacts } from '../../src/parse/firewall/rule-sets.js';
import type { Finding } from '../../src/core/finding.js';
import { fixture } from '../helpers/fixtures.js';
import { labConfig } from '../helpers/scenario.js';

const scope: FirewallScope = { config: labConfig, lan: labConfig.lan.subnets, uplinkAddresses: { isp1: '192.0.2.2', isp2: '192.0.2.6', isp3: '192.0.2.10' } };

function facts(over: Partial<FirewallFacts>): FirewallFacts {
  return { iptablesSave: null, iptablesError: null, iptablesKind: 'nf_tables', nftRuleset: null, nftError: null, ...over };
}

/** A ruleset as `nft -j list ruleset` prints it, from chains written as [chain, hook?, policy?, rules as expr arrays]. */
function nft(table: string, chains: { name: string; hook?: 'forward' | 'input'; policy?: 'accept' | 'drop'; rules: unknown[][] }[]): string {
  const [family, name] = table.split(' ');
  const items: unknown[] = [{ table: { family, name, handle: 1 } }];
  for (const chain of chains) {
    items.push({ chain: { family, table: name, name: chain.name, ...(chain.hook ? { type: 'filter', hook: chain.hook, prio: 0, policy: chain.policy ?? 'accept' } : {}) } });
    for (const expr of chain.rules) items.push({ rule: { family, table: name, chain: chain.name, expr } });
  }
  return JSON.stringify({ nftables: items });
}

const match = (left: unknown, right: unknown, op = '=='): unknown => ({ match: { op, left, right } });
const meta = (key: string): unknown => ({ meta: { key } });
const ctState = (states: string[]): unknown => match({ ct: { key: 'state' } }, { set: states });
const ACCEPT = { accept: null };

function judge(over: Partial<FirewallFacts>): Finding[] {
  return firewallFindings(ruleSets(facts(over)), scope);
}
const byCheck = (findings: readonly Finding[], check: string): Finding[] => findings.filter((f) => f.check === check);
const severities = (findings: readonly Finding[], check: string): string[] => [...new Set(byCheck(findings, check).map((f) => f.severity))];

const withUfwRoutes = (): string => {
  const routes = fixture('firewalls/ufw-route-allow.rules')
    .split('\n')
    .filter((l) => l.startsWith('-A'));
  return fixture('firewalls/ufw-enabled.rules').replace(/^COMMIT$/m, `${routes.join('\n')}\nCOMMIT`);
};

describe('ufw (iptables filter with ufw chains)', () => {
  test('ufw enabled with its default routed policy: new connections fail with the ufw route command for every pair; replies and probe answers pass', () => {
    const findings = judge({ iptablesSave: fixture('firewalls/ufw-enabled.rules') });
    const [forward] = byCheck(findings, 'firewall:forward');
    expect(forward?.severity).toBe('fail');
    expect(forward?.summary).toContain('lan0 → ppp0, ppp1, wan0');
    expect(forward?.summary).toContain('policy drop of iptables filter FORWARD');
    expect(forward?.fix).toContain('ufw route allow in on lan0 out on ppp0 && ufw route allow in on lan0 out on ppp1 && ufw route allow in on lan0 out on wan0');
    expect(forward?.fix).toContain('ufw default allow routed');
    expect(severities(findings, 'firewall:forward-replies')).toEqual(['ok']);
    expect(byCheck(findings, 'firewall:forward-replies')[0]?.summary).toContain('RELATED,ESTABLISHED -j ACCEPT');
    expect(severities(findings, 'firewall:input')).toEqual(['ok']);
  });

  test('the ufw recipe (ufw route allow … per uplink) makes every new connection pass', () => {
    const findings = judge({ iptablesSave: withUfwRoutes() });
    expect(severities(findings, 'firewall:forward')).toEqual(['ok']);
    expect(byCheck(findings, 'firewall:forward')[0]?.summary).toContain('-A ufw-user-forward -i lan0 -o ppp0 -j ACCEPT');
  });

  test('a route for one uplink only: the other uplinks still fail', () => {
    const one = fixture('firewalls/ufw-enabled.rules').replace(/^COMMIT$/m, '-A ufw-user-forward -i lan0 -o ppp0 -j ACCEPT\nCOMMIT');
    const findings = judge({ iptablesSave: one });
    const forward = byCheck(findings, 'firewall:forward');
    expect(forward.find((f) => f.severity === 'ok')?.summary).toContain('lan0 → ppp0 ');
    const failing = forward.find((f) => f.severity === 'fail');
    expect(failing?.summary).toContain('lan0 → ppp1, wan0');
    expect(failing?.fix).not.toContain('out on ppp0');
  });
});

describe('firewalld (nft table inet firewalld)', () => {
  test('default zone public for every interface: new connections are rejected by the final rule; the fix is the zones-and-policy recipe', () => {
    const findings = judge({ nftRuleset: fixture('firewalls/firewalld.json') });
    const [forward] = byCheck(findings, 'firewall:forward');
    expect(forward?.severity).toBe('fail');
    expect(forward?.summary).toContain('dropped by the firewall: nft inet firewalld filter_FWD_public: reject');
    expect(forward?.fix).toContain('firewall-cmd --permanent --zone=internal --add-interface=lan0');
    expect(forward?.fix).toContain('firewall-cmd --permanent --zone=external --add-interface=ppp0');
    expect(forward?.fix).toContain('--policy dispatcher-out --set-target ACCEPT');
    expect(forward?.fix).toMatch(/firewall-cmd --reload$/);
    expect(severities(findings, 'firewall:forward-replies')).toEqual(['ok']);
    expect(severities(findings, 'firewall:input')).toEqual(['ok']);
  });

  test('after the recipe every new connection passes (by the policy chain firewalld made)', () => {
    const findings = judge({ nftRuleset: fixture('firewalls/firewalld-recipe.json') });
    expect(severities(findings, 'firewall:forward')).toEqual(['ok']);
    expect(byCheck(findings, 'firewall:forward')[0]?.summary).toContain('filter_FWD_policy_dispatcher-out');
  });
});

describe('hand-written nftables', () => {
  test('a forward chain that accepts only established connections fails, with the nft rule to insert', () => {
    const findings = judge({ nftRuleset: nft('inet filter', [{ name: 'forward', hook: 'forward', policy: 'drop', rules: [[ctState(['established', 'related']), ACCEPT]] }]) });
    const [forward] = byCheck(findings, 'firewall:forward');
    expect(forward?.severity).toBe('fail');
    expect(forward?.summary).toContain('policy drop of nft inet filter forward');
    expect(forward?.fix).toBe(`nft insert rule inet filter forward 'iifname "lan0" oifname { "ppp0", "ppp1", "wan0" } accept' (and add it to /etc/nftables.conf)`);
    expect(severities(findings, 'firewall:forward-replies')).toEqual(['ok']);
  });

  test("an input chain with policy drop and no established rule: the probes' answers are dropped (fail), with the rule that lets them in", () => {
    const findings = judge({ nftRuleset: nft('inet filter', [{ name: 'input', hook: 'input', policy: 'drop', rules: [[match(meta('iifname'), 'lo'), ACCEPT]] }]) });
    const [input] = byCheck(findings, 'firewall:input');
    expect(input?.severity).toBe('fail');
    expect(input?.summary).toContain('answers to the health probes');
    expect(input?.fix).toContain(`nft insert rule inet filter input 'iifname { "ppp0", "ppp1", "wan0" } ct state established,related accept'`);
    expect(severities(findings, 'firewall:forward')).toEqual(['ok']);
  });

  test('a drop in one table is final even when another table accepts', () => {
    const iptables = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
    const findings = judge({ iptablesSave: iptables, nftRuleset: nft('inet filter', [{ name: 'fwd', hook: 'forward', rules: [[match(meta('oifname'), 'wan0'), { reject: null }]] }]) });
    const forward = byCheck(findings, 'firewall:forward');
    expect(forward.find((f) => f.severity === 'fail')?.summary).toMatch(/lan0 → wan0 are dropped by the firewall: nft inet filter fwd: meta oifname wan0 reject/);
    expect(forward.find((f) => f.severity === 'ok')?.summary).toContain('lan0 → ppp0, ppp1');
  });

  test("iptables-nft's own filter table in nft's ruleset is judged once, through iptables-save", () => {
    const iptables = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';
    const shim = nft('ip filter', [{ name: 'FORWARD', hook: 'forward', policy: 'drop', rules: [] }]);
    const fix = byCheck(judge({ iptablesSave: iptables, nftRuleset: shim }), 'firewall:forward')[0]?.fix;
    expect(fix).toBe(
      'iptables -I FORWARD -i lan0 -o ppp0 -j ACCEPT && iptables -I FORWARD -i lan0 -o ppp1 -j ACCEPT && iptables -I FORWARD -i lan0 -o wan0 -j ACCEPT (then save it where your rules are loaded from at boot, e.g. netfilter-persistent save)',
    );
    // With iptables-legacy both are real tables, and both are judged.
    const both = byCheck(judge({ iptablesSave: iptables, iptablesKind: 'legacy', nftRuleset: shim }), 'firewall:forward')[0];
    expect(both?.summary).toContain('iptables-legacy filter FORWARD');
    expect(both?.summary).toContain('nft ip filter FORWARD');
  });
});

describe('permissive, partial and unjudgeable rule sets', () => {
  test('no rules at all, and a permissive firewall, are ok', () => {
    for (const findings of [judge({}), judge({ iptablesSave: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n' })]) {
      expect(findings.length).toBeGreaterThan(0);
      expect(findings.every((f) => f.severity === 'ok')).toBe(true);
    }
  });

  test('a rule that only lets some destinations out still fails, and says which are accepted', () => {
    const findings = judge({ iptablesSave: '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -d 10.0.0.0/8 -j ACCEPT\nCOMMIT\n' });
    const [forward] = byCheck(findings, 'firewall:forward');
    expect(forward?.severity).toBe('fail');
    expect(forward?.summary).toContain('accepted when iptables filter: -A FORWARD -d 10.0.0.0/8 -j ACCEPT');
  });

  test('addresses: a prefix covering the LAN matches it, two overlapping halves of it do not cover all of it twice over', () => {
    const rules = (sources: string): string =>
      `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n-A FORWARD -s ${sources} -j ACCEPT\nCOMMIT\n`;
    expect(severities(judge({ iptablesSave: rules('198.16.0.0/14') }), 'firewall:forward')).toEqual(['ok']);
    expect(severities(judge({ iptablesSave: rules('198.18.0.0/17,198.18.0.0/17') }), 'firewall:forward')).toEqual(['fail']);
    expect(severities(judge({ iptablesSave: rules('198.18.0.0/17,198.18.128.0/17') }), 'firewall:forward')).toEqual(['ok']);
  });

  test('a rule that drops one client: doctor (the whole LAN) is ok and names it; explain says that client is dropped', () => {
    const rules = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -s 198.18.0.66/32 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n';
    const sets = ruleSets(facts({ iptablesSave: rules }));
    const [forward] = byCheck(firewallFindings(sets, scope), 'firewall:forward');
    expect(forward?.severity).toBe('ok');
    expect(forward?.summary).toContain('dropped when iptables filter: -A FORWARD -s 198.18.0.66/32 -j REJECT');
    expect(firewallForClient(sets, '198.18.0.66', 'lan0', ['ppp0'])[0]).toMatch(
      /^firewall: a new connection \(TCP port 443\) from 198\.18\.0\.66 on lan0 out of ppp0 is DROPPED \(iptables filter: -A FORWARD -s 198\.18\.0\.66\/32 -j REJECT/,
    );
    expect(firewallForClient(sets, '198.18.0.67', 'lan0', ['ppp0'])[0]).toContain('is accepted (policy accept of iptables filter FORWARD)');
  });

  test('an allow-list by ipset before a drop policy cannot be judged: info naming the rule, never ok or fail', () => {
    const rules = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m set --match-set allowed src -j ACCEPT\nCOMMIT\n';
    const [forward] = byCheck(judge({ iptablesSave: rules }), 'firewall:forward');
    expect(forward?.severity).toBe('info');
    expect(forward?.summary).toContain('cannot be judged');
    expect(forward?.summary).toContain('-A FORWARD -m set --match-set allowed src -j ACCEPT');
    expect(forward?.fix).toContain('iptables -I FORWARD -i lan0 -o ppp0 -j ACCEPT');
    const nftSet = nft('inet filter', [{ name: 'forward', hook: 'forward', policy: 'drop', rules: [[match({ payload: { protocol: 'ip', field: 'saddr' } }, '@allowed'), ACCEPT]] }]);
    expect(severities(judge({ nftRuleset: nftSet }), 'firewall:forward')).toEqual(['info']);
  });

  test('a mark match that could drop, a userspace queue, and an unknown statement are each unknown', () => {
    const markDrop = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -m mark --mark 0x1/0x1 -j DROP\nCOMMIT\n';
    expect(severities(judge({ iptablesSave: markDrop }), 'firewall:forward')).toEqual(['info']);
    const queue = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n-A FORWARD -j NFQUEUE --queue-num 1\nCOMMIT\n';
    expect(byCheck(judge({ iptablesSave: queue }), 'firewall:forward')[0]?.summary).toContain('NFQUEUE');
    const odd = nft('inet filter', [{ name: 'forward', hook: 'forward', rules: [[{ synproxy: { mss: 1460 } }, { drop: null }]] }]);
    expect(severities(judge({ nftRuleset: odd }), 'firewall:forward')).toEqual(['info']);
  });

  test('a rule set that cannot be read is info, not ok', () => {
    const [finding] = judge({ iptablesError: "table `filter' is incompatible, use 'nft' tool." });
    expect(finding).toMatchObject({ check: 'firewall:read', severity: 'info' });
  });

  test('chains that jump in a loop or too deep end as unknown, not as a hang', () => {
    const chains = Array.from({ length: 70 }, (_, i) => `:C${i} - [0:0]`).join('\n');
    const jumps = Array.from({ length: 69 }, (_, i) => `-A C${i} -j C${i + 1}`).join('\n');
    const rules = `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n${chains}\n-A FORWARD -j C0\n${jumps}\n-A C69 -j DROP\nCOMMIT\n`;
    expect(byCheck(judge({ iptablesSave: rules }), 'firewall:forward')[0]).toMatchObject({ severity: 'info', summary: expect.stringContaining('nest deeper') });
  });
});

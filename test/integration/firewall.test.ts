// The gateway's own firewall, on the real kernel: rule sets of the shapes ufw,
// firewalld and hand-written nftables/iptables leave behind are loaded into the
// gateway namespace (never ufw or firewalld themselves: their configuration is
// global), and `doctor` must judge them as the kernel does — a client that
// cannot get out is a failure with a fix that works when pasted, a client that
// gets out is never reported as blocked, and what cannot be judged is `info`.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import type { Finding } from '../../src/core/doctor.js';
import { fixture } from '../helpers/fixtures.js';
import { Lab, within } from '../helpers/lab.js';

jest.setTimeout(120_000);

interface DoctorJson {
  worst: string;
  findings: Finding[];
}

const EMPTY_FILTER = '*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n';

describe('doctor judges the forward path of the gateway firewall', () => {
  let lab: Lab;

  const doctor = async (): Promise<{ exit: number; report: DoctorJson }> => {
    const result = await lab.cli(['doctor', '--json'], [0, 1, 2]);
    return { exit: result.exitCode, report: JSON.parse(result.stdout) as DoctorJson };
  };
  const firewall = (report: DoctorJson, check: string): Finding[] => report.findings.filter((f) => f.check === check);
  const severities = (report: DoctorJson, check: string): string[] => [...new Set(firewall(report, check).map((f) => f.severity))];
  const gw = (argv: string[], input?: string) => lab.runner.run(['ip', 'netns', 'exec', lab.topo.gw, ...argv], input === undefined ? {} : { input });
  const online = async (): Promise<boolean> =>
    lab.leavesBy(lab.client(0)).then(
      () => true,
      () => false,
    );
  /** Runs a fix doctor gave, as a shell would split it (commands joined by &&, nft's rule in single quotes). */
  const paste = async (fix: string): Promise<void> => {
    const commands = fix.replace(/ \((then|and) [^)]*\)$/, '').split(' && ');
    for (const command of commands) {
      const quoted = /^(.*?) '(.*)'$/.exec(command);
      const argv = quoted ? [...(quoted[1] as string).split(' '), quoted[2] as string] : command.split(' ');
      await gw(argv);
    }
  };
  const explainFirewall = async (): Promise<string[]> => (await lab.cliJson<{ firewall: string[] }>(['explain', lab.client(0).ip])).firewall;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 1, tag: 'fw' });
    await lab.start();
    await lab.hello(lab.client(0));
    await within(5000, 'the client assigned', async () => lab.inClientSet(lab.client(0).ip));
  });

  afterAll(async () => {
    await lab?.destroy();
  });

  test('no firewall: ok, and the client is online', async () => {
    expect(await online()).toBe(true);
    const { report } = await doctor();
    for (const check of ['firewall:forward', 'firewall:forward-replies', 'firewall:input']) expect(severities(report, check)).toEqual(['ok']);
    expect((await explainFirewall())[0]).toMatch(/is accepted|no rules on the forward path/);
  });

  test('ufw enabled (routed deny): no client online, doctor fails with the ufw route commands; the same rule set with them: ok and online', async () => {
    const ufw = fixture('firewalls/ufw-enabled.rules');
    await gw(['iptables-restore'], ufw);
    try {
      expect(await online()).toBe(false);
      const { exit, report } = await doctor();
      expect(exit).toBe(2);
      const [forward] = firewall(report, 'firewall:forward');
      expect(forward).toMatchObject({ severity: 'fail', summary: expect.stringContaining('policy drop of iptables filter FORWARD') });
      for (const uplink of ['ppp0', 'ppp1', 'wan0']) expect(forward?.fix).toContain(`ufw route allow in on lan0 out on ${uplink}`);
      expect(severities(report, 'firewall:forward-replies')).toEqual(['ok']);
      expect(severities(report, 'firewall:input')).toEqual(['ok']);
      expect((await explainFirewall()).join('\n')).toContain('is DROPPED (policy drop of iptables filter FORWARD)');

      // What `ufw route allow in on lan0 out on …` writes for each uplink.
      const routes = fixture('firewalls/ufw-route-allow.rules')
        .split('\n')
        .filter((line) => line.startsWith('-A '));
      await gw(['iptables-restore'], ufw.replace(/^COMMIT$/m, `${routes.join('\n')}\nCOMMIT`));
      expect(await online()).toBe(true);
      const after = await doctor();
      expect(severities(after.report, 'firewall:forward')).toEqual(['ok']);
      expect(after.exit).toBe(0);
    } finally {
      await gw(['iptables-restore'], EMPTY_FILTER);
    }
  });

  test('firewalld (default zone for every interface): fail with the zones-and-policy fix; firewalld after that recipe: ok and online', async () => {
    await gw(['nft', '-f', '-'], fixture('firewalls/firewalld.nft'));
    try {
      expect(await online()).toBe(false);
      const { exit, report } = await doctor();
      expect(exit).toBe(2);
      const [forward] = firewall(report, 'firewall:forward');
      expect(forward).toMatchObject({ severity: 'fail', summary: expect.stringContaining('nft inet firewalld filter_FWD_public: reject') });
      expect(forward?.fix).toContain('firewall-cmd --permanent --zone=internal --add-interface=lan0');
      expect(forward?.fix).toContain('firewall-cmd --permanent --policy dispatcher-out --set-target ACCEPT');

      await gw(['nft', '-f', '-'], fixture('firewalls/firewalld-lan-policy.nft'));
      expect(await online()).toBe(true);
      const after = await doctor();
      expect(severities(after.report, 'firewall:forward')).toEqual(['ok']);
      expect(after.exit).toBe(0);
    } finally {
      await gw(['nft', 'delete', 'table', 'inet', 'firewalld']);
    }
  });

  test('an nftables forward chain that accepts only established connections: fail, and pasting its fix brings the client online', async () => {
    await gw(['nft', '-f', '-'], 'table inet filter {\n  chain forward {\n    type filter hook forward priority 0; policy drop;\n    ct state established,related accept\n  }\n}\n');
    try {
      expect(await online()).toBe(false);
      const { report } = await doctor();
      const [forward] = firewall(report, 'firewall:forward');
      expect(forward).toMatchObject({ severity: 'fail', summary: expect.stringContaining('policy drop of nft inet filter forward') });
      expect(severities(report, 'firewall:forward-replies')).toEqual(['ok']);
      await paste(forward?.fix as string);
      expect(await online()).toBe(true);
      expect(severities((await doctor()).report, 'firewall:forward')).toEqual(['ok']);
    } finally {
      await gw(['nft', 'delete', 'table', 'inet', 'filter']);
    }
  });

  test('iptables -P FORWARD DROP: new connections and their replies both fail, and pasting the two fixes brings the client online', async () => {
    await gw(['iptables', '-P', 'FORWARD', 'DROP']);
    try {
      expect(await online()).toBe(false);
      const { report } = await doctor();
      const [forward] = firewall(report, 'firewall:forward');
      expect(forward).toMatchObject({ severity: 'fail', fix: expect.stringContaining('iptables -I FORWARD -i lan0 -o ppp0 -j ACCEPT') });
      const [replies] = firewall(report, 'firewall:forward-replies');
      expect(replies).toMatchObject({ severity: 'fail', fix: expect.stringContaining('iptables -I FORWARD -i ppp0 -o lan0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT') });
      await paste(forward?.fix as string);
      // New connections alone are not enough: their replies are still dropped.
      expect(await online()).toBe(false);
      await paste(replies?.fix as string);
      expect(await online()).toBe(true);
      const after = (await doctor()).report;
      expect(severities(after, 'firewall:forward')).toEqual(['ok']);
      expect(severities(after, 'firewall:forward-replies')).toEqual(['ok']);
    } finally {
      await gw(['iptables-restore'], EMPTY_FILTER);
    }
  });

  test('an allow-list in a named set before a drop policy cannot be judged: info naming the rule (the kernel lets this client through), never ok', async () => {
    const client = lab.client(0).ip;
    await gw(
      ['nft', '-f', '-'],
      `table inet filter {\n  set allowed { type ipv4_addr; elements = { ${client} } }\n  chain forward {\n    type filter hook forward priority 0; policy drop;\n    ct state established,related accept\n    ip saddr @allowed accept\n  }\n}\n`,
    );
    try {
      expect(await online()).toBe(true);
      const { report } = await doctor();
      const [forward] = firewall(report, 'firewall:forward');
      expect(forward).toMatchObject({ severity: 'info', summary: expect.stringContaining('ip saddr @allowed') });
    } finally {
      await gw(['nft', 'delete', 'table', 'inet', 'filter']);
    }
  });

  test('an input chain without an established rule drops the answers to the health probes: fail, with the rule that lets them in', async () => {
    // Short-lived: the daemon's probes fail while it is loaded, so it is removed as soon as doctor has looked.
    await gw(['nft', '-f', '-'], 'table inet filter {\n  chain input {\n    type filter hook input priority 0; policy drop;\n    iifname "lo" accept\n  }\n}\n');
    let report: DoctorJson;
    try {
      report = (await doctor()).report;
    } finally {
      await gw(['nft', 'delete', 'table', 'inet', 'filter']);
    }
    const [input] = firewall(report, 'firewall:input');
    expect(input).toMatchObject({ severity: 'fail', summary: expect.stringContaining('answers to the health probes') });
    expect(input?.fix).toContain(`nft insert rule inet filter input 'iifname { "ppp0", "ppp1", "wan0" } ct state established,related accept'`);
    for (const uplink of ['isp1', 'isp2', 'isp3']) await within(10_000, `${uplink} up again`, async () => (await lab.stateOf(uplink)) === 'up');
  });
});

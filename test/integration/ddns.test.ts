// Inbound balancing: a real BIND 9 in the internet namespace holds one A
// record per live uplink. Its records follow the uplinks' health (withdrawn
// within the detection time, back after recovery), an unchanged state sends
// no update (the zone serial stays), updates leave by a live uplink, and an
// uplink behind another NAT is published with the outer NAT's address, learnt
// through that uplink. `dispatcher exec --uplink` traffic leaves by the uplink.

import { afterAll, afterEach, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startDnsServer, type DnsServer } from '../../src/lab/dns.js';
import { blackhole } from '../../src/lab/faults.js';
import { AGENT } from '../../src/lab/harness.js';
import type { UplinkSpec } from '../../src/lab/topology.js';
import { Lab, within } from '../helpers/lab.js';

jest.setTimeout(120_000);

const NAME = 'gw.example.test';
/** Default health settings: a silent line is dead within 8 × 100 ms + 500 ms. */
const DETECTION_MS = 1300;
/** The run after the verdict, one query and one update. */
const PUBLISH_MS = 1000;

/** isp3 sits behind a provider's NAT router: the gateway holds 198.19.200.10, the internet sees 192.0.2.10. */
const UPLINKS: readonly UplinkSpec[] = [
  { name: 'isp1', interface: 'ppp0', weight: 2, gateway: '192.0.2.1' },
  { name: 'isp2', interface: 'ppp1', weight: 1, gateway: '192.0.2.1' },
  { name: 'isp3', interface: 'wan0', weight: 1, behindNat: true },
];

/** The lab config with `ddns` and isp3's public-address URL. */
async function configure(lab: Lab, dns: DnsServer, options: { key?: string; server?: string; path?: string; exclude?: string[]; every?: string } = {}): Promise<void> {
  const ddns = { server: options.server ?? dns.address, zone: dns.zone, name: NAME, key: options.key ?? dns.keyFile, ttl: 60, exclude: options.exclude ?? [], ...(options.every ? { every: options.every } : {}) };
  await lab.rewriteConfig({ extra: `ddns: ${JSON.stringify(ddns)}\n` });
  const text = await readFile(lab.files.config, 'utf8');
  await writeFile(lab.files.config, text.replace('    interface: wan0\n', `    interface: wan0\n    public_address: { url: "http://${lab.topo.server}${options.path ?? '/ip'}" }\n`));
}

const publicOf = (lab: Lab, ...names: string[]): string[] => names.map((n) => lab.uplink(n).publicAddress).sort();

describe('dynamic DNS with a real BIND 9', () => {
  let lab: Lab;
  let dns: DnsServer;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 1, uplinks: UPLINKS });
    dns = await startDnsServer(lab.runner, lab.topo, join(lab.files.dir, 'dns'));
    await configure(lab, dns);
    await lab.start();
  });

  afterAll(async () => {
    await dns?.stop();
    await lab?.destroy();
  });

  test('the name resolves to every live uplink, isp3 with its outer NAT address learnt through isp3', async () => {
    await within(10_000, 'three records', async () => (await dns.records(NAME)).join() === publicOf(lab, 'isp1', 'isp2', 'isp3').join());
    const status = await lab.status();
    const isp3 = status.uplinks.find((u) => u.name === 'isp3');
    expect(isp3?.publicAddress).toMatchObject({ address: '192.0.2.10', source: 'url' });
    expect(lab.uplink('isp3').local).toBe('198.19.200.10');
    expect(await dns.records(NAME)).not.toContain('198.19.200.10');
    expect(status.ddns).toMatchObject({ inSync: true, error: null, published: ['192.0.2.2', '192.0.2.6', '192.0.2.10'] });
    // The NAT'd ethernet line has no route in main: its probes had their path before the first probe round, so it was never judged dead.
    expect(lab.daemon?.logs.filter((line) => line.includes('"uplink":"isp3"') && line.includes('"to":"down"'))).toEqual([]);
    const text = (await lab.cli(['status'])).stdout;
    expect(text).toContain(`isp3: 192.0.2.10 from http://${lab.topo.server}/ip`);
    expect(text).toContain('dns gw.example.test at 203.0.113.53:53: in sync');
  });

  test('nothing is sent when nothing changed: runs, a reload and a restart leave the zone serial alone', async () => {
    const serial = await dns.serial();
    const before = (await lab.status()).ddns;
    await lab.cli(['scan']);
    await lab.cli(['reload']);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await lab.status()).ddns?.updates).toBe(before?.updates);
    // A restart knows nothing locally: it asks the server, finds the records in place, and sends nothing.
    await lab.daemon?.stop();
    await lab.start();
    await within(5000, 'the restarted daemon checked the server', async () => ((await lab.status()).ddns?.checks ?? 0) >= 1 && (await lab.status()).ddns?.inSync === true);
    const after = await lab.status();
    expect(after.ddns?.updates).toBe(0);
    expect(await dns.serial()).toBe(serial);
  });

  test('a dead line is withdrawn within its detection time and published again after recovery; updates leave by a live uplink', async () => {
    const all = publicOf(lab, 'isp1', 'isp2', 'isp3');
    // isp1 is the first uplink, the one updates normally leave by: kill it, so they must take another.
    await blackhole(lab.runner, lab.uplink('isp1'), true);
    let withdrawnMs: number;
    try {
      withdrawnMs = await within(DETECTION_MS + PUBLISH_MS, 'isp1 withdrawn', async () => (await dns.records(NAME)).join() === publicOf(lab, 'isp2', 'isp3').join());
    } finally {
      await blackhole(lab.runner, lab.uplink('isp1'), false);
    }
    // named logs each update with the address it came from: isp2's (the first live uplink), never isp1's.
    const updates = dns.logs.filter((line) => line.includes('updating zone'));
    expect(updates.length).toBeGreaterThan(0);
    expect(updates.at(-1)).toContain(`client @`);
    expect(updates.at(-1)).toContain(` ${lab.uplink('isp2').publicAddress}#`);
    const backMs = await within(5000, 'isp1 published again', async () => (await dns.records(NAME)).join() === all.join());
    process.stdout.write(`ddns: withdrawn ${withdrawnMs.toFixed(0)} ms after the blackhole, back ${backMs.toFixed(0)} ms after recovery\n`);
  });

  test('excluded uplinks are never published', async () => {
    await configure(lab, dns, { exclude: ['isp2'], every: '10s' });
    await lab.cli(['reload']);
    await within(3000, 'isp2 withdrawn', async () => (await dns.records(NAME)).join() === publicOf(lab, 'isp1', 'isp3').join());
  });

  test('records changed on the server behind our back are put right at the next check (ddns.every)', async () => {
    // Someone with the key replaces the records by hand.
    const script = `server ${dns.address}\nzone ${dns.zone}\nupdate delete ${NAME}. A\nupdate add ${NAME}. 60 A 198.51.100.99\nsend\n`;
    await lab.runner.run(['ip', 'netns', 'exec', lab.topo.inet, 'nsupdate', '-k', dns.keyFile], { input: script });
    expect(await dns.records(NAME)).toEqual(['198.51.100.99']);
    const repairedMs = await within(12_000, 'the records put right', async () => (await dns.records(NAME)).join() === publicOf(lab, 'isp1', 'isp3').join());
    process.stdout.write(`ddns: records changed on the server were put right after ${repairedMs.toFixed(0)} ms (every 10 s)\n`);
  });

  test("dispatcher exec --uplink: the command's traffic leaves by that uplink", async () => {
    for (const uplink of lab.topo.uplinks) {
      const result = await lab.cli(['exec', '--uplink', uplink.name, '--', process.execPath, AGENT, 'get', `http://${lab.topo.server}/`]);
      expect([uplink.name, (JSON.parse(result.stdout) as { source: string }).source]).toEqual([uplink.name, uplink.publicAddress]);
    }
    const unknown = await lab.cli(['exec', '--uplink', 'isp9', '--', 'true'], [2]);
    expect(unknown.stderr).toContain('no uplink named "isp9"');
    // The command's exit code is the CLI's.
    expect((await lab.cli(['exec', '--uplink', 'isp1', '--', process.execPath, '-e', 'process.exit(7)'], [7])).exitCode).toBe(7);
  });
});

describe('dynamic DNS failures are reported, retried and never block failover', () => {
  let lab: Lab;
  let dns: DnsServer;

  beforeAll(async () => {
    lab = await Lab.create({ clients: 1, uplinks: UPLINKS });
    dns = await startDnsServer(lab.runner, lab.topo, join(lab.files.dir, 'dns'));
  });

  afterEach(async () => {
    await lab.daemon?.stop();
    lab.daemon = null;
  });

  afterAll(async () => {
    await dns?.stop();
    await lab?.destroy();
  });

  async function failoverStillWorks(): Promise<void> {
    await blackhole(lab.runner, lab.uplink('isp2'), true);
    try {
      await within(DETECTION_MS + 700, 'isp2 declared down', async () => (await lab.stateOf('isp2')) === 'down');
    } finally {
      await blackhole(lab.runner, lab.uplink('isp2'), false);
    }
    await within(5000, 'isp2 back', async () => (await lab.stateOf('isp2')) === 'up');
  }

  test('a wrong TSIG key: the error is in status and the log, retries back off, nothing is published', async () => {
    const wrongKey = join(lab.files.dir, 'wrong.key');
    await writeFile(wrongKey, (await lab.runner.run(['tsig-keygen', '-a', 'hmac-sha256', 'dispatcher-ddns'])).stdout);
    await configure(lab, dns, { key: wrongKey });
    await lab.start();
    const status = await within(5000, 'the error in status', async () => ((await lab.status()).ddns?.error ?? '').includes('update'));
    expect(status).toBeLessThan(5000);
    const ddns = (await lab.status()).ddns;
    expect(ddns?.error).toMatch(/updating gw\.example\.test at 203\.0\.113\.53 failed: .*(TSIG|tsig|NOTAUTH|BADSIG)/);
    expect(lab.daemon?.logs.some((line) => line.includes('dynamic dns update failed'))).toBe(true);
    await failoverStillWorks();
    // Retried: each change of the record set (isp2 down, isp2 back) at once, otherwise after 1 s, 2 s, 4 s …
    const failuresOf = async (): Promise<number> => (await lab.status()).ddns?.failures ?? 0;
    await within(15_000, 'three failed attempts', async () => (await failuresOf()) >= 3);
    // Backed off: from the third failure on the next try waits 4 s or more, so a 4 s window holds at most one more
    // (a fixed 1 s retry would make four).
    const before = await failuresOf();
    await new Promise((resolve) => setTimeout(resolve, 4000));
    expect((await failuresOf()) - before).toBeLessThanOrEqual(1);
    expect(await dns.records(NAME)).toEqual([]);
  });

  test('an unreachable server: reported and retried, failover unaffected', async () => {
    await configure(lab, dns, { server: '203.0.113.54' });
    await lab.start();
    await within(10_000, 'the error in status', async () => ((await lab.status()).ddns?.error ?? '').includes('203.0.113.54'));
    expect((await lab.status()).ddns?.error).toMatch(/asking 203\.0\.113\.54 for gw\.example\.test failed: no answer/);
    await failoverStillWorks();
    expect((await lab.status()).running).toBe(true);
  });

  test('garbage from the address URL: reported, and the uplink is not published', async () => {
    await configure(lab, dns, { path: '/garbage' });
    await lab.start();
    await within(10_000, 'isp1 and isp2 published', async () => (await dns.records(NAME)).join() === publicOf(lab, 'isp1', 'isp2').join());
    await within(5000, 'isp3 up', async () => (await lab.stateOf('isp3')) === 'up');
    const isp3 = (await lab.status()).uplinks.find((u) => u.name === 'isp3')?.publicAddress;
    expect(isp3?.address).toBeNull();
    expect(isp3?.error).toContain('not an IPv4 address: "<html>not an address; $(reboot)</html>"');
    expect(lab.daemon?.logs.some((line) => line.includes('public address lookup failed'))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await dns.records(NAME)).toEqual(publicOf(lab, 'isp1', 'isp2'));
  });
});

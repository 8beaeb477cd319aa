// Probe methods on the real kernel: tcp, http and dns targets asked through
// each uplink (bound to its address, so its source rule sends them out by it)
// against the lab's internet host and a real BIND; what counts as lost — a
// closed port, HTTP 500, REFUSED, silence — takes the line down with that
// evidence in its reason, and a line whose targets answer again comes back.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { join } from 'node:path';
import { DNS_ADDRESS, DNS_ZONE, startDnsServer, type DnsServer } from '../../src/lab/dns.js';
import { blackhole } from '../../src/lab/faults.js';
import { AGENT } from '../../src/lab/harness.js';
import type { UplinkHealthSnapshot } from '../../src/schema/control.js';
import { Lab, within } from '../helpers/lab.js';

jest.setTimeout(120_000);

const SERVER = '203.0.113.100';
const ECHO = 7;

describe('tcp, http and dns probe methods', () => {
  let lab: Lab;
  let dns: DnsServer;

  const health = async (uplink: string): Promise<UplinkHealthSnapshot> => {
    const status = await lab.status();
    return status.uplinks.find((u) => u.name === uplink)?.health as UplinkHealthSnapshot;
  };
  /** Points an uplink's probes at other targets and reloads the daemon. */
  const retarget = async (targets: Record<string, string>): Promise<void> => {
    await lab.rewriteConfig({ targets });
    await lab.cli(['reload']);
  };

  beforeAll(async () => {
    lab = await Lab.create({
      clients: 1,
      tag: 'probe',
      config: {
        targets: {
          isp1: `[{ method: tcp, address: ${SERVER}, port: ${ECHO} }, { method: http, url: "http://${SERVER}/ip", contains: "." }]`,
          isp2: `[{ method: dns, server: ${DNS_ADDRESS}, query: ns.${DNS_ZONE} }]`,
        },
      },
    });
    dns = await startDnsServer(lab.runner, lab.topo, join(lab.files.dir, 'dns'));
  });

  afterAll(async () => {
    await dns?.stop();
    await lab?.destroy();
  });

  test('every method answers through its own uplink: all lines up, status shows each target with its method and RTT', async () => {
    await lab.start();
    for (const uplink of ['isp1', 'isp2', 'isp3']) await within(10_000, `${uplink} up`, async () => (await lab.stateOf(uplink)) === 'up');
    const isp1 = await health('isp1');
    expect(isp1.targets.map((t) => [t.target, t.method, t.alive])).toEqual([
      [`tcp ${SERVER}:${ECHO}`, 'tcp', true],
      [`http://${SERVER}/ip`, 'http', true],
    ]);
    expect(isp1.targets.map((t) => [t.target, t.lastRttMs !== null && t.lastRttMs > 0, t.lastLost])).toEqual([
      [`tcp ${SERVER}:${ECHO}`, true, null],
      [`http://${SERVER}/ip`, true, null],
    ]);
    // What these probes put on the line: a tcp and an http target, ten times a second.
    expect(isp1.probeKbps).toEqual({ out: 48.2, in: 50.2 });
    expect((await health('isp2')).targets[0]).toMatchObject({ target: `dns ${DNS_ADDRESS} ns.${DNS_ZONE}`, method: 'dns', alive: true });
    // The http probe left by isp1: the internet host saw isp1's own address, never another line's.
    const seen = new Set(lab.server.lines.filter((l) => l.startsWith('http /ip ')).map((l) => l.split(' ')[2]));
    expect([...seen]).toEqual([lab.uplink('isp1').publicAddress]);
    const text = (await lab.cli(['status'])).stdout;
    expect(text).toContain(`tcp ${SERVER}:${ECHO} tcp  alive`);
    expect(text).toContain(`dns ${DNS_ADDRESS} ns.${DNS_ZONE} dns  alive`);
  });

  test('a silent blackhole on the line: the passive signal asks its tcp and http targets by a burst, unanswered, and it is down within the worst-case detection time', async () => {
    const isp1 = lab.uplink('isp1');
    const detection = (await health('isp1')).detectionMs;
    await blackhole(lab.runner, isp1, true);
    try {
      const took = await within(detection + 3000, 'isp1 down', async () => (await lab.stateOf('isp1')) === 'down');
      expect(took).toBeLessThan(detection + 3000);
      // Whichever judged first names both targets: the passive signal (the line sent its probes and heard nothing;
      // bursts of tcp connects and http GETs, sockets bound to the line, went unanswered) or the two silent targets
      // corroborating (an ARP reply from the ISP's router can delay the stall: the counters see every frame).
      const { reason, targets } = await health('isp1');
      const evidence = '(packets sent and none received for \\d+ ms; a burst of 5 probes went unanswered|\\d+ probes lost in a row while 1 other target was as silent)';
      expect(reason).toMatch(new RegExp(`^0 of 2 targets answer \\(need 1\\); tcp 203\\.0\\.113\\.100:\\d+: ${evidence}; http://203\\.0\\.113\\.100/\\S+: ${evidence}$`));
      // The periodic probes, meanwhile, time out.
      await within(2000, 'the probes time out', async () => (await health('isp1')).targets.every((t) => t.lastLost?.startsWith('no answer within') === true));
      expect(targets.map((t) => t.method)).toEqual(['tcp', 'http']);
    } finally {
      await blackhole(lab.runner, isp1, false);
    }
    await within(10_000, 'isp1 back', async () => (await lab.stateOf('isp1')) === 'up');
  });

  test('https: a self-signed endpoint answers with insecure: true, and is lost with the certificate error without it', async () => {
    const cert = join(lab.files.dir, 'tls.crt');
    const key = join(lab.files.dir, 'tls.key');
    await lab.runner.run(['openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${SERVER}`, '-keyout', key, '-out', cert]);
    const lines: string[] = [];
    const tls = lab.runner.spawn(['ip', 'netns', 'exec', lab.topo.inet, process.execPath, AGENT, 'serve-tls', cert, key], { onLine: (line) => lines.push(line) });
    try {
      await within(5000, 'the TLS server', async () => lines.includes('serving tls'));
      await retarget({ isp3: `[{ method: https, url: "https://${SERVER}/", insecure: true }]` });
      await within(10_000, 'isp3 probed through https', async () => (await health('isp3')).targets[0]?.alive === true);
      expect(lines).toContain(`https / ${lab.uplink('isp3').publicAddress}`);
      await retarget({ isp3: `[{ method: https, url: "https://${SERVER}/" }]` });
      await within(10_000, 'isp3 down: its certificate is not trusted', async () => (await lab.stateOf('isp3')) === 'down');
      expect((await health('isp3')).targets[0]?.lastLost).toMatch(/self[- ]signed certificate/);
    } finally {
      tls.stop('SIGKILL');
    }
    // Back to a target that answers, so the next test starts from a live line.
    await retarget({ isp3: `[{ method: tcp, address: ${SERVER}, port: ${ECHO} }]` });
    await within(10_000, 'isp3 up again', async () => (await lab.stateOf('isp3')) === 'up');
  });

  test('HTTP 500, a closed port and REFUSED count as lost: each line goes down with that evidence, and comes back when its target answers again', async () => {
    await retarget({
      isp1: `[{ method: http, url: "http://${SERVER}/status/500" }]`,
      isp2: `[{ method: dns, server: ${DNS_ADDRESS}, query: not-served.example }]`,
      isp3: `[{ method: tcp, address: ${SERVER}, port: 9 }]`,
    });
    for (const [uplink, evidence] of [
      ['isp1', 'HTTP 500'],
      ['isp2', 'REFUSED'],
      ['isp3', 'port 9 refused the connection'],
    ] as const) {
      await within(10_000, `${uplink} down`, async () => (await lab.stateOf(uplink)) === 'down');
      const snapshot = await health(uplink);
      expect(snapshot.reason).toContain(evidence);
      expect(snapshot.targets[0]?.lastLost).toBe(evidence);
    }
    await retarget({
      isp1: `[{ method: http, url: "http://${SERVER}/status/204" }]`,
      isp2: `[{ method: dns, server: ${DNS_ADDRESS}, query: ${DNS_ZONE}, type: SOA }]`,
      isp3: `[{ method: tcp, address: ${SERVER}, port: 80 }]`,
    });
    for (const uplink of ['isp1', 'isp2', 'isp3']) await within(10_000, `${uplink} up again`, async () => (await lab.stateOf(uplink)) === 'up');
  });
});

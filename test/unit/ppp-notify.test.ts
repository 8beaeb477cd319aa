import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { describeMail, MailThrottle } from '../../src/core/mail-throttle.js';
import type { Transition } from '../../src/core/health.js';
import { checkHook } from '../../src/core/requests.js';
import { parseRequest } from '../../src/schema/control.js';
import { Notifier } from '../../src/engine/notifier.js';
import type { Logger } from '../../src/system/logger.js';
import { RequestError } from '../../src/model/errors.js';
import { gatewayFromLeases, parseLeases } from '../../src/parse/dhclient.js';
import { interfaceOfLinkEvent } from '../../src/parse/link-events.js';
import { pppHookScript } from '../../src/render/ppp-hook.js';
import { FakeRunner } from '../helpers/fake-runner.js';
import { ManualClock } from '../helpers/manual-clock.js';

describe('ppp hook arguments', () => {
  const base = { event: 'ip-down', interface: 'ppp0', tty: '/dev/ttyS0', speed: '115200', local: '192.0.2.2', remote: '192.0.2.1' };

  test('pppd arguments are taken as they are', () => {
    expect(checkHook({ ...base, ipparam: 'isp1' })).toEqual({ cmd: 'hook', ...base, ipparam: 'isp1' });
    expect(parseRequest(JSON.stringify({ cmd: 'hook', ...base }))).toEqual({ cmd: 'hook', ...base });
  });

  test('anything else is refused before it reaches the daemon', () => {
    for (const bad of [
      { ...base, event: 'ip-sideways' },
      { ...base, interface: 'ppp0; reboot' },
      { ...base, interface: 'ppp+' },
      { ...base, tty: 'a\nb' },
      { ...base, local: '$(id)' },
      { ...base, remote: '192.0.2.300' },
      { ...base, ipparam: 'isp1 && rm -rf /' },
      { ...base, speed: 'x'.repeat(100) },
    ]) {
      expect(() => checkHook(bad)).toThrow(RequestError);
    }
  });

  test('property: any string in any field is either refused or passed on unchanged', () => {
    fc.assert(
      fc.property(fc.constantFrom('interface', 'tty', 'speed', 'local', 'remote', 'ipparam'), fc.string({ maxLength: 80 }), (field, value) => {
        try {
          const hook = checkHook({ ...base, [field]: value }) as unknown as Record<string, unknown>;
          if (value !== '' || field !== 'ipparam') expect(hook[field]).toBe(value);
        } catch (error) {
          expect(error).toBeInstanceOf(RequestError);
        }
      }),
    );
  });

  test('the installed script passes pppd’s arguments on untouched, with absolute paths', () => {
    const script = pppHookScript('ip-up', { node: '/usr/bin/node', dispatcher: "/opt/it's/bin/dispatcher", config: '/etc/dispatcher/config.yaml', socket: '/run/dispatcher/dispatcher.sock' });
    expect(script).toBe(
      [
        '#!/bin/sh',
        '# Installed by `dispatcher install-hooks`: tells the dispatcher daemon about this ppp ip-up at once.',
        '# pppd passes: interface tty speed local-IP remote-IP ipparam. Reinstall the hooks after changing `socket:`.',
        `exec '/usr/bin/node' '/opt/it'\\''s/bin/dispatcher' --config '/etc/dispatcher/config.yaml' --socket '/run/dispatcher/dispatcher.sock' hook ip-up "$@"`,
        '',
      ].join('\n'),
    );
  });
});

describe('dhclient leases', () => {
  const LEASES = `
lease {
  interface "wan0";
  fixed-address 192.0.2.10;
  option subnet-mask 255.255.255.252;
  option routers 192.0.2.9;
  renew 2 2020/01/01 00:00:00;
  expire 2 2020/01/01 01:00:00;
}
lease {
  interface "wan0";
  fixed-address 192.0.2.10;
  option routers 192.0.2.13,192.0.2.14;
  expire 3 2099/01/01 00:00:00;
}
lease {
  interface "eth9";
  option routers 198.51.100.1;
  expire never;
}
`;

  test('the newest unexpired lease of the interface names the gateway', () => {
    const leases = parseLeases(LEASES);
    expect(leases).toHaveLength(3);
    expect(gatewayFromLeases(leases, 'wan0', Date.UTC(2026, 10, 22))).toBe('192.0.2.13');
    expect(gatewayFromLeases(leases, 'wan0', Date.UTC(2100, 0, 1))).toBeUndefined();
    expect(gatewayFromLeases(leases, 'eth9', Date.UTC(2100, 0, 1))).toBe('198.51.100.1');
    expect(gatewayFromLeases(leases, 'ppp0', 0)).toBeUndefined();
  });

  test('never fails on garbage', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (text) => void parseLeases(`lease {${text}}`)));
  });
});

describe('ip monitor link address', () => {
  test('names the interface of link and address lines, nothing else', () => {
    expect(interfaceOfLinkEvent('3: ppp0@x0: <NO-CARRIER,BROADCAST,MULTICAST,UP,M-DOWN> mtu 1500 qdisc noqueue state LOWERLAYERDOWN group default ')).toBe('ppp0');
    expect(interfaceOfLinkEvent('3: ppp0    inet 192.0.2.2 peer 192.0.2.1/32 scope global ppp0')).toBe('ppp0');
    expect(interfaceOfLinkEvent('Deleted 3: ppp0    inet 192.0.2.2 peer 192.0.2.1/32 scope global ppp0')).toBe('ppp0');
    expect(interfaceOfLinkEvent('4: wan0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500')).toBe('wan0');
    expect(interfaceOfLinkEvent('    link/ether ea:81:31:54:70:6b brd ff:ff:ff:ff:ff:ff')).toBeNull();
    expect(interfaceOfLinkEvent('       valid_lft forever preferred_lft forever')).toBeNull();
  });
});

const down = (uplink: string, at: number): Transition => ({ uplink, from: 'up', to: 'down', reason: 'probes lost', at });
const up = (uplink: string, at: number): Transition => ({ uplink, from: 'down', to: 'up', reason: 'targets answer', at });

describe('mail throttle', () => {
  test('one mail per uplink per period; held changes go out together, ending with the recovery', () => {
    const throttle = new MailThrottle(60_000);
    expect(throttle.offer(down('isp1', 0), 0)).toHaveLength(1);
    expect(throttle.offer(down('isp2', 1000), 1000)).toHaveLength(1);
    expect(throttle.offer(up('isp1', 5000), 5000)).toEqual([]);
    expect(throttle.offer(down('isp1', 9000), 9000)).toEqual([]);
    expect(throttle.offer(up('isp1', 12_000), 12_000)).toEqual([]);
    expect(throttle.nextDue()).toBe(60_000);
    expect(throttle.due(59_000)).toEqual([]);
    const [batch] = throttle.due(60_000);
    expect(batch?.map((t) => t.to)).toEqual(['up', 'down', 'up']);
    const mail = describeMail(batch as Transition[], 'gw1');
    expect(mail.subject).toBe('[dispatcher gw1] isp1 up (3 changes)');
    expect(mail.text).toMatch(/isp1 is up now\.\n$/);
    expect(throttle.nextDue()).toBeNull();
  });
});

describe('notifier', () => {
  const logged: string[] = [];
  const log: Logger = { debug() {}, info: (m) => void logged.push(m), warn: (m) => void logged.push(m), error: (m) => void logged.push(m) };

  test('hooks get the change in their environment and are never waited for; a start is not a change', async () => {
    const runner = new FakeRunner();
    let release: () => void = () => undefined;
    // A hook that does not finish until released: notify must still return at once.
    runner.run = ((argv: readonly string[], options: { env?: Record<string, string> } = {}) => {
      runner.calls.push({ argv, input: JSON.stringify(options.env) });
      return new Promise((resolve) => (release = () => resolve({ stdout: '', stderr: '', exitCode: 0 })));
    }) as FakeRunner['run'];
    const notifier = new Notifier({ runner, log }, { exec: ['/usr/local/bin/on-change'], timeoutMs: 1000 });
    notifier.notify({ uplink: 'isp1', from: 'unknown', to: 'up', reason: '1 of 1 targets answer', at: 0 }, 'ppp0');
    expect(runner.calls).toEqual([]);
    notifier.notify(down('isp1', Date.UTC(2026, 10, 22)), 'ppp0');
    expect(runner.calls).toEqual([
      {
        argv: ['/usr/local/bin/on-change'],
        input: JSON.stringify({
          DISPATCHER_UPLINK: 'isp1',
          DISPATCHER_FAMILY: 'ipv4',
          DISPATCHER_INTERFACE: 'ppp0',
          DISPATCHER_OLD_STATE: 'up',
          DISPATCHER_NEW_STATE: 'down',
          DISPATCHER_REASON: 'probes lost',
          DISPATCHER_TIME: '2026-11-22T00:00:00.000Z',
        }),
      },
    ]);
    expect(logged).toEqual(['uplink verdict', 'uplink state changed']);
    release();
  });

  test('mail held by the rate limit goes out when its period ends, on the clock the notifier was given', async () => {
    const runner = new FakeRunner();
    const clock = new ManualClock();
    const notifier = new Notifier({ runner, log, clock }, { exec: [], timeoutMs: 1000, email: { to: ['ops@example.test'], from: 'gw@example.test', everyMs: 60_000 } });
    // nodemailer builds each message with real I/O before sendmail runs: wait (in real time) for the n-th mail.
    const subjects = async (n: number): Promise<string[]> => {
      for (let i = 0; i < 1000 && runner.calls.length < n; i++) await new Promise((resolve) => setTimeout(resolve, 2));
      return runner.calls.map((c) => /^Subject: (.*)$/m.exec(c.input ?? '')?.[1] ?? '');
    };
    notifier.notify(down('isp1', clock.now()), 'ppp0');
    expect(await subjects(1)).toEqual([expect.stringMatching(/isp1 DOWN: probes lost$/)]);
    expect(clock.pendingTimers()).toBe(0);
    await clock.advance(5000);
    notifier.notify(up('isp1', clock.now()), 'ppp0');
    // Held until a minute after the first mail: its timer is still waiting a moment before, and gone once it fired.
    await clock.advance(60_000 - 5000 - 1);
    expect(clock.pendingTimers()).toBe(1);
    await clock.advance(1);
    expect(clock.pendingTimers()).toBe(0);
    expect(await subjects(2)).toEqual([expect.stringMatching(/isp1 DOWN: probes lost$/), expect.stringMatching(/isp1 up: targets answer$/)]);
    notifier.stop();
  });
  test('a mail waits for the run that reroutes around the change, so it never leaves by the line that just died', async () => {
    const runner = new FakeRunner();
    const notifier = new Notifier({ runner, log }, { exec: [], timeoutMs: 1000, email: { to: ['ops@example.test'], from: 'gw@example.test', everyMs: 0 } });
    let rerouted: () => void = () => undefined;
    notifier.notify(down('isp1', Date.UTC(2026, 10, 22)), 'ppp0', new Promise<void>((resolve) => (rerouted = resolve)));
    // Long enough for nodemailer to build a message (real I/O) had it started: nothing may reach sendmail yet.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(runner.calls).toEqual([]);
    rerouted();
    for (let i = 0; i < 1000 && runner.calls.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 2));
    expect(runner.calls.map((c) => c.argv)).toEqual([['/usr/sbin/sendmail', '-t', '-i']]);
    notifier.stop();
  });
});

describe('mail through the local sendmail', () => {
  test('the message goes to sendmail -t -i on stdin, through the exec seam', async () => {
    const { sendMail } = await import('../../src/system/mail.js');
    const runner = new FakeRunner();
    await sendMail(runner, { to: ['ops@example.test'], from: 'gw@example.test', everyMs: 0 }, '[dispatcher gw1] isp1 DOWN: probes lost', 'isp1 is down now.\n');
    expect(runner.calls.map((c) => c.argv)).toEqual([['/usr/sbin/sendmail', '-t', '-i']]);
    const message = runner.calls[0]?.input ?? '';
    expect(message).toMatch(/^From: gw@example\.test$/m);
    expect(message).toMatch(/^To: ops@example\.test$/m);
    expect(message).toMatch(/^Subject: \[dispatcher gw1\] isp1 DOWN: probes lost$/m);
    expect(message).toContain('isp1 is down now.');
  });
});

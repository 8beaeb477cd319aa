import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { loadConfig, parseConfig } from '../../src/config/load.js';
import type { ConfigError } from '../../src/model/errors.js';
import { problemsOf } from '../helpers/config-problems.js';

/** One gateway of a pair. */
const HA = 'ha: { peer: 198.19.255.2, interface: sync0, key: /etc/dispatcher/ha.key, lan_address: 198.18.0.1/16, priority: 150 }\n';

const BASE = `
lan:
  interfaces: [lan0]
  subnets: [198.18.0.0/16]
uplinks:
  - name: isp1
    interface: ppp0
    gateway: 198.51.100.1
    weight: 2
    probe: { targets: [203.0.113.100] }
  - name: isp2
    interface: ppp1
`;

describe('a valid config', () => {
  test('gets defaults and normalised values', () => {
    const config = parseConfig(BASE, 'test.yaml');
    const health = { intervalMs: 100, standbyIntervalMs: 1000, timeoutMs: 500, down: 8, up: 10, lossPercent: 50, window: 50, latencyMs: 0, reliability: 1, holdMs: 0 };
    expect(config.uplinks).toEqual([
      { name: 'isp1', interface: 'ppp0', gateway: '198.51.100.1', weight: 2, tier: 1, failback: 'keep', ipparam: 'isp1', probe: { targets: [{ method: 'icmp', address: '203.0.113.100' }], ...health } },
      { name: 'isp2', interface: 'ppp1', weight: 1, tier: 1, failback: 'keep', ipparam: 'isp2', probe: { targets: [], ...health } },
    ]);
    expect(config.damping).toEqual({ halfLifeMs: 30_000, suppress: 2.5, reuse: 1 });
    expect(config.staticRoutes).toEqual([]);
    expect(config.notify).toEqual({ exec: [], timeoutMs: 10_000 });
    expect(config.scan.schedule).toBe('*/30 * * * * *');
    expect(config.state).toBe('/var/lib/dispatcher');
    expect(config.socket).toBe('/run/dispatcher/dispatcher.sock');
    expect(config.marks.mask).toBe(0xff000000);
    expect(config.tables.base).toBe(3100);
    expect(config.rules.priority).toBe(4100);
    expect(config.clients).toEqual({ expireSeconds: 7 * 86400, max: 65536, perMac: 64 });
    expect(config.groups.base).toBe(64100);
    expect(config.ddns).toBeUndefined();
  });

  test('dynamic DNS and public-address URLs: defaults, names normalised', () => {
    const text = BASE.replace('    interface: ppp1\n', '    interface: ppp1\n    public_address: { url: "http://ip.example.test/json", field: ip }\n');
    const config = parseConfig(`${text}ddns: { server: ns1.example.test, zone: Example.Test., name: gw.example.test., key: /etc/dispatcher/ddns.key, exclude: [isp2] }\n`, 'test.yaml');
    expect(config.ddns).toEqual({ server: 'ns1.example.test', port: 53, zone: 'example.test', name: 'gw.example.test', keyFile: '/etc/dispatcher/ddns.key', ttl: 60, exclude: ['isp2'], everyMs: 300_000, timeoutMs: 5000 });
    expect(config.uplinks[1]?.publicAddress).toEqual({ url: 'http://ip.example.test/json', field: 'ip', everyMs: 300_000, timeoutMs: 5000 });
  });

  test('health settings: global defaults, per-uplink overrides under probe', () => {
    const config = parseConfig(
      `${BASE}\nhealth: { interval: 200ms, down: 5, loss: "30%", damping: { half_life: 1m } }\n`.replace(
        'probe: { targets: [203.0.113.100] }',
        'probe: { targets: [203.0.113.100, 203.0.113.101], reliability: 2, timeout: 1s, hold: 10s }',
      ),
      'test.yaml',
    );
    expect(config.uplinks[0]?.probe).toMatchObject({ intervalMs: 200, timeoutMs: 1000, down: 5, lossPercent: 30, reliability: 2, holdMs: 10_000 });
    expect(config.uplinks[1]?.probe).toMatchObject({ intervalMs: 200, timeoutMs: 500, down: 5, reliability: 1, holdMs: 0 });
    expect(config.damping.halfLifeMs).toBe(60_000);
  });

  test('static routes, notifications and ppp identity', () => {
    const config = parseConfig(
      `${BASE}\nstatic_routes:\n  - { destination: 203.0.113.64/26, via: [isp2, isp1] }\nnotify:\n  exec: [/bin/true]\n  email: { to: ops@example.test, from: gw@example.test, smtp: "mail.example.test:2525" }\n`.replace(
        'name: isp2',
        'name: isp2\n    ipparam: dsl-line-2',
      ),
      'test.yaml',
    );
    expect(config.staticRoutes).toEqual([{ destination: '203.0.113.64/26', via: ['isp2', 'isp1'] }]);
    expect(config.notify).toEqual({ exec: ['/bin/true'], timeoutMs: 10_000, email: { to: ['ops@example.test'], from: 'gw@example.test', smtp: { host: 'mail.example.test', port: 2525 }, everyMs: 300_000 } });
    expect(config.uplinks[1]?.ipparam).toBe('dsl-line-2');
  });

  test('one gateway of a pair: its VRRP settings with their defaults, each shared address parsed', () => {
    const config = parseConfig(`${BASE}${HA}`.replace('weight: 2', 'weight: 2\n    ha_address: 198.51.100.10/26'), 'test.yaml');
    expect(config.ha).toEqual({ peer: '198.19.255.2', interface: 'sync0', keyFile: '/etc/dispatcher/ha.key', lanAddress: { address: '198.18.0.1', prefix: 16 }, priority: 150, routerId: 51, preempt: false, port: 7790 });
    expect(config.uplinks[0]?.haAddress).toEqual({ address: '198.51.100.10', prefix: 26 });
    expect(config.uplinks[1]?.haAddress).toBeUndefined();
    expect(parseConfig(BASE, 'test.yaml').ha).toBeUndefined();
  });

  test('a line only the master of a pair holds: its connect and disconnect commands, as argument lists', () => {
    const config = parseConfig(`${BASE}${HA}`.replace('interface: ppp1', 'interface: ppp1\n    ha_connect: [/usr/bin/pon, dsl provider]\n    ha_disconnect: [/usr/bin/poff, dsl provider]'), 'test.yaml');
    expect(config.uplinks[1]?.haSession).toEqual({ connect: ['/usr/bin/pon', 'dsl provider'], disconnect: ['/usr/bin/poff', 'dsl provider'] });
    expect(config.uplinks[0]?.haSession).toBeUndefined();
  });

  test('--state and --socket override the file', () => {
    const config = parseConfig(BASE, 'test.yaml', { state: '/tmp/s', socket: '/tmp/s.sock' });
    expect([config.state, config.socket]).toEqual(['/tmp/s', '/tmp/s.sock']);
  });

  test('every example in pools/ is valid', () => {
    const dir = new URL('../../pools/', import.meta.url);
    const examples = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(examples.length).toBeGreaterThanOrEqual(2);
    for (const file of examples) {
      expect(() => parseConfig(readFileSync(new URL(file, dir), 'utf8'), file)).not.toThrow();
    }
  });
});

// Each invalid config, the field the message must name, and a word of the problem.
const DDNS = 'ddns: { server: 203.0.113.53, zone: example.test, name: gw.example.test, key: /k }';
const INVALID: [string, string, string, RegExp][] = [
  ['ddns name outside its zone', `${BASE}${DDNS.replace('gw.example.test', 'gw.example.org')}`, 'ddns.name', /not inside the zone example.test/],
  ['ddns server not a host', `${BASE}${DDNS.replace('203.0.113.53', '"ns;reboot"')}`, 'ddns.server', /not a host name or unicast IPv4 address/],
  ['ddns zone missing', `${BASE}${DDNS.replace('zone: example.test, ', '')}`, 'ddns.zone', /missing/],
  ['ddns key missing', `${BASE}${DDNS.replace(', key: /k', '')}`, 'ddns.key', /missing/],
  ['ddns key relative', `${BASE}${DDNS.replace('/k', 'ddns.key')}`, 'ddns.key', /absolute path/],
  ['ddns excludes an unknown uplink', `${BASE}${DDNS.replace(' }', ', exclude: [isp9] }')}`, 'ddns.exclude[0]', /"isp9" is not an uplink/],
  ['ddns ttl zero', `${BASE}${DDNS.replace(' }', ', ttl: 0 }')}`, 'ddns.ttl', /whole number from 1/],
  ['ddns unknown key', `${BASE}${DDNS.replace(' }', ', zones: x }')}`, 'ddns.zones', /did you mean "zone"/],
  ['public address not http', BASE.replace('weight: 2', 'weight: 2\n    public_address: { url: "ftp://ip.example.test/" }'), 'uplinks[0].public_address.url', /not an http/],
  ['public address url missing', BASE.replace('weight: 2', 'weight: 2\n    public_address: { field: ip }'), 'uplinks[0].public_address.url', /missing/],
  ['public address field not a key', BASE.replace('weight: 2', 'weight: 2\n    public_address: { url: "http://a.test/", field: "a b" }'), 'uplinks[0].public_address.field', /not a JSON key/],
  ['metrics listen not address:port', `${BASE}metrics: { listen: "localhost" }`, 'metrics.listen', /not address:port/],
  ['groups base out of range', `${BASE}groups: { base: 0 }`, 'groups.base', /whole number from 1/],
  ['unknown top-level key', `${BASE}\nuplink: []`, 'uplink', /did you mean "uplinks"/],
  ['unknown uplink key', BASE.replace('weight: 2', 'wieght: 2'), 'uplinks[0].wieght', /did you mean "weight"/],
  ['lan missing', 'uplinks: [{ name: a, interface: eth1 }]', 'lan', /missing/],
  ['lan interfaces missing', 'lan: {}\nuplinks: [{ name: a, interface: eth1 }]', 'lan.interfaces', /missing/],
  ['lan interfaces empty', 'lan: { interfaces: [] }\nuplinks: [{ name: a, interface: eth1 }]', 'lan.interfaces', /empty/],
  ['lan not a mapping', 'lan: [lan0]\nuplinks: [{ name: a, interface: eth1 }]', 'lan', /mapping/],
  ['bad lan interface name', BASE.replace('[lan0]', '["lan0;reboot"]'), 'lan.interfaces[0]', /not a valid interface name/],
  ['wildcard interface', BASE.replace('interface: ppp1', 'interface: ppp+'), 'uplinks[1].interface', /not a valid interface name/],
  ['interface too long', BASE.replace('interface: ppp1', 'interface: abcdefghijklmnop'), 'uplinks[1].interface', /not a valid/],
  ['duplicate lan interface', BASE.replace('[lan0]', '[lan0, lan0]'), 'lan.interfaces[1]', /twice/],
  ['bad subnet', BASE.replace('198.18.0.0/16', '198.18.0.1/16'), 'lan.subnets[0]', /zero host bits/],
  ['overlapping subnets', BASE.replace('[198.18.0.0/16]', '[198.18.0.0/16, 198.18.4.0/24]'), 'lan.subnets[1]', /overlaps 198.18.0.0\/16/],
  ['uplinks missing', 'lan: { interfaces: [lan0] }', 'uplinks', /missing/],
  ['uplinks empty', 'lan: { interfaces: [lan0] }\nuplinks: []', 'uplinks', /empty/],
  ['uplinks not a list', 'lan: { interfaces: [lan0] }\nuplinks: { name: a }', 'uplinks', /must be a list/],
  ['uplink name missing', BASE.replace('name: isp2', 'gateway: 192.0.2.1'), 'uplinks[1].name', /missing/],
  ['uplink name bad', BASE.replace('name: isp2', 'name: "2isp"'), 'uplinks[1].name', /not a valid name/],
  ['uplink interface missing', BASE.replace('interface: ppp1', 'weight: 1'), 'uplinks[1].interface', /missing/],
  ['duplicate uplink name', BASE.replace('name: isp2', 'name: isp1'), 'uplinks[1].name', /already used by uplinks\[0\]/],
  ['duplicate uplink interface', BASE.replace('interface: ppp1', 'interface: ppp0'), 'uplinks[1].interface', /already used/],
  ['lan interface is an uplink', BASE.replace('interface: ppp1', 'interface: lan0'), 'uplinks[1].interface', /also a LAN interface/],
  ['bad gateway', BASE.replace('198.51.100.1', '198.51.100'), 'uplinks[0].gateway', /not a unicast IPv4/],
  ['multicast gateway', BASE.replace('198.51.100.1', '224.0.0.1'), 'uplinks[0].gateway', /not a unicast IPv4/],
  ['gateway inside the LAN', BASE.replace('198.51.100.1', '198.18.0.1'), 'uplinks[0].gateway', /inside LAN subnet/],
  ['weight zero', BASE.replace('weight: 2', 'weight: 0'), 'uplinks[0].weight', /1 to 256/],
  ['weight negative', BASE.replace('weight: 2', 'weight: -3'), 'uplinks[0].weight', /1 to 256/],
  ['weight fractional', BASE.replace('weight: 2', 'weight: 1.5'), 'uplinks[0].weight', /whole number/],
  ['weight text', BASE.replace('weight: 2', 'weight: heavy'), 'uplinks[0].weight', /whole number/],
  ['probe target bad', BASE.replace('[203.0.113.100]', '[example.com]'), 'uplinks[0].probe.targets[0]', /not a unicast IPv4/],
  ['probe target twice', BASE.replace('[203.0.113.100]', '[203.0.113.100, 203.0.113.100]'), 'uplinks[0].probe.targets[1]', /twice/],
  ['bad cron', `${BASE}\nscan: { schedule: "every minute" }`, 'scan.schedule', /not a cron expression/],
  ['relative state path', `${BASE}\nstate: var/lib/x`, 'state', /absolute path/],
  ['relative socket path', `${BASE}\nsocket: x.sock`, 'socket', /absolute path/],
  ['mask zero', `${BASE}\nmarks: { mask: "0x0" }`, 'marks.mask', /non-zero/],
  [
    '16 uplinks with the default mask',
    `lan: { interfaces: [lan0] }\nuplinks:\n${Array.from({ length: 16 }, (_, i) => `  - { name: u${i}, interface: eth${i + 1} }`).join('\n')}`,
    'marks.mask',
    /holds 15 uplinks, not 16.*0xffc00000/,
  ],
  ['mask too narrow', `${BASE}\nmarks: { mask: "0x3" }`, 'marks.mask', /holds 1 uplinks/],
  ['mask unreadable', `${BASE}\nmarks: { mask: "ff" }`, 'marks.mask', /non-zero 32-bit/],
  ['table range hits main', `${BASE}\ntables: { base: 200 }`, 'tables.base', /reserved table 253/],
  ['rule priority too high', `${BASE}\nrules: { priority: 32700 }`, 'rules.priority', /whole number from 1 to 32666/],
  ['expire too short', `${BASE}\nclients: { expire: 10s }`, 'clients.expire', /a minute or more/],
  ['max zero', `${BASE}\nclients: { max: 0 }`, 'clients.max', /1 to 1000000/],
  ['per-MAC cap zero', `${BASE}\nclients: { per_mac: 0 }`, 'clients.per_mac', /1 to 1000000/],
  ['unknown balancing mode', `${BASE}\nbalance: { mode: round-robin }`, 'balance.mode', /not a balancing mode.*write host .*destination .*connection/],
  ['a rebalance schedule that is no cron expression', `${BASE}\nbalance: { rebalance: "every hour" }`, 'balance.rebalance', /cron expression/],
  ['an assignment measure that does not exist', `${BASE}\nbalance: { assign: bytes }`, 'balance.assign', /write count .* or traffic/],
  ['health interval too short', `${BASE}\nhealth: { interval: 5ms }`, 'health.interval', /duration from 20ms to 1m/],
  ['health down zero', `${BASE}\nhealth: { down: 0 }`, 'health.down', /1 to 100/],
  ['health loss over 100', `${BASE}\nhealth: { loss: "150%" }`, 'health.loss', /percentage/],
  ['unknown health key', `${BASE}\nhealth: { intervall: 1s }`, 'health.intervall', /did you mean "interval"/],
  ['probe override bad', BASE.replace('probe: { targets: [203.0.113.100] }', 'probe: { targets: [203.0.113.100], timeout: soon }'), 'uplinks[0].probe.timeout', /not a duration/],
  ['reliability above targets', BASE.replace('probe: { targets: [203.0.113.100] }', 'probe: { targets: [203.0.113.100], reliability: 2 }'), 'uplinks[0].probe.reliability', /only 1 are listed/],
  ['damping reuse above suppress', `${BASE}\nhealth: { damping: { suppress: 2, reuse: 3 } }`, 'health.damping.reuse', /not below suppress/],
  ['duplicate ipparam', BASE.replace('name: isp2', 'name: isp2\n    ipparam: isp1'), 'uplinks[1].ipparam', /already identifies uplinks\[0\]/],
  ['static route to an unknown uplink', `${BASE}\nstatic_routes: [{ destination: 203.0.113.64/26, via: [isp9] }]`, 'static_routes[0].via[0]', /no uplink is named "isp9"/],
  ['static default route', `${BASE}\nstatic_routes: [{ destination: 0.0.0.0/0, via: [isp1] }]`, 'static_routes[0].destination', /other than 0.0.0.0\/0/],
  ['static route without via', `${BASE}\nstatic_routes: [{ destination: 203.0.113.64/26 }]`, 'static_routes[0].via', /missing/],
  ['notify exec relative', `${BASE}\nnotify: { exec: [hook.sh] }`, 'notify.exec[0]', /not an absolute path/],
  ['email without from', `${BASE}\nnotify: { email: { to: ops@example.test } }`, 'notify.email.from', /not an e-mail address/],
  ['email smtp without port', `${BASE}\nnotify: { email: { to: ops@example.test, from: a@b.c, smtp: mail } }`, 'notify.email.smtp', /host:port/],
  ['ha_address without a pair', BASE.replace('weight: 2', 'weight: 2\n    ha_address: 198.51.100.10/26'), 'uplinks[0].ha_address', /no ha section.*add the ha section/],
  ['ha_address without its prefix', `${BASE}${HA}`.replace('weight: 2', 'weight: 2\n    ha_address: 198.51.100.10'), 'uplinks[0].ha_address', /not a host address with its prefix length/],
  ['ha_address a network address', `${BASE}${HA}`.replace('weight: 2', 'weight: 2\n    ha_address: 198.51.100.0/26'), 'uplinks[0].ha_address', /not a host address/],
  ['ha_address inside the LAN', `${BASE}${HA}`.replace('weight: 2', 'weight: 2\n    ha_address: 198.18.9.9/16'), 'uplinks[0].ha_address', /inside LAN subnet 198.18.0.0\/16/],
  [
    'ha_address twice',
    `${BASE}${HA}`.replace('weight: 2', 'weight: 2\n    ha_address: 198.51.100.10/26').replace('interface: ppp1', 'interface: ppp1\n    ha_address: 198.51.100.10/26'),
    'uplinks[1].ha_address',
    /already the shared address of uplinks\[0\]/,
  ],
  ['ha_connect without a pair', BASE.replace('interface: ppp1', 'interface: ppp1\n    ha_connect: [/usr/bin/pon, dsl]\n    ha_disconnect: [/usr/bin/poff, dsl]'), 'uplinks[1].ha_connect', /no ha section/],
  ['ha_connect without ha_disconnect', `${BASE}${HA}`.replace('interface: ppp1', 'interface: ppp1\n    ha_connect: [/usr/bin/pon, dsl]'), 'uplinks[1].ha_connect', /without ha_disconnect.*keep the session/],
  ['ha_connect a relative program', `${BASE}${HA}`.replace('interface: ppp1', 'interface: ppp1\n    ha_connect: [pon, dsl]'), 'uplinks[1].ha_connect', /starts with "pon", not an absolute path/],
  ['ha_connect empty', `${BASE}${HA}`.replace('interface: ppp1', 'interface: ppp1\n    ha_connect: []'), 'uplinks[1].ha_connect', /is empty/],
  ['ha_connect as a shell line', `${BASE}${HA}`.replace('interface: ppp1', 'interface: ppp1\n    ha_connect: "pon dsl"'), 'uplinks[1].ha_connect', /must be a list/],
  ['ha_disconnect alone', `${BASE}${HA}`.replace('interface: ppp1', 'interface: ppp1\n    ha_disconnect: [/usr/bin/poff, dsl]'), 'uplinks[1].ha_disconnect', /without ha_connect/],
  ['ha_connect with a shared address', `${BASE}${HA}`.replace('interface: ppp1', 'interface: ppp1\n    ha_connect: [/usr/bin/pon, dsl]\n    ha_address: 198.51.100.10/26'), 'uplinks[1].ha_address', /session only the master holds/],
  ['ha with dynamic DNS', `${BASE}${HA}${DDNS}\n`, 'ddns', /both gateways would publish/],
  ['ha with the LAN’s IPv6 on', `${BASE.replace('  subnets: [198.18.0.0/16]', '  subnets: [198.18.0.0/16]\n  ipv6: { mode: nat, prefix: "fd00:1::/64" }')}${HA}`, 'lan.ipv6.mode', /carries IPv4 only.*set lan.ipv6.mode: off/],
  ['ha without the peer', `${BASE}${HA.replace('peer: 198.19.255.2, ', '')}`, 'ha.peer', /missing/],
  ['ha lan_address outside the LAN', `${BASE}${HA.replace('198.18.0.1/16', '192.0.2.1/24')}`, 'ha.lan_address', /outside lan.subnets/],
  ['ha on a LAN interface', `${BASE}${HA.replace('interface: sync0', 'interface: lan0')}`, 'ha.interface', /also a LAN interface/],
  ['ha on an uplink interface', `${BASE}${HA.replace('interface: sync0', 'interface: ppp1')}`, 'ha.interface', /interface of uplinks\[1\]/],
  ['ha with two LAN interfaces', `${BASE.replace('[lan0]', '[lan0, lan1]')}${HA}`, 'ha.lan_address', /one interface.*bridge/],
  ['ha priority out of range', `${BASE}${HA.replace('priority: 150', 'priority: 255')}`, 'ha.priority', /1 to 254/],
  ['ha key relative', `${BASE}${HA.replace('/etc/dispatcher/ha.key', 'ha.key')}`, 'ha.key', /absolute path/],
  ['YAML syntax', 'lan: [a\nuplinks: x', '(YAML line', /./],
  ['duplicate YAML key', `${BASE}\nlan: { interfaces: [x] }`, '(YAML line', /unique/i],
  ['not a mapping', '- a\n- b', '(top level)', /mapping/],
  ['alias before its anchor (found by fuzzing)', `${BASE}\nscan: *later`, '(YAML aliases)', /Unresolved alias/],
  [
    'alias bomb',
    `${BASE}\nx: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\ny: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nz: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nw: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]`,
    '(YAML aliases)',
    /alias count/i,
  ],
];

describe.each(INVALID)('invalid config: %s', (_name, text, field, problem) => {
  test(`names ${field} and says what to do`, () => {
    const problems = problemsOf(text);
    const hit = problems.find((p) => p.field.startsWith(field));
    expect(hit).toBeDefined();
    expect(`${hit?.problem} ${hit?.fix}`).toMatch(problem);
    expect(hit?.fix.length).toBeGreaterThan(5);
  });
});

test('all problems are reported at once', () => {
  const problems = problemsOf(BASE.replace('weight: 2', 'weight: 0').replace('interface: ppp1', 'interface: lan0'));
  expect(problems.map((p) => p.field)).toEqual(['uplinks[0].weight', 'uplinks[1].interface']);
});

test('a hook program that does not exist is refused when the config is loaded', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/dispatcher-config-`);
  try {
    await writeFile(`${dir}/c.yaml`, `${BASE}\nnotify: { exec: [/nonexistent/hook] }\n`);
    await expect(loadConfig(`${dir}/c.yaml`)).rejects.toThrow(/notify.exec\[0\]: \/nonexistent\/hook is not an executable file \(ENOENT\)/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('the TSIG key must be readable and look like a key when the config is loaded', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const dir = await mkdtemp(`${tmpdir()}/dispatcher-config-`);
  const config = (key: string): string => `${BASE}ddns: { server: 203.0.113.53, zone: example.test, name: gw.example.test, key: ${key} }\n`;
  try {
    await writeFile(`${dir}/missing.yaml`, config(`${dir}/none.key`));
    await expect(loadConfig(`${dir}/missing.yaml`)).rejects.toThrow(/ddns.key: cannot read .*none.key \(ENOENT\) — create it with "tsig-keygen/);
    await writeFile(`${dir}/junk.key`, 'not a key\n');
    await writeFile(`${dir}/junk.yaml`, config(`${dir}/junk.key`));
    await expect(loadConfig(`${dir}/junk.yaml`)).rejects.toThrow(/ddns.key: .*junk.key is not a TSIG key file/);
    await writeFile(`${dir}/good.key`, 'key "gw" {\n\talgorithm hmac-sha256;\n\tsecret "FE73yfJvvVze9Wf8XiZ86ArGNIZ1VwBx2fpgKuMTZ2U=";\n};\n');
    await writeFile(`${dir}/good.yaml`, config(`${dir}/good.key`));
    expect((await loadConfig(`${dir}/good.yaml`)).ddns?.keyFile).toBe(`${dir}/good.key`);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test('an unreadable file is a config error naming --config', async () => {
  await expect(loadConfig('/nonexistent/dispatcher.yaml')).rejects.toThrow(/--config: cannot read \/nonexistent\/dispatcher.yaml \(ENOENT\)/);
});

test('the message lists each field with its fix', () => {
  try {
    parseConfig(BASE.replace('weight: 2', 'weight: 0'), 'office.yaml');
  } catch (error) {
    expect((error as Error).message).toBe(
      'invalid configuration in office.yaml:\n  uplinks[0].weight: must be a whole number from 1 to 256, not 0 — use a positive integer (it is also the multipath route weight); 1 is the default',
    );
  }
  expect.assertions(1);
});

test('an unknown key that is empty, very long or holds control characters is shown quoted and cut (found by fuzzing)', () => {
  const fields = (text: string): string[] => {
    try {
      parseConfig(text, 'x.yaml');
    } catch (error) {
      return (error as ConfigError).problems.map((p) => p.field);
    }
    return [];
  };
  expect(fields(`${BASE}\n"": 1`)).toEqual(['""']);
  expect(fields(`${BASE}\n"a\\nb\\u001b[31m": 1`)).toEqual(['"a\\nb\\u001b[31m"']);
  expect(fields(`${BASE}\n${'k'.repeat(500)}: 1`)).toEqual([`"${'k'.repeat(40)}…"`]);
});

describe('the schema and the cross-field checks together', () => {
  const fieldsOf = (text: string): string[] => problemsOf(text).map((p) => `${p.field}: ${p.problem}`);

  test('collisions are still found when other sections fail', () => {
    const text = `${BASE.replace('name: isp2', 'name: isp1').replace('interface: ppp1', 'interface: lan0')}health: { interval: soon }\nddns: { zone: "not a zone" }\nstatic_routes: [{ destination: 0.0.0.0/0, via: [isp9] }]\n`;
    expect(fieldsOf(text)).toEqual(
      expect.arrayContaining([
        'health.interval: "soon" is not a duration from 20ms to 1m',
        'ddns.zone: "not a zone" is not a DNS name',
        'static_routes[0].destination: "0.0.0.0/0" is not a network in CIDR form (other than 0.0.0.0/0)',
        'uplinks[1].name: "isp1" is already used by uplinks[0]',
        'uplinks[1].interface: lan0 is also a LAN interface',
        'static_routes[0].via[0]: no uplink is named "isp9"',
      ]),
    );
  });

  test('an earlier uplink that fails its own checks does not shift the index named in a collision', () => {
    const text = `${BASE.replace('weight: 2', 'weight: 0')}  - name: isp2\n    interface: ppp2\n`;
    expect(fieldsOf(text)).toEqual(['uplinks[0].weight: must be a whole number from 1 to 256, not 0', 'uplinks[2].name: "isp2" is already used by uplinks[1]']);
  });

  test('reliability is checked per uplink against its targets, with the global setting where it has none', () => {
    expect(fieldsOf(`${BASE}health: { reliability: 2 }\n`)).toEqual([
      'uplinks[0].probe.reliability: needs 2 targets to answer but only 1 are listed',
      'uplinks[1].probe.reliability: needs 2 targets to answer but only the gateway is probed',
    ]);
    expect(
      parseConfig(
        `${BASE}health: { reliability: 2 }\n`.replace('targets: [203.0.113.100]', 'targets: [203.0.113.100, 203.0.113.101]').replace('interface: ppp1', 'interface: ppp1\n    probe: { reliability: 1 }'),
        'x.yaml',
      ).uplinks.map((u) => u.probe.reliability),
    ).toEqual([2, 1]);
  });

  test('unknown keys are found at every depth, with a suggestion', () => {
    const text = `${BASE.replace('targets: [203.0.113.100]', 'targets: [203.0.113.100], intervall: 1s')}health: { damping: { halflife: 10s } }\nnotify: { email: { to: a@b.c, from: a@b.c, smpt: "m:25" } }\n`;
    expect(problemsOf(text).map((p) => `${p.field}: ${p.fix}`)).toEqual(['uplinks[0].probe.intervall: did you mean "interval"?', 'health.damping.halflife: did you mean "half_life"?', 'notify.email.smpt: did you mean "smtp"?']);
  });

  test('a key written without a value takes its default; a list entry without one is refused', () => {
    const config = parseConfig(`${BASE}health:\n  hold:\n  damping:\nclients:\n  max:\n`, 'x.yaml');
    expect([config.uplinks[0]?.probe.holdMs, config.damping.halfLifeMs, config.clients.max]).toEqual([0, 30_000, 65536]);
    expect(fieldsOf(BASE.replace('[lan0]', '[lan0, null]'))).toEqual(['lan.interfaces[1]: null is not a valid interface name']);
    expect(fieldsOf(`${BASE}  -\n`)).toEqual(['uplinks[2]: must be a mapping, not null']);
  });

  test('more uplinks than the marks and tables have room for', () => {
    const many = `lan: { interfaces: [lan0] }\nmarks: { mask: "0xffffffff" }\nuplinks:\n${Array.from({ length: 33 }, (_, i) => `  - { name: u${i}, interface: eth${i + 1} }`).join('\n')}`;
    expect(fieldsOf(many)).toEqual(['uplinks: has 33 entries']);
  });

  test('one value failing several checks of one field is one problem', () => {
    expect(fieldsOf(BASE.replace('weight: 2', 'weight: -0.5'))).toEqual(['uplinks[0].weight: must be a whole number from 1 to 256, not -0.5']);
  });
});

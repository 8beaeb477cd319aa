// The fake kernel itself: what it answers parses with our parsers and matches
// what the real tools printed in the captured lab; it keeps the real tools'
// semantics where the code depends on them; it refuses what it does not know.

import { describe, expect, test } from '@jest/globals';
import { DEFAULT_UPLINKS } from '../../src/lab/topology.js';
import { CommandError } from '../../src/model/errors.js';
import { parseIpAddr, parseIpRoutes, parseIpRules } from '../../src/parse/ip-json.js';
import { parseIpsetSave } from '../../src/parse/ipset.js';
import { parseIptablesSave } from '../../src/parse/iptables-save.js';
import { interfaceOfLinkEvent } from '../../src/parse/link-events.js';
import { parseNeighbourEvent, parseNeighbourTable } from '../../src/parse/neighbours.js';
import { parsePingLine } from '../../src/parse/ping.js';
import { forgetConnections } from '../../src/system/conntrack.js';
import { tryKernelFeatures } from '../../src/system/doctor.js';
import { FakeKernel } from '../helpers/fake-kernel.js';
import { fixture } from '../helpers/fixtures.js';

const stdout = async (fake: FakeKernel, argv: string[]): Promise<string> => (await fake.run(argv)).stdout;
const restore = (fake: FakeKernel, input: string) => fake.run(['iptables-restore', '--wait', '10', '--noflush'], { input });
const batch = (fake: FakeKernel, input: string) => fake.run(['ip', '-batch', '-'], { input });
const ipsetRestore = (fake: FakeKernel, input: string) => fake.run(['ipset', '-exist', 'restore'], { input });

/** The lab's gateway before the dispatcher's first start, as src/lab/topology.ts builds it. */
const labGateway = (): FakeKernel => FakeKernel.gateway({ lan: 'lan0', uplinks: DEFAULT_UPLINKS, clients: 8 });

/** The payloads of the lab's first start (golden file of the render tests), by command. */
function firstStartPayloads(): Record<string, string> {
  const sections: Record<string, string> = {};
  let current = '';
  for (const line of fixture('golden/lab-first-start.txt').split('\n')) {
    if (line.startsWith('# ')) current = line.slice(2);
    else if (line !== '') sections[current] = `${sections[current] ?? ''}${line}\n`;
  }
  return sections;
}

async function programLab(fake: FakeKernel): Promise<void> {
  const payloads = firstStartPayloads();
  await fake.run(['sysctl', '-q', '-w', ...(payloads['sysctl -w'] ?? '').trim().split('\n')]);
  await ipsetRestore(fake, payloads['ipset -exist restore'] as string);
  await restore(fake, payloads['iptables-restore --noflush'] as string);
  await batch(fake, payloads['ip -batch -'] as string);
}

async function rejection(promise: Promise<unknown>): Promise<CommandError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CommandError);
  return error as CommandError;
}

describe('reads, in the real tools’ formats', () => {
  test('a lab gateway reads like the captured one before the first start: links, routes, rules', async () => {
    const fake = labGateway();
    const withoutMac = (text: string) => parseIpAddr(text).map(({ mac: _, ...link }) => link);
    expect(withoutMac(await stdout(fake, ['ip', '-j', 'addr', 'show']))).toEqual(withoutMac(fixture('ip-addr.json')));
    const pristine = parseIpRoutes(fixture('ip-route.json')).filter((r) => !/^3[0-9]{3}$/.test(r.table));
    expect(parseIpRoutes(await stdout(fake, ['ip', '-4', '-j', 'route', 'show', 'table', 'all']))).toEqual(pristine);
    const kernelRules = parseIpRules(fixture('ip-rule.json')).filter((r) => r.protocol === undefined);
    expect(parseIpRules(await stdout(fake, ['ip', '-j', 'rule', 'show']))).toEqual(kernelRules);
    const neighbours = parseNeighbourTable(await stdout(fake, ['ip', '-4', 'neigh', 'show']));
    expect(neighbours.rejected).toBe(0);
    expect(neighbours.neighbours.filter((n) => n.dev === 'lan0').map((n) => n.ip)).toHaveLength(8);
  });

  test('the first start’s payloads loaded into it read back exactly as the real kernel printed them', async () => {
    const fake = labGateway();
    await programLab(fake);
    // Byte for byte what iptables-save printed in the lab (its date is the fake's fixed one).
    expect(await stdout(fake, ['iptables-save'])).toBe(fixture('iptables-save.txt'));
    expect(parseIpRules(await stdout(fake, ['ip', '-j', 'rule', 'show']))).toEqual(parseIpRules(fixture('ip-rule.json')));
    expect(parseIpRoutes(await stdout(fake, ['ip', '-4', '-j', 'route', 'show', 'table', 'all']))).toEqual(parseIpRoutes(fixture('ip-route.json')));
    const save = parseIpsetSave(await stdout(fake, ['ipset', 'save', 'dispatcher-clients']));
    const real = parseIpsetSave(fixture('ipset-save.txt'));
    // Members and marks; the counters are the lab's traffic, which the fake does not carry (it prints them zero).
    const sorted = (dump: typeof save) => [...dump.entries].map(({ options: { packets: _p, bytes: _b, ...options }, ...entry }) => ({ ...entry, options })).sort((a, b) => (a.member < b.member ? -1 : 1));
    expect(sorted(save)).toEqual(sorted(real));
    const { initval: _a, ...options } = save.sets[0]?.options ?? {};
    const { initval: _b, ...realOptions } = real.sets[0]?.options ?? {};
    expect(options).toEqual(realOptions);
    expect(await stdout(fake, ['ipset', 'list', '-n'])).toBe('dispatcher-clients\n');
    expect(await stdout(fake, ['sysctl', '-e', 'net.ipv4.ip_forward', 'net.ipv4.conf.ppp9.rp_filter', 'net.ipv4.conf.wan0.rp_filter'])).toBe('net.ipv4.ip_forward = 1\nnet.ipv4.conf.wan0.rp_filter = 2\n');
  });

  test('iptables-save -c prints counters; -t prints a table that does not exist without creating it', async () => {
    const fake = labGateway();
    expect(parseIptablesSave(await stdout(fake, ['iptables-save', '-t', 'nat']))).toEqual([
      { name: 'nat', chains: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'].map((name) => ({ name, policy: 'ACCEPT', counters: [0, 0] })), rules: [] },
    ]);
    expect(await stdout(fake, ['iptables-save'])).toBe('');
    await programLab(fake);
    fake.netfilter.count('mangle', 'DISPATCHER-PRE', 2, 7, 700);
    const counted = parseIptablesSave(await stdout(fake, ['iptables-save', '-c', '-t', 'mangle']));
    expect(counted[0]?.rules.find((r) => r.chain === 'DISPATCHER-PRE' && r.args.join(' ') === '-m mark --mark 0x1000000/0xf000000 -j RETURN')?.counters).toEqual([7, 700]);
    expect(await stdout(fake, ['iptables', '-V'])).toContain('nf_tables');
  });

  test('rules are kept in the canonical form iptables-save prints, not as they were written', async () => {
    const fake = new FakeKernel();
    await restore(fake, '*mangle\n:FOO - [0:0]\n-A FOO -m mark --mark 1 -i lo -j MARK --set-mark 2\n-A FOO -s 10.0.0.1 -p tcp --dport 80 -j MARK --set-mark 0x1/0xf\nCOMMIT\n');
    // Measured on iptables 1.8.9 (nf_tables) in a scratch namespace.
    expect((await stdout(fake, ['iptables-save'])).split('\n').filter((l) => l.startsWith('-A'))).toEqual([
      '-A FOO -i lo -m mark --mark 0x1 -j MARK --set-xmark 0x2/0xffffffff',
      '-A FOO -s 10.0.0.1/32 -p tcp -m tcp --dport 80 -j MARK --set-xmark 0x1/0xf',
    ]);
    // -D finds a rule by its meaning, whichever way it is written.
    await restore(fake, '*mangle\n-D FOO -i lo -m mark --mark 0x1 -j MARK --set-xmark 0x2/0xffffffff\nCOMMIT\n');
    expect((await stdout(fake, ['iptables-save'])).match(/^-A /gm)).toHaveLength(1);
  });
});

describe('writes, with the real tools’ semantics', () => {
  test('a -D of a rule that is not there fails the whole table’s transaction: nothing changes', async () => {
    const fake = labGateway();
    await programLab(fake);
    const before = fake.dump();
    const error = await rejection(restore(fake, '*mangle\n:DISPATCHER-PRE - [0:0]\n-F DISPATCHER-COUNT\n-D DISPATCHER-OUT -j ACCEPT\nCOMMIT\n'));
    expect(error.exitCode).toBe(1);
    expect(error.stderr).toMatch(/line 4 failed: Bad rule \(does a matching rule exist in that chain\?\)/);
    expect(fake.dump()).toBe(before);
  });

  test('a -X of a chain still jumped to fails even when emptied first, and leaves the table as it was', async () => {
    const fake = labGateway();
    await programLab(fake);
    const before = fake.dump();
    const error = await rejection(restore(fake, '*nat\n-F DISPATCHER-NAT\n-X DISPATCHER-NAT\nCOMMIT\n'));
    expect(error.exitCode).toBe(4);
    expect(error.stderr).toContain('CHAIN_DEL failed (Device or resource busy): chain DISPATCHER-NAT');
    expect(fake.dump()).toBe(before);
    // Unhooked first, in the same transaction, it goes.
    await restore(fake, '*nat\n-D POSTROUTING -j DISPATCHER-NAT\n-F DISPATCHER-NAT\n-X DISPATCHER-NAT\nCOMMIT\n');
    expect(await stdout(fake, ['iptables-save', '-t', 'nat'])).not.toContain('DISPATCHER');
  });

  test('tables commit one by one: a failure in the second leaves the first committed', async () => {
    const fake = new FakeKernel();
    await rejection(restore(fake, '*mangle\n:A - [0:0]\nCOMMIT\n*nat\n-D POSTROUTING -j MASQUERADE\nCOMMIT\n'));
    expect(parseIptablesSave(await stdout(fake, ['iptables-save'])).map((t) => t.name)).toEqual(['mangle']);
  });

  test('iptables-restore without --noflush (another program reloading its firewall) replaces each table it names', async () => {
    const fake = labGateway();
    await programLab(fake);
    await fake.run(['iptables-restore'], { input: '*mangle\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -i lan0 -j ACCEPT\nCOMMIT\n' });
    const tables = parseIptablesSave(await stdout(fake, ['iptables-save']));
    expect(tables.find((t) => t.name === 'mangle')?.rules.map((r) => r.args.join(' '))).toEqual(['-i lan0 -j ACCEPT']);
    expect(tables.find((t) => t.name === 'nat')?.chains.map((c) => c.name)).toContain('DISPATCHER-NAT');
  });

  test('ipset: -exist add replaces an entry, a changed set is refused, a set in use cannot go, restore stops at the first bad line', async () => {
    const fake = labGateway();
    await programLab(fake);
    // Counters as loaded (a swap carries them), then kept by an -exist add that moves the entry (measured on ipset 7.17).
    await ipsetRestore(fake, 'add dispatcher-clients 198.18.0.10 packets 8 bytes 672 skbmark 0x1000000/0xf000000\n');
    await ipsetRestore(fake, 'add dispatcher-clients 198.18.0.10 skbmark 0x3000000/0xf000000\n');
    expect(await stdout(fake, ['ipset', 'save', 'dispatcher-clients'])).toContain('add dispatcher-clients 198.18.0.10 packets 8 bytes 672 skbmark 0x3000000/0xf000000\n');
    expect((await rejection(ipsetRestore(fake, 'create dispatcher-clients hash:ip family inet hashsize 1024 maxelem 100 skbinfo\n'))).stderr).toContain(
      'Error in line 1: Set cannot be created: set with the same name already exists',
    );
    expect((await rejection(ipsetRestore(fake, 'destroy dispatcher-clients\n'))).stderr).toContain('in use by a kernel component');
    await rejection(ipsetRestore(fake, 'add dispatcher-clients 198.18.0.99 skbmark 0x1000000/0xf000000\nadd nosuch 198.18.0.98\nadd dispatcher-clients 198.18.0.97\n'));
    const members = parseIpsetSave(await stdout(fake, ['ipset', 'save', 'dispatcher-clients'])).entries.map((e) => e.member);
    expect(members).toContain('198.18.0.99');
    expect(members).not.toContain('198.18.0.97');
    expect((await rejection(fake.run(['ipset', 'save', 'nosuch']))).exitCode).toBe(1);
  });

  test('ipset swap exchanges contents under the names; destroying an absent set is accepted with -exist', async () => {
    const fake = new FakeKernel();
    await ipsetRestore(fake, 'create a hash:ip family inet skbinfo\nadd a 10.0.0.1\ncreate b hash:ip family inet skbinfo\nadd b 10.0.0.2\nswap b a\ndestroy b\ndestroy nosuch\n');
    expect(await stdout(fake, ['ipset', 'list', '-n'])).toBe('a\n');
    expect(await stdout(fake, ['ipset', 'save', 'a'])).toContain('add a 10.0.0.2\n');
  });

  test('ip rule: an identical rule is refused (lines before it stay), another protocol is another rule, del matches what it names', async () => {
    const fake = labGateway();
    const error = await rejection(batch(fake, 'rule add priority 100 from all lookup 200 protocol 211\nrule add priority 100 from all lookup 200 protocol 211\n'));
    expect(error.stderr).toBe('RTNETLINK answers: File exists\nCommand failed -:2\n');
    await batch(fake, 'rule add priority 100 from all lookup 200 protocol 212\n');
    expect(
      parseIpRules(await stdout(fake, ['ip', '-j', 'rule', 'show']))
        .filter((r) => r.priority === 100)
        .map((r) => r.protocol),
    ).toEqual(['211', '212']);
    await batch(fake, 'rule del priority 100 from all lookup 200\n');
    expect(
      parseIpRules(await stdout(fake, ['ip', '-j', 'rule', 'show']))
        .filter((r) => r.priority === 100)
        .map((r) => r.protocol),
    ).toEqual(['212']);
    expect((await rejection(batch(fake, 'rule del priority 150 from all lookup 200 protocol 211\n'))).stderr).toContain('No such file or directory');
  });

  test('ip route: replace of the same table and destination replaces it; a gateway off every subnet needs onlink; no carrier shows as linkdown', async () => {
    const fake = labGateway();
    await batch(fake, 'route replace table 3101 default proto 211 via 192.0.2.1 dev ppp0 onlink\nroute replace table 3101 default proto 211 via 192.0.2.9 dev wan0 onlink\n');
    const table = async () => parseIpRoutes(await stdout(fake, ['ip', '-4', '-j', 'route', 'show', 'table', 'all'])).filter((r) => r.table === '3101');
    expect((await table()).map((r) => r.nexthops.map((h) => h.dev))).toEqual([['wan0']]);
    expect((await rejection(batch(fake, 'route replace table 3102 default via 203.0.113.1 dev wan0\n'))).stderr).toContain('Nexthop has invalid gateway');
    fake.setCarrier('wan0', false);
    expect((await table())[0]?.linkdown).toBe(true);
    expect((await rejection(batch(fake, 'route del default table 3999\n'))).stderr).toContain('FIB table does not exist');
  });

  test('conntrack -D exits 1 when nothing matched (tolerated by its caller) and deletes only the marked connections', async () => {
    const fake = labGateway();
    expect(await forgetConnections(fake, 0x10000000, 0xf0000000)).toBe(0);
    fake.connections.push(
      { proto: 'tcp', src: '198.18.0.10', dst: '203.0.113.100', sport: 40000, dport: 443, mark: 0x10000000 },
      { proto: 'udp', src: '198.18.0.11', dst: '203.0.113.100', sport: 40001, dport: 53, mark: 0x20000000 },
    );
    expect((await rejection(fake.run(['conntrack', '-D', '--mark', '0x30000000/0xf0000000']))).exitCode).toBe(1);
    expect(await forgetConnections(fake, 0x10000000, 0xf0000000)).toBe(1);
    expect(fake.connections.map((c) => c.mark)).toEqual([0x20000000]);
  });

  test('sysctl -w sets what exists and fails for what does not; nft deletes whole tables, all or none', async () => {
    const fake = labGateway();
    expect((await rejection(fake.run(['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.ppp9.rp_filter=2']))).exitCode).toBe(1);
    expect(await stdout(fake, ['sysctl', '-e', 'net.ipv4.ip_forward'])).toBe('net.ipv4.ip_forward = 1\n');
    await programLab(fake);
    await rejection(fake.run(['nft', '-f', '-'], { input: 'delete table ip nat\ndelete table ip raw\n' }));
    expect(parseIptablesSave(await stdout(fake, ['iptables-save'])).map((t) => t.name)).toEqual(['mangle', 'nat']);
    await fake.run(['nft', '-f', '-'], { input: 'delete table ip nat\n' });
    expect(parseIptablesSave(await stdout(fake, ['iptables-save'])).map((t) => t.name)).toEqual(['mangle']);
  });
});

describe('the other reads the daemon and doctor issue', () => {
  test('ip route get answers as the kernel’s FIB lookup does, in the format ip prints', async () => {
    const fake = labGateway();
    const get = (mark: number) => fake.run(['ip', '-o', 'route', 'get', '203.0.113.1', 'from', '198.18.0.10', 'iif', 'lan0', 'mark', String(mark)], { okExitCodes: [0, 1, 2] });
    // Measured: without forwarding the kernel routes nothing between interfaces.
    expect(await get(0x1000000)).toEqual({ stdout: '', stderr: 'RTNETLINK answers: No route to host\n', exitCode: 2 });
    await programLab(fake);
    expect((await get(0x1000000)).stdout).toBe('203.0.113.1 from 198.18.0.10 via 192.0.2.1 dev ppp0 table 3133 mark 0x1000000 \\    cache iif lan0 \n');
    // No pool mark: past main (its default suppressed) to the multipath table.
    expect((await get(0)).stdout).toBe('203.0.113.1 from 198.18.0.10 via 192.0.2.1 dev ppp0 table 3100 \\    cache iif lan0 \n');
    await batch(fake, 'neigh add 198.18.1.1 dev lan0 lladdr 02:00:00:00:01:01 nud permanent\n');
    expect(await stdout(fake, ['ip', '-4', 'neigh', 'show'])).toContain('198.18.1.1 dev lan0 lladdr 02:00:00:00:01:01 PERMANENT \n');
  });

  test('doctor’s feature checks run in a scratch namespace of their own, which is gone afterwards; the gateway is untouched', async () => {
    const fake = labGateway();
    const before = fake.dump();
    const features = await tryKernelFeatures(fake);
    expect(Object.keys(features).length).toBeGreaterThan(5);
    expect(Object.entries(features).filter(([, problem]) => problem !== null)).toEqual([]);
    expect([...fake.namespaces.keys()]).toEqual([]);
    expect(fake.dump()).toBe(before);
  });
});

describe('refusing loudly', () => {
  test.each([[['ip', '-6', 'route', 'show']], [['iptables', '-L']], [['ipset', 'list']], [['iptables-restore', '--test']], [['sysctl', 'net.ipv4.ip_forward']], [['nsupdate', '-k', 'key']]])(
    'an unknown command %j throws naming its whole argv',
    async (argv) => {
      await expect(new FakeKernel().run(argv, { input: '' })).rejects.toThrow(JSON.stringify(argv));
    },
  );

  test('unknown lines inside a batch and unknown long-running commands throw too', async () => {
    const fake = labGateway();
    await expect(batch(fake, 'link set lan0 mtu 9000\n')).rejects.toThrow('link set lan0 mtu 9000');
    expect(() => fake.spawn(['ip', 'monitor', 'route'])).toThrow('["ip","monitor","route"]');
  });

  test('a command the model does not cover can be answered by the test', async () => {
    const fake = new FakeKernel().handle(['/usr/sbin/sendmail'], () => ({ stdout: '', stderr: '', exitCode: 0 }));
    await expect(fake.run(['/usr/sbin/sendmail', '-t', '-i'], { input: 'mail' })).resolves.toMatchObject({ exitCode: 0 });
  });
});

describe('processes and printing', () => {
  test('monitors hear the world change in lines our parsers read', () => {
    const fake = labGateway();
    const neigh: string[] = [];
    const link: string[] = [];
    const monitor = fake.spawn(['ip', '-rcvbuf', '8388608', 'monitor', 'neigh'], { onLine: (l) => neigh.push(l) });
    fake.spawn(['ip', '-rcvbuf', '8388608', 'monitor', 'link', 'address'], { onLine: (l) => link.push(l) });
    fake.addNeighbour('198.18.0.50', 'lan0', '02:00:00:00:00:50');
    fake.setCarrier('wan0', false);
    fake.removeLink('ppp1');
    expect(neigh.map(parseNeighbourEvent)).toEqual([{ ip: '198.18.0.50', mac: '02:00:00:00:00:50', dev: 'lan0', complete: true }]);
    expect(link.map(interfaceOfLinkEvent)).toEqual(['wan0', 'ppp1', 'ppp1']);
    monitor.stop();
    fake.addNeighbour('198.18.0.51', 'lan0');
    expect(neigh).toHaveLength(1);
    fake.stopAll();
  });

  test('ping answers through a working interface, stays silent for a silent target, and exits when its interface does not exist', async () => {
    const fake = labGateway();
    const lines: string[] = [];
    fake.spawn(['ping', '-n', '-O', '-i', '0.01', '-W', '1', '-I', 'ppp0', '-m', '268435456', '198.51.100.2'], { onLine: (l) => lines.push(l) });
    await new Promise((r) => setTimeout(r, 60));
    fake.silent.add('198.51.100.2');
    await new Promise((r) => setTimeout(r, 60));
    fake.stopAll();
    const events = lines.map(parsePingLine).filter((e) => e !== null);
    expect(events[0]?.kind).toBe('reply');
    expect(events.at(-1)?.kind).toBe('pending');
    const gone = fake.spawn(['ping', '-n', '-O', '-i', '0.1', '-W', '1', '-I', 'ppp7', '-m', '1', '198.51.100.2']);
    expect(await gone.ended).toBe(2);
  });

  test('dump is stable text; a clone is independent', async () => {
    const a = labGateway();
    const b = labGateway();
    expect(a.dump()).toBe(b.dump());
    const copy = a.clone();
    await programLab(copy);
    expect(a.dump()).toBe(b.dump());
    expect(copy.dump()).not.toBe(a.dump());
    expect(a.dump()).toMatch(/^## links\n1: lo loopback up 127\.0\.0\.1\/8\n/);
  });
});

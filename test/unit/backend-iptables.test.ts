// The iptables backend through the NetfilterBackend interface only: what the
// engine will see once it holds a backend instead of calling iptables code.
// The stateful cases load the payloads into the fake kernel's iptables and
// ipset models (test/helpers/fake-kernel/), so "a second run changes nothing"
// and "flush leaves the tables as they were" are checked without root.

import { describe, expect, test } from '@jest/globals';
import fc from 'fast-check';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { NetfilterBackend } from '../../src/backends/backend.js';
import { createBackend } from '../../src/backends/index.js';
import { QUICK_MAX_LINES } from '../../src/backends/iptables/adapter.js';
import { clientSetsDisagree, readClientSetHeaders } from '../../src/backends/iptables/check.js';
import type { IptablesObserved, IptablesPayload } from '../../src/backends/iptables/types.js';
import { parseConfig } from '../../src/config/load.js';
import { uplinkGroup } from '../../src/core/contract.js';
import { NOTHING } from '../../src/core/diff.js';
import { LayeredMap } from '../../src/core/layered-map.js';
import { planNetfilter } from '../../src/core/netfilter.js';
import { computePlan } from '../../src/core/run.js';
import type { Config } from '../../src/model/config.js';
import { CommandError } from '../../src/model/errors.js';
import type { ClientRecord } from '../../src/model/state.js';
import { parseIptablesSave } from '../../src/parse/iptables-save.js';
import { describeKernelPayloads, renderKernelPayloads } from '../../src/render/payloads.js';
import type { Process, RunOptions, RunResult, Runner } from '../../src/system/exec.js';
import { ToolFailure } from '../helpers/fake-kernel/failure.js';
import { FakeRunner } from '../helpers/fake-runner.js';
import { Ipsets } from '../helpers/fake-kernel/ipset.js';
import { Netfilter } from '../helpers/fake-kernel/netfilter.js';
import { capturedAssignments, capturedKernel, labConfig, labUplinks, netfilterOf, pristineKernel } from '../helpers/scenario.js';

// Built the way the engine builds it (engine/backend.ts), from the shipped skeleton's text.
const backend = createBackend('iptables', { skeleton: readFileSync(new URL('../../iptables/skeleton.rules', import.meta.url), 'utf8') }) as NetfilterBackend<IptablesObserved, IptablesPayload>;

function golden(name: string, text: string): void {
  const file = new URL(`../fixtures/golden/${name}.txt`, import.meta.url);
  if (process.env.UPDATE_GOLDEN === '1' || !existsSync(file)) writeFileSync(file, text);
  expect(text).toBe(readFileSync(file, 'utf8'));
}

const intentFor = (assignments: ReadonlyMap<string, ClientRecord>, config: Config = labConfig) => planNetfilter(config, labUplinks(), assignments);

/**
 * Only the commands the iptables backend issues, answered from the fake
 * kernel's iptables, ip6tables and ipset models; anything else fails loudly.
 * Every command is recorded with its stdin.
 */
class IptablesOnlyRunner implements Runner {
  readonly calls: { argv: readonly string[]; input?: string }[] = [];
  constructor(
    readonly netfilter = new Netfilter(),
    readonly ipsets = new Ipsets(),
    readonly netfilter6 = new Netfilter(),
  ) {}

  async run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    this.calls.push({ argv, ...(options.input !== undefined ? { input: options.input } : {}) });
    try {
      return { stdout: this.answer(argv.join(' '), options.input ?? ''), stderr: '', exitCode: 0 };
    } catch (error) {
      if (error instanceof ToolFailure) throw new CommandError(argv, error.exitCode, error.stderr);
      throw error;
    }
  }

  private answer(line: string, input: string): string {
    const [tool = '', ...rest] = line.split(' ');
    const netfilter = tool.startsWith('ip6tables') ? this.netfilter6 : this.netfilter;
    const args = rest.join(' ');
    if (tool.endsWith('tables-save') && args === '') return netfilter.save();
    if (tool.endsWith('tables-save') && args === '-c -t mangle') return netfilter.save({ counters: true, table: 'mangle' });
    if (tool.endsWith('tables-restore') && args === '--wait 10 --noflush') {
      netfilter.restore(input);
      return '';
    }
    if (line === 'ipset list -n')
      return this.ipsets
        .names()
        .map((n) => `${n}\n`)
        .join('');
    if (line.startsWith('ipset save ')) return this.ipsets.save(line.slice('ipset save '.length));
    if (line === 'ipset -exist restore') {
      this.ipsets.restore(input, true, (name) => this.netfilter.usesSet(name) || this.netfilter6.usesSet(name));
      return '';
    }
    if (line === 'iptables -V' || line === 'ip6tables -V') return `${tool} v1.8.9 (nf_tables)\n`;
    if (line === 'nft -f -') {
      for (const match of input.matchAll(/^delete table (ip6?) (\S+)$/gm)) (match[1] === 'ip6' ? this.netfilter6 : this.netfilter).deleteTable(match[2] as string);
      return '';
    }
    throw new Error(`IptablesOnlyRunner: the iptables backend ran a command it has no business with: ${line}`);
  }

  spawn(argv: readonly string[]): Process {
    throw new Error(`IptablesOnlyRunner: nothing is spawned by a backend (${argv.join(' ')})`);
  }

  writes(): string[] {
    return this.calls.filter((c) => c.input !== undefined).map((c) => c.argv.join(' '));
  }
}

describe('the iptables backend through its interface', () => {
  test('plan → payload → describe on a pristine gateway: the same document as the golden file of the whole run', () => {
    const pristine = pristineKernel();
    const run = computePlan({ config: labConfig, uplinks: labUplinks(), observed: pristine, assignments: capturedAssignments(), lastSeen: new Map(), neighbours: [], complete: false, now: 0 });
    const payload = backend.plan(run.desired.netfilter, netfilterOf(pristine));
    golden('lab-first-start', describeKernelPayloads(backend.describe, renderKernelPayloads(payload, run.routing)));
    expect(backend.size(payload)).toEqual({ ipset: 9, iptables: 37 });
    expect(backend.created(netfilterOf(pristine), payload)).toEqual(['mangle', 'nat']);
  });

  test('the captured gateway already holds the plan: an empty payload, nothing to describe, nothing created', () => {
    const kernel = capturedKernel();
    const payload = backend.plan(intentFor(capturedAssignments()), netfilterOf(kernel));
    expect(backend.isEmpty(payload)).toBe(true);
    expect(backend.describe(payload)).toBe('');
    expect(backend.created(netfilterOf(kernel), payload)).toEqual([]);
  });

  test('removing everything (flush) is described in load order: the set is destroyed once iptables no longer uses it', () => {
    const kernel = capturedKernel();
    const payload = backend.plan(NOTHING.netfilter, netfilterOf(kernel));
    const text = describeKernelPayloads(backend.describe, { netfilter: payload, ip: '', ip6: '', sysctls: {} });
    golden('backend-iptables-flush', text);
    expect(text.trim().split('\n').slice(-2)).toEqual(['# ipset -exist restore (after iptables)', 'destroy dispatcher-clients']);
  });

  test('without root: iptables-save and ipset are named as unreadable and planned as empty', async () => {
    const runner = new FakeRunner().failOnce('iptables-save', 4, 'iptables-save: Permission denied (you must be root)').failOnce('ipset list', 1, 'ipset v7.17: Kernel error received: Operation not permitted');
    const { observed, unreadable } = await backend.observeReadable(runner);
    expect(observed).toEqual({ netfilter: [], netfilter6: [], sets: { sets: [], entries: [] } });
    expect(unreadable.sort()).toEqual(['ipset', 'iptables-save']);
  });

  test('collisions: other software using our mark bits is named, our own chains never are', () => {
    const kernel = capturedKernel();
    expect(backend.collisions(labConfig, netfilterOf(kernel))).toEqual([]);
    const foreign = parseIptablesSave(
      ['*mangle', ':PREROUTING ACCEPT [0:0]', ':mwan3_hook - [0:0]', ':vpn - [0:0]', '-A mwan3_hook -j MARK --set-xmark 0x100/0x3f00', '-A vpn -j MARK --set-xmark 0x10000000/0x10000000', 'COMMIT'].join('\n'),
    );
    const problems = backend.collisions(labConfig, { ...netfilterOf(kernel), netfilter: [...foreign, ...kernel.netfilter.filter((t) => t.name !== 'mangle')] });
    expect(problems).toEqual([
      {
        field: 'marks.mask',
        problem: 'iptables rule "-t mangle -A vpn -j MARK --set-xmark 0x10000000/0x10000000" of other software uses mark bits 0x10000000 inside marks.mask 0xff000000',
        fix: 'choose a marks.mask whose bits that software does not use',
      },
    ]);
  });

  test('classified clients and group marks are read from the observation', () => {
    const kernel = capturedKernel();
    const intent = intentFor(capturedAssignments());
    const classified = backend.classified(netfilterOf(kernel));
    expect(new Map([...classified].map(([ip, c]) => [ip, c.mark]))).toEqual(new Map(intent.clients));
    expect(new Set([...classified.values()].map((c) => c.mask))).toEqual(new Set([intent.poolMask]));
    expect(backend.groupMarked(netfilterOf(kernel), uplinkGroup(labConfig, 2))).toBe(true);
    expect(backend.groupMarked(netfilterOf(kernel), uplinkGroup(labConfig, 3))).toBe(false);
    expect(backend.groupMarked(netfilterOf(pristineKernel()), uplinkGroup(labConfig, 0))).toBe(false);
  });
});

describe('the iptables backend against the fake kernel', () => {
  test('apply loads one ipset restore and one iptables-restore; observing again plans nothing', async () => {
    const runner = new IptablesOnlyRunner();
    const intent = intentFor(capturedAssignments());
    const first = backend.plan(intent, await backend.observe(runner));
    await backend.apply(runner, first);
    expect(runner.calls.filter((c) => c.input !== undefined)).toEqual([
      { argv: ['ipset', '-exist', 'restore'], input: first.ipsetBefore },
      { argv: ['iptables-restore', '--wait', '10', '--noflush'], input: first.iptables },
    ]);
    const second = backend.plan(intent, await backend.observe(runner));
    expect(backend.isEmpty(second)).toBe(true);
  });

  test('what a load of client changes leaves is known without reading it back; a load that rewrites chains is not', async () => {
    const runner = new IptablesOnlyRunner();
    const assignments = capturedAssignments();
    const first = backend.plan(intentFor(assignments), await backend.observe(runner));
    expect(backend.expected(first)).toBeNull();
    await backend.apply(runner, first);
    const steady = backend.plan(intentFor(assignments), await backend.observe(runner));
    // The client set as the run left it (its entries are written out when asked for: ipset's form, without counters).
    const left = backend.expected(steady) as IptablesObserved;
    expect(backend.classified(left)).toEqual(backend.classified(await backend.observe(runner)));
    expect(backend.isEmpty(backend.plan(intentFor(assignments), left))).toBe(true);
    // A run's changes come in a new map (planning knows a map by identity, model/state.ts).
    const changed = new Map(assignments);
    changed.set('198.18.0.10', { ...(assignments.get('198.18.0.10') as ClientRecord), uplink: 'isp3' });
    changed.delete('198.18.0.11');
    changed.set('198.18.3.3', { uplink: 'isp2', mac: '', interface: 'lan0', pinned: false, firstSeen: 0 });
    const change = backend.plan(intentFor(changed), await backend.observe(runner));
    const expected = backend.expected(change);
    await backend.apply(runner, change);
    const read = await backend.observe(runner);
    expect(expected && backend.classified(expected)).toEqual(backend.classified(read));
    expect(backend.isEmpty(backend.plan(intentFor(changed), expected as IptablesObserved))).toBe(true);
  });

  test('planning from what the last loads left (the client set by its changed clients) gives the payload a fresh reading gives, version after version (fast-check)', async () => {
    const uplinks = labUplinks().map((u) => u.name);
    const client = (uplink: string): ClientRecord => ({ uplink, mac: '', interface: 'lan0', pinned: false, firstSeen: 0 });
    const ips = Array.from({ length: 10 }, (_, i) => `198.18.1.${i + 1}`);
    // Each version: clients joining or moving (an uplink) and leaving (null), as runs and operators' edits make them.
    const versions = fc.array(fc.array(fc.tuple(fc.constantFrom(...ips), fc.option(fc.constantFrom(...uplinks, 'gone'), { nil: null })), { maxLength: 4 }), { minLength: 1, maxLength: 8 });
    await fc.assert(
      fc.asyncProperty(versions, async (steps) => {
        const runner = new IptablesOnlyRunner();
        let assignments = LayeredMap.of(capturedAssignments());
        await backend.apply(runner, backend.plan(intentFor(assignments), await backend.observe(runner)));
        let left = backend.expected(backend.plan(intentFor(assignments), await backend.observe(runner))) as IptablesObserved;
        for (const writes of steps) {
          const draft = assignments.draft();
          for (const [ip, uplink] of writes) {
            if (uplink === null) draft.delete(ip);
            else draft.set(ip, client(uplink));
          }
          assignments = draft.done();
          const fromLeft = backend.plan(intentFor(assignments), left);
          expect(fromLeft).toEqual(backend.plan(intentFor(assignments), await backend.observe(runner)));
          await backend.apply(runner, fromLeft);
          left = backend.expected(fromLeft) as IptablesObserved;
          expect(backend.classified(left)).toEqual(backend.classified(await backend.observe(runner)));
        }
      }),
      { numRuns: 40 },
    );
  });

  test('a payload that only adds and deletes clients is told to ipset’s session (each line with -exist, as restore loads it); one that creates a set or writes chains is not', async () => {
    const { quickLoad } = backend;
    const runner = new IptablesOnlyRunner();
    const assignments = capturedAssignments();
    const first = backend.plan(intentFor(assignments), await backend.observe(runner));
    expect(quickLoad?.lines(first)).toBeNull();
    await backend.apply(runner, first);
    const moved = new Map(assignments).set('198.18.0.10', { ...(assignments.get('198.18.0.10') as ClientRecord), uplink: 'isp3' });
    moved.delete('198.18.0.11');
    expect(quickLoad?.lines(backend.plan(intentFor(moved), await backend.observe(runner)))).toEqual(['add dispatcher-clients 198.18.0.10 skbmark 0x3000000/0xf000000 -exist', 'del dispatcher-clients 198.18.0.11 -exist']);
    expect(quickLoad?.session.argv).toEqual(['stdbuf', '-oL', 'ipset', '-']);
    expect(quickLoad?.lines({ ipsetBefore: '', iptables: '*mangle\nCOMMIT\n', ip6tables: '', ipsetAfter: '' })).toBeNull();
    // A burst's thousands go to one restore.
    const many = (n: number) => ({ ipsetBefore: Array.from({ length: n }, (_, i) => `add dispatcher-clients 198.18.5.${i % 250} skbmark 0x1000000/0xf000000\n`).join(''), iptables: '', ip6tables: '', ipsetAfter: '' });
    expect(quickLoad?.lines(many(QUICK_MAX_LINES))).toHaveLength(QUICK_MAX_LINES);
    expect(quickLoad?.lines(many(QUICK_MAX_LINES + 1))).toBeNull();
  });

  test('moving a client is one set entry; its counters read back per pool', async () => {
    const runner = new IptablesOnlyRunner();
    const assignments = capturedAssignments();
    await backend.apply(runner, backend.plan(intentFor(assignments), await backend.observe(runner)));
    const moved = new Map(assignments).set('198.18.0.10', { ...(assignments.get('198.18.0.10') as ClientRecord), uplink: 'isp3' });
    const move = backend.plan(intentFor(moved), await backend.observe(runner));
    expect(move).toEqual({ ipsetBefore: 'add dispatcher-clients 198.18.0.10 skbmark 0x3000000/0xf000000\n', iptables: '', ip6tables: '', ipsetAfter: '' });
    await backend.apply(runner, move);
    expect(backend.isEmpty(backend.plan(intentFor(moved), await backend.observe(runner)))).toBe(true);
    // DISPATCHER-PRE: per LAN the restore and the set rule come first, then isp1's counting rule.
    runner.netfilter.count('mangle', 'DISPATCHER-PRE', 2, 3, 1500);
    expect(await backend.counters(runner, labConfig)).toEqual({ isp1: { sent: 1500, received: 0 }, isp2: { sent: 0, received: 0 }, isp3: { sent: 0, received: 0 } });
  });

  test('policies: their sets and chains load once (the fake prints back what was loaded), a changed list is swapped in whole, a dropped policy takes its set along, flush leaves nothing', async () => {
    const runner = new IptablesOnlyRunner();
    const lab = readFileSync(new URL('../../pools/lab.yaml', import.meta.url), 'utf8');
    const withPolicies = (destinations: string, more = '') =>
      parseConfig(`${lab}\nbalance: { mode: destination }\npolicies:\n  - { name: web, match: { destination: [${destinations}], protocol: tcp, port: [443] }, via: [isp3, isp1] }\n${more}`, 'test.yaml', {
        state: '/tmp/state',
        socket: '/tmp/sock',
      });
    const first = withPolicies('203.0.113.0/24, 198.51.100.7', '  - { match: { source: [198.18.0.10] }, balance: connection }\n');
    const load = async (config: Config) => {
      const payload = backend.plan(intentFor(capturedAssignments(), config), await backend.observe(runner));
      await backend.apply(runner, payload);
      return payload;
    };
    const loaded = await load(first);
    expect(loaded.ipsetBefore).toContain('create dispatcher-p1-dst hash:net family inet\nadd dispatcher-p1-dst 203.0.113.0/24\nadd dispatcher-p1-dst 198.51.100.7/32\n');
    expect(backend.isEmpty(backend.plan(intentFor(capturedAssignments(), first), await backend.observe(runner)))).toBe(true);
    // One destination more: the set is rebuilt beside the one in use and swapped in; the rules stay.
    const changed = await load(withPolicies('203.0.113.0/24, 198.51.100.7, 198.51.100.8', '  - { match: { source: [198.18.0.10] }, balance: connection }\n'));
    expect(changed.ipsetBefore).toBe(
      'create dispatcher-p1-dst-next hash:net family inet\nadd dispatcher-p1-dst-next 203.0.113.0/24\nadd dispatcher-p1-dst-next 198.51.100.7/32\nadd dispatcher-p1-dst-next 198.51.100.8/32\nswap dispatcher-p1-dst-next dispatcher-p1-dst\ndestroy dispatcher-p1-dst-next\n',
    );
    expect(changed.iptables).toBe('');
    // The second policy gone: its rule leaves first, then its set.
    const dropped = await load(withPolicies('203.0.113.0/24'));
    expect(dropped.ipsetAfter).toBe('destroy dispatcher-p2-src\n');
    expect(runner.ipsets.names()).toEqual(['dispatcher-clients', 'dispatcher-p1-dst']);
    await backend.flush(runner, await backend.observe(runner), []);
    expect(runner.ipsets.names()).toEqual([]);
    expect(runner.netfilter.save()).not.toContain('DISPATCHER');
  });

  test('flush removes exactly what apply added: iptables-save and ipset as before the first start, twice in a row', async () => {
    const runner = new IptablesOnlyRunner();
    // Other software's chain in mangle, there before us; nat is created by our first apply.
    runner.netfilter.restore(['*mangle', ':mwan3_hook - [0:0]', '-A PREROUTING -j mwan3_hook', '-A mwan3_hook -j MARK --set-xmark 0x100/0x3f00', 'COMMIT', ''].join('\n'));
    const before = { iptables: runner.netfilter.save(), sets: runner.ipsets.names() };
    const observed = await backend.observe(runner);
    const payload = backend.plan(intentFor(capturedAssignments()), observed);
    const created = backend.created(observed, payload);
    expect(created).toEqual(['nat']);
    await backend.apply(runner, payload);
    const removal = await backend.flush(runner, await backend.observe(runner), created);
    expect(removal).toEqual({
      chains: ['mangle/DISPATCHER-COUNT', 'mangle/DISPATCHER-OUT', 'mangle/DISPATCHER-POST', 'mangle/DISPATCHER-PRE', 'mangle/DISPATCHER-SPREAD', 'nat/DISPATCHER-NAT'],
      hooks: 4,
      setDestroyed: true,
      tablesDeleted: ['nat'],
      changed: true,
    });
    expect({ iptables: runner.netfilter.save(), sets: runner.ipsets.names() }).toEqual(before);
    expect(await backend.flush(runner, await backend.observe(runner), [])).toEqual({ chains: [], hooks: 0, setDestroyed: false, tablesDeleted: [], changed: false });
    expect(runner.writes().filter((w) => w.startsWith('nft'))).toEqual(['nft -f -']);
  });
});

describe('the client sets’ check', () => {
  const listing = (entries: number, six: number | null): string =>
    [
      `Name: dispatcher-clients\nType: hash:ip\nRevision: 6\nHeader: family inet hashsize 1024 maxelem 65536 counters skbinfo\nSize in memory: 1000\nReferences: 2\nNumber of entries: ${entries}\n`,
      ...(six === null ? [] : [`Name: dispatcher-clients6\nType: hash:ip\nRevision: 6\nHeader: family inet6 hashsize 1024 maxelem 1048576 counters skbinfo\nSize in memory: 1000\nReferences: 2\nNumber of entries: ${six}\n`]),
    ].join('');
  const intent = (clients: number, six: number | null): Parameters<typeof clientSetsDisagree>[1] => {
    const map = (n: number, prefix: string): Map<string, number> => new Map(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, 0x1000000]));
    return { clients: map(clients, '198.18.0.'), ipv6: six === null ? null : { clients: map(six, 'fd00:18::') } } as unknown as Parameters<typeof clientSetsDisagree>[1];
  };

  test('reads each set’s references and entries from one `ipset list -t`', () => {
    expect(readClientSetHeaders(listing(3, null))).toBe('dispatcher-clients: 2 references, 3 entries; dispatcher-clients6: absent');
    expect(readClientSetHeaders(listing(3, 5))).toBe('dispatcher-clients: 2 references, 3 entries; dispatcher-clients6: 2 references, 5 entries');
  });

  test('right after a run, each set must hold exactly the clients it loaded: a set flushed while the run loaded is not taken for ours', () => {
    expect(clientSetsDisagree(listing(3, null), intent(3, null))).toBeNull();
    expect(clientSetsDisagree(listing(3, 5), intent(3, 5))).toBeNull();
    expect(clientSetsDisagree(listing(0, null), intent(3, null))).toBe('dispatcher-clients holds 0 entries, our run loaded 3');
    expect(clientSetsDisagree(listing(3, 0), intent(3, 5))).toBe('dispatcher-clients6 holds 0 entries, our run loaded 5');
    expect(clientSetsDisagree(listing(3, null), intent(3, 5))).toBe('dispatcher-clients6 is absent, our run loaded it');
    expect(clientSetsDisagree(listing(3, 2), intent(3, null))).toBe('dispatcher-clients6 exists, our run removed it');
    // Nothing of ours wanted (flush): both sets gone.
    expect(clientSetsDisagree('', null)).toBeNull();
    expect(clientSetsDisagree(listing(0, null), null)).toBe('dispatcher-clients exists, our run removed it');
  });
});

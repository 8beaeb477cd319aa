// Recovering assignments: from the kernel's client set after a crash between
// apply and save, and from the backup when the store file is unusable.

import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { adoptFromClientSet } from '../../src/core/adopt.js';
import type { ClientRecord, StoredClient } from '../../src/model/state.js';
import { BACKUP_FILE, JOURNAL_FILE, STORE_FILE, Store, StoreError } from '../../src/system/store.js';
import { backend, capturedAssignments, capturedKernel, labConfig, netfilterOf } from '../helpers/scenario.js';

const NOW = 1_700_000_000_000;

describe('adopting the kernel client set', () => {
  test('an empty store adopts every member with the uplink its mark names', () => {
    const { assignments, adopted, unreadable } = adoptFromClientSet(labConfig, backend.classified(netfilterOf(capturedKernel())), new Map(), NOW);
    const expected = capturedAssignments();
    expect(adopted).toHaveLength(expected.size);
    expect(unreadable).toBe(0);
    for (const [ip, record] of expected) expect(assignments.get(ip)?.uplink).toBe(record.uplink);
  });

  test('the store wins where both know a client; members with unknown marks or off the LAN are not adopted', () => {
    const [first] = [...capturedAssignments().keys()] as [string];
    const stored = new Map<string, ClientRecord>([[first, { uplink: 'isp3', mac: '02:00:00:00:00:01', interface: 'lan0', pinned: true, firstSeen: 1 }]]);
    const sets = capturedKernel().sets;
    const odd = [
      { set: 'dispatcher-clients', member: '198.18.200.1', options: { skbmark: '0x9000000/0xf000000' } },
      { set: 'dispatcher-clients', member: '10.1.2.3', options: { skbmark: '0x1000000/0xf000000' } },
      { set: 'other-set', member: '198.18.200.2', options: { skbmark: '0x1000000/0xf000000' } },
    ];
    const result = adoptFromClientSet(labConfig, backend.classified({ netfilter: [], netfilter6: [], sets: { ...sets, entries: [...sets.entries, ...odd] } }), stored, NOW);
    expect(result.assignments.get(first)).toEqual(stored.get(first));
    expect(result.adopted).toHaveLength(capturedAssignments().size - 1);
    expect(result.unreadable).toBe(2);
    expect(result.assignments.has('198.18.200.2')).toBe(false);
  });
});

describe('an unusable store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-store-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const good = { version: 1, clients: { '198.18.0.10': { uplink: 'isp1', mac: '02:00:00:00:00:0a', interface: 'lan0', pinned: true, firstSeen: 1, lastSeen: 2 } }, sysctlOriginals: {}, createdTables: [] };

  test('a good store is backed up at open', async () => {
    await writeFile(join(dir, STORE_FILE), JSON.stringify(good));
    const { store, recovery } = await Store.openOrRecover(dir, new Date(NOW));
    expect(recovery).toBeNull();
    expect(store.data.clients['198.18.0.10']?.pinned).toBe(true);
    expect(JSON.parse(await readFile(join(dir, BACKUP_FILE), 'utf8'))).toEqual(good);
  });

  test.each([
    ['truncated', JSON.stringify(good).slice(0, 50)],
    ['empty', ''],
    ['garbage', '\u0000\u0001binary garbage'],
    ['not ours', JSON.stringify({ version: 7, clients: [] })],
    ['a malformed record', JSON.stringify({ ...good, clients: { '198.18.0.10': { uplink: 5 } } })],
  ])('%s: the CLI refuses it; the daemon moves it aside and uses the backup', async (_name, text) => {
    await writeFile(join(dir, STORE_FILE), JSON.stringify(good));
    await Store.openOrRecover(dir, new Date(NOW));
    await writeFile(join(dir, STORE_FILE), text);
    await expect(Store.open(dir)).rejects.toThrow(StoreError);
    const { store, recovery } = await Store.openOrRecover(dir, new Date(NOW));
    expect(recovery).toMatchObject({ backup: 'used', movedTo: expect.stringContaining('dispatcher.json.unusable-2023-11-14T') });
    expect(store.data.clients).toEqual(good.clients);
    // The bad file is kept for inspection, byte for byte.
    const aside = (await readdir(dir)).find((f) => f.includes('unusable')) as string;
    expect(await readFile(join(dir, aside), 'utf8')).toBe(text);
  });

  test('without a backup it starts empty and says so (the kernel set fills in)', async () => {
    await writeFile(join(dir, STORE_FILE), '{"version":1,"clients":');
    const { store, recovery } = await Store.openOrRecover(dir, new Date(NOW));
    expect(recovery).toMatchObject({ backup: 'missing', problem: expect.stringMatching(/JSON/) });
    expect(store.data.clients).toEqual({});
  });
});

describe('the clients journal', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-journal-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const record = (uplink: string): StoredClient => ({ uplink, mac: '02:00:00:00:00:0a', interface: 'lan0', pinned: false, firstSeen: 1, lastSeen: 2 });
  const clients = async (): Promise<Record<string, StoredClient>> => (await Store.open(dir)).data.clients;

  test('a few clients changed are appended, not written whole; opening (the daemon’s or the CLI’s) reads them back; a whole write starts the journal afresh', async () => {
    const store = await Store.open(dir);
    await store.save((d) => {
      d.clients = { '198.18.0.10': record('isp1'), '198.18.0.11': record('isp1') };
    });
    const whole = await readFile(join(dir, STORE_FILE), 'utf8');
    await store.appendClients(new Map([['198.18.0.10', record('isp2')]]));
    await store.appendClients(
      new Map<string, StoredClient | null>([
        ['198.18.0.11', null],
        ['198.18.0.12', record('isp3')],
      ]),
    );
    expect(await readFile(join(dir, STORE_FILE), 'utf8')).toBe(whole);
    expect((await readFile(join(dir, JOURNAL_FILE), 'utf8')).trim().split('\n')).toHaveLength(3);
    const expected = { '198.18.0.10': record('isp2'), '198.18.0.12': record('isp3') };
    expect(await clients()).toEqual(expected);
    expect(store.data.clients).toEqual(expected);
    expect((await Store.peek(dir))?.clients).toEqual(expected);
    expect((await Store.openOrRecover(dir, new Date(NOW))).store.data.clients).toEqual(expected);
    // A whole write holds it all; its journal is empty (the next generation's).
    await store.save((d) => {
      d.sysctlOriginals['net.ipv4.ip_forward'] = '0';
    });
    expect((await readFile(join(dir, JOURNAL_FILE), 'utf8')).trim().split('\n')).toHaveLength(1);
    expect(await clients()).toEqual(expected);
  });

  test('clients handed over: every whole write takes them from their source as it writes, the store keeps no copy, and appends still go to the journal', async () => {
    const store = await Store.open(dir);
    await store.save((d) => {
      d.clients = { '198.18.0.10': record('isp1') };
    });
    let current: Record<string, StoredClient> = { '198.18.0.10': record('isp2') };
    store.takeClientsFrom(() => current);
    expect(store.data.clients).toEqual({});
    await store.save((d) => {
      d.sysctlOriginals['net.ipv4.ip_forward'] = '0';
    });
    expect(await clients()).toEqual({ '198.18.0.10': record('isp2') });
    await store.appendClients(new Map([['198.18.0.11', record('isp3')]]));
    expect(store.data.clients).toEqual({});
    expect(await clients()).toEqual({ '198.18.0.10': record('isp2'), '198.18.0.11': record('isp3') });
    current = { '198.18.0.12': record('isp1') };
    await store.save(() => undefined);
    expect(await clients()).toEqual({ '198.18.0.12': record('isp1') });
    expect((await Store.peek(dir))?.sysctlOriginals).toEqual({ 'net.ipv4.ip_forward': '0' });
  });

  test('a crash while appending (a torn last line) loses that line only; a journal of another generation (a crash between a whole write and its new journal) is not replayed; a line in the middle that does not read back makes the store unusable, and recovery moves both aside', async () => {
    const store = await Store.open(dir);
    await store.save((d) => {
      d.clients = { '198.18.0.10': record('isp1') };
    });
    await store.appendClients(new Map([['198.18.0.11', record('isp2')]]));
    await appendFile(join(dir, JOURNAL_FILE), '{"198.18.0.12":{"upl');
    expect(Object.keys(await clients())).toEqual(['198.18.0.10', '198.18.0.11']);
    // The journal of the generation before the store's: its lines are in the store already, or older than it.
    const journal = await readFile(join(dir, JOURNAL_FILE), 'utf8');
    await store.save((d) => {
      d.clients = { '198.18.0.10': record('isp3') };
    });
    await writeFile(join(dir, JOURNAL_FILE), journal);
    expect(await clients()).toEqual({ '198.18.0.10': record('isp3') });
    // The right generation with a bad line before a good one.
    const generation = JSON.parse(await readFile(join(dir, STORE_FILE), 'utf8')).journal;
    await writeFile(join(dir, JOURNAL_FILE), `${JSON.stringify({ generation })}\nnot json\n${JSON.stringify({ '198.18.0.11': record('isp1') })}\n`);
    await expect(Store.open(dir)).rejects.toThrow(/dispatcher.journal line 2 does not read back/);
    await writeFile(join(dir, BACKUP_FILE), JSON.stringify({ version: 1, clients: {}, sysctlOriginals: {}, createdTables: [] }));
    const { store: recovered, recovery } = await Store.openOrRecover(dir, new Date(NOW));
    expect(recovery).toMatchObject({ backup: 'used' });
    expect(recovered.data.clients).toEqual({});
    expect((await readdir(dir)).filter((f) => f.includes('unusable')).sort()).toEqual([expect.stringMatching(/^dispatcher\.journal\.unusable-/), expect.stringMatching(/^dispatcher\.json\.unusable-/)]);
  });

  test('a record in the journal that is not a client record makes the store unusable, as in the store itself', async () => {
    const store = await Store.open(dir);
    await store.save(() => undefined);
    await appendFile(join(dir, JOURNAL_FILE), `${JSON.stringify({ '198.18.0.10': { uplink: 5 } })}\n`);
    await expect(Store.open(dir)).rejects.toThrow(/client entry "198.18.0.10" is malformed/);
  });

  test('the journal is held to a quarter of the clients (at least 1,024 records) before the clients are written whole', async () => {
    const store = await Store.open(dir);
    expect(store.journalHolds(1024, 0)).toBe(true);
    expect(store.journalHolds(1025, 0)).toBe(false);
    expect(store.journalHolds(12_500, 50_000)).toBe(true);
    await store.appendClients(new Map([['198.18.0.10', record('isp1')]]));
    expect(store.journalHolds(12_500, 50_000)).toBe(false);
    await store.save(() => undefined);
    expect(store.journalHolds(12_500, 50_000)).toBe(true);
  });
});

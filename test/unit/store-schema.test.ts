// The store's format, read through its schema (src/schema/store.ts): what is
// ours comes back with the defaults older versions did not write; anything
// else is named in a few words (src/system/store.ts turns that into a
// StoreError, and the daemon's recovery takes over: recovery.test.ts).

import { expect, test } from '@jest/globals';
import { readStore } from '../../src/schema/store.js';

const record = { uplink: 'isp1', mac: '02:00:00:00:00:0a', interface: 'lan0', pinned: false, firstSeen: 1, lastSeen: 2 };
const good = { version: 1, clients: { '198.18.0.10': record }, sysctlOriginals: { 'net.ipv4.ip_forward': '0' }, createdTables: ['mangle'] };

test('a store of ours reads back as written', () => {
  const withAll = { ...good, ranges: { tables: { base: 3100 }, rules: { priority: 4100 } }, bindings: { isp1: 'ppp1' } };
  expect(readStore(withAll)).toEqual({ data: withAll });
});

test('what older versions did not write gets its default', () => {
  expect(readStore({ version: 1, clients: {} })).toEqual({ data: { version: 1, clients: {}, sysctlOriginals: {}, createdTables: [] } });
});

test.each([
  ['not an object', [], 'not a JSON object'],
  ['null', null, 'not a JSON object'],
  ['another version', { version: 7, clients: [] }, 'unknown version 7'],
  ['no version', { clients: {} }, 'unknown version undefined'],
  ['no clients', { version: 1 }, '"clients" is missing'],
  ['a record of the wrong types', { ...good, clients: { '198.18.0.10': { ...record, uplink: 5 } } }, 'client entry "198.18.0.10" is malformed'],
  ['a client that is not an address', { ...good, clients: { 'not-an-ip': record } }, 'client entry "not-an-ip" is malformed'],
  ['ranges without numbers', { ...good, ranges: { tables: { base: '3100' }, rules: { priority: 4100 } } }, '"ranges" is malformed'],
  ['a binding to a name no interface has', { ...good, bindings: { isp1: 'ppp+' } }, '"bindings" is malformed'],
  ['created tables not a list', { ...good, createdTables: 'mangle' }, '"createdTables" is malformed'],
])('%s is not ours', (_name, data, problem) => {
  expect(readStore(data)).toEqual({ problem });
});

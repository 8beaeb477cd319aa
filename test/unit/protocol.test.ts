// The control protocol (src/schema/control.ts): one definition gives the
// daemon's parsing, the CLI's types and the committed JSON Schema that
// documents `status --json` and `pools --json`.

import { describe, expect, test } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { commands, parseRequest, poolsReportSchema, protocolJsonSchema, statusSchema } from '../../src/schema/control.js';

const DOCUMENT = new URL('../../pools/control.schema.json', import.meta.url);

describe('control protocol', () => {
  test('pools/control.schema.json is generated from the definitions (npm run schema)', () => {
    const generated = `${JSON.stringify(protocolJsonSchema(), null, 2)}\n`;
    const committed = readFileSync(DOCUMENT, 'utf8');
    if (committed !== generated) throw new Error('pools/control.schema.json is stale: run npm run schema');
    const document = JSON.parse(committed) as { commands: Record<string, { request: unknown; result: { properties?: Record<string, unknown> } }> };
    expect(Object.keys(document.commands).sort()).toEqual(Object.keys(commands).sort());
    expect(Object.keys(document.commands.status?.result.properties ?? {})).toEqual(expect.arrayContaining(['uplinks', 'lastRun', 'ddns', 'conflicts']));
  });

  test('requests parse into their typed shape; a bad field names itself', () => {
    expect(parseRequest('{"cmd":"assign","ip":"198.18.0.10","uplink":"isp1"}')).toEqual({ cmd: 'assign', ip: '198.18.0.10', uplink: 'isp1' });
    expect(parseRequest('{"cmd":"status"}')).toEqual({ cmd: 'status' });
    // explain takes a host's IPv6 address too (canonical form); assign does not.
    expect(parseRequest('{"cmd":"explain","ip":"2001:DB8:0::1"}')).toEqual({ cmd: 'explain', ip: '2001:db8::1' });
    expect(() => parseRequest('{"cmd":"explain","ip":"fe80::1"}')).toThrow(/not link-local or multicast/);
    expect(() => parseRequest('{"cmd":"assign","ip":"2001:db8::1","uplink":"isp1"}')).toThrow(/is not a unicast IPv4 address/);
    expect(() => parseRequest('{"cmd":"explain","ip":7}')).toThrow(/ip: 7 is not a unicast IPv4 or IPv6 address/);
    expect(() => parseRequest('{"cmd":"assign","ip":"198.18.0.10","uplink":"a b"}')).toThrow(/uplink: "a b" is not an uplink name/);
    expect(() => parseRequest('{"cmd":"assign","ip":"198.18.0.10","uplink":{"a":1}}')).toThrow(/uplink: \{"a":1\} is not an uplink name/);
    expect(() => parseRequest('{"cmd":"release"}')).toThrow(/ip/);
    expect(() => parseRequest('{"cmd":"toString"}')).toThrow(/unknown command/);
  });

  test('results are checked against their schema: a status missing a field is refused', () => {
    const pools = { uplinks: [], clients: 0, balance: 'host' };
    expect(poolsReportSchema.parse(pools)).toEqual(pools);
    expect(statusSchema.safeParse({ running: true, pid: 1 }).success).toBe(false);
  });
});

// `dispatcher lab`, the first thing a new user runs: it must show the
// dispatcher working and leave nothing behind.

import { expect, jest, test } from '@jest/globals';
import { DISPATCHER_BIN } from '../../src/lab/harness.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { requireRoot } from '../helpers/lab.js';

jest.setTimeout(60_000);

test('dispatcher lab --ipv4-only shows every client leaving by its pool uplink and a failover, then cleans up', async () => {
  requireRoot();
  const runner = new ExecaRunner();
  const result = await runner.run([process.execPath, DISPATCHER_BIN, 'lab', '--ipv4-only', '--clients', '4']);
  expect(result.stdout).toMatch(/^isp1 +ppp0 +up +1 +2 +192\.0\.2\.2 +192\.0\.2\.1 +2$/m);
  expect(result.stdout.match(/ ok$/gm)).toHaveLength(4);
  expect(result.stdout).toContain('all 4 clients left by the uplink of their pool');
  const failover = /the IPv4 stream was silent for ([0-9]+) ms, then came from [0-9.]+ \((isp[23])\) instead of 192\.0\.2\.2 \(isp1\)/.exec(result.stdout);
  expect(failover).not.toBeNull();
  expect(Number(failover?.[1])).toBeLessThan(2000);
  expect(result.stdout).toMatch(/isp1 recovered: its pool's IPv4 went home after [0-9]+ ms/);
  expect(result.stdout).not.toContain('IPv6');
  expect(result.stdout).toContain('done: nothing of the lab is left.');
  const prefix = /namespaces (dsplab-[0-9]+-[0-9]+-)\*/.exec(result.stdout)?.[1];
  expect(prefix).toBeDefined();
  expect((await runner.run(['ip', 'netns', 'list'])).stdout).not.toContain(prefix);
});

test('dispatcher lab (dual-stack by default): a dual-stack lab where each client leaves by its pool uplink over both families, and an IPv6-only failover', async () => {
  requireRoot();
  const runner = new ExecaRunner();
  const result = await runner.run([process.execPath, DISPATCHER_BIN, 'lab', '--clients', '4'], { okExitCodes: [0, 1] });
  expect(result.stderr).toBe('');
  expect(result.exitCode).toBe(0);
  // Both tables: 4 clients each, every one "ok" (left by its pool's line).
  expect(result.stdout.match(/ ok$/gm)).toHaveLength(8);
  expect(result.stdout).toContain('all 4 clients left by the uplink of their pool over IPv6 too');
  // isp1's clients are seen at its delegated prefix (NPTv6: fd00:18::… translated onto 2001:db8:1:100::/64).
  expect(result.stdout).toMatch(/ isp1 +2001:db8:1:100:\S+ +isp1 +ok$/m);
  const failover6 = /the IPv6 stream was silent for ([0-9]+) ms, then came from \S+ \((isp[23])\) instead of 2001:db8:1:100:\S+ \(isp1\)/.exec(result.stdout);
  expect(failover6).not.toBeNull();
  expect(Number(failover6?.[1])).toBeLessThan(2000);
  expect(result.stdout).toMatch(/isp1 recovered: its pool's IPv6 went home after [0-9]+ ms/);
  expect(result.stdout).toContain('done: nothing of the lab is left.');
  const prefix = /namespaces (dsplab-[0-9]+-[0-9]+-)\*/.exec(result.stdout)?.[1];
  expect((await runner.run(['ip', 'netns', 'list'])).stdout).not.toContain(prefix);
});

test('dispatcher lab --ha: a pair of gateways, a takeover that keeps every client on its line and the TCP connection through the shared address, then cleans up', async () => {
  requireRoot();
  const runner = new ExecaRunner();
  const result = await runner.run([process.execPath, DISPATCHER_BIN, 'lab', '--ha', '--clients', '4'], { okExitCodes: [0, 1], timeoutMs: 120_000 });
  expect(result.stdout).toMatch(/keepalived made [ab] master: it holds 198\.18\.0\.1 and 198\.51\.100\.10/);
  expect(result.stdout).toMatch(/^[ab] holds the same pools \(state channel lag [0-9]+ ms\)\.$/m);
  expect(result.stdout).toMatch(/the TCP connection answered [0-9]+ ms after it, from 198\.51\.100\.10, never reset\./);
  const gaps = [...result.stdout.matchAll(/^198\.18\.0\.[0-9]+ +isp[123] +([0-9]+) ms +isp[123]$/gm)].map((m) => Number(m[1]));
  expect(gaps).toHaveLength(4);
  for (const gap of gaps) expect(gap).toBeLessThan(3000);
  expect(result.stdout).toContain('0 clients changed line');
  expect(result.exitCode).toBe(0);
  expect(result.stdout).toContain('done: nothing of the lab is left.');
  const prefix = /namespaces (dsplabha-[0-9]+-[0-9]+-)\*/.exec(result.stdout)?.[1];
  expect(prefix).toBeDefined();
  expect((await runner.run(['ip', 'netns', 'list'])).stdout).not.toContain(prefix);
}, 150_000);

// `dispatcher lab`, the first thing a new user runs: it must show the
// dispatcher working and leave nothing behind.

import { expect, jest, test } from '@jest/globals';
import { DISPATCHER_BIN } from '../../src/lab/harness.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { requireRoot } from '../helpers/lab.js';

jest.setTimeout(60_000);

test('dispatcher lab shows every client leaving by its pool uplink and a failover, then cleans up', async () => {
  requireRoot();
  const runner = new ExecaRunner();
  const result = await runner.run([process.execPath, DISPATCHER_BIN, 'lab', '--clients', '4']);
  expect(result.stdout).toMatch(/^isp1 +ppp0 +up +1 +2 +192\.0\.2\.2 +192\.0\.2\.1 +2$/m);
  expect(result.stdout.match(/ ok$/gm)).toHaveLength(4);
  expect(result.stdout).toContain('all 4 clients left by the uplink of their pool');
  const failover = /the stream was silent for ([0-9]+) ms, then came from [0-9.]+ \((isp[23])\) instead of 192\.0\.2\.2 \(isp1\)/.exec(result.stdout);
  expect(failover).not.toBeNull();
  expect(Number(failover?.[1])).toBeLessThan(2000);
  expect(result.stdout).toMatch(/isp1 recovered: its pool went home after [0-9]+ ms/);
  expect(result.stdout).toContain('done: nothing of the lab is left.');
  const prefix = /namespaces (dsplab-[0-9]+-[0-9]+-)\*/.exec(result.stdout)?.[1];
  expect(prefix).toBeDefined();
  expect((await runner.run(['ip', 'netns', 'list'])).stdout).not.toContain(prefix);
});

// The order of a role change (engine/ha.ts), which is what keeps moved
// connections alive: a new master has conntrackd commit before the run that
// lifts its fence and dials its session lines at once; a backup raises the
// fence first, then lets conntrackd purge and hangs its session lines up.

import { describe, expect, test } from '@jest/globals';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { Timeline } from '../../src/core/timeline.js';
import { HaRoles } from '../../src/engine/ha.js';
import type { Reconciler } from '../../src/engine/reconciler.js';
import { silentLogger } from '../../src/system/logger.js';
import { FakeRunner } from '../helpers/fake-runner.js';

const config = (state: string) =>
  parseConfig(
    `
lan: { interfaces: [lan0], subnets: [198.18.0.0/16] }
uplinks:
  - { name: isp1, interface: wan1, gateway: 198.51.100.1, ha_address: 198.51.100.10/26 }
  - { name: dsl, interface: ppp0, ha_connect: [/usr/bin/pon, dsl], ha_disconnect: [/usr/bin/poff, dsl] }
state: ${state}
ha: { peer: 198.19.255.2, interface: sync0, key: /etc/dispatcher/ha.key, lan_address: 198.18.0.1/16, priority: 150 }
`,
    'a.yaml',
  );

async function roles(failing?: string, recorded: 'master' | 'backup' | 'fault' | null = null) {
  const state = await mkdtemp(join(tmpdir(), 'ha-roles-'));
  await mkdir(join(state, 'ha'));
  await writeFile(join(state, 'ha', 'conntrackd.conf.path'), '/etc/dispatcher/ha/conntrackd.conf\n');
  const runner = new FakeRunner().answer('conntrackd', '').answer('conntrack -D', '').answer('/usr/bin/pon', '').answer('/usr/bin/poff', '');
  if (failing) runner.failOnce(failing, 1, 'no such peer');
  const order: string[] = [];
  const takenRoles: string[] = [];
  const origin = runner.run.bind(runner);
  runner.run = (argv, options) => {
    order.push(argv[0] === 'conntrackd' ? `conntrackd ${argv[3]}` : argv.join(' '));
    return origin(argv, options);
  };
  let role = 'unknown';
  const reconciler = {
    get role() {
      return role;
    },
    currentConfig: config(state),
    startAs: (next: string) => {
      role = next;
    },
    setRole: async (next: string) => {
      order.push(`run (${next})`);
      role = next;
      return { ok: true };
    },
  } as unknown as Reconciler;
  const timeline = new Timeline(10, () => 0);
  const ha = new HaRoles({ runner, log: silentLogger, reconciler, timeline, sync: null, recorded: async () => recorded, taken: async (role) => void takenRoles.push(role) });
  return { ha, order, timeline, reconciler, takenRoles, done: () => rm(state, { recursive: true, force: true }) };
}

describe('a role change', () => {
  test('master: the session line dialled at once, conntrackd commits, the connections of lines whose address stays behind are forgotten, then the run that lifts the fence, conntrackd’s caches rebuilt after', async () => {
    const { ha, order, takenRoles, done } = await roles();
    const result = await ha.become('master');
    // The committed connections of the line whose address stays behind (dsl: the old master's session) are forgotten before the fence lifts.
    expect(order).toEqual(['/usr/bin/pon dsl', 'conntrackd -c', 'conntrack -D --mark 0x20000000/0xf0000000', 'run (master)', 'conntrackd -f', 'conntrackd -R', 'conntrackd -B']);
    expect(result.sessions).toEqual([{ uplink: 'dsl', ok: true, said: '' }]);
    expect(result.forgotten).toEqual({ dsl: 0 });
    // Noted as taken: a restart under the same keepalived resumes it without doing it again.
    expect(takenRoles).toEqual(['master']);
    expect(result.previous).toBe('unknown');
    await done();
  });

  test('backup: the run that raises the fence, conntrackd purges and asks for the master’s connections, then the session line hangs up', async () => {
    const { ha, order, done } = await roles();
    await ha.become('master');
    order.length = 0;
    const result = await ha.become('backup');
    expect(order).toEqual(['run (backup)', 'conntrackd -t', 'conntrackd -n', '/usr/bin/poff dsl']);
    expect(result).toMatchObject({ role: 'backup', previous: 'master', sessions: [{ uplink: 'dsl', ok: true }] });
    await done();
  });

  test('calls out of order: the role the notify script wrote last is taken, whatever a late call asks; said again, nothing is taken over twice', async () => {
    const { ha, order, done } = await roles(undefined, 'master');
    // keepalived said BACKUP, then MASTER; the MASTER call came first: both take master, the second only keeps it.
    expect(await ha.become('master')).toMatchObject({ role: 'master', previous: 'unknown' });
    order.length = 0;
    const late = await ha.become('backup');
    expect(late).toMatchObject({ role: 'master', previous: 'master', conntrackd: [], sessions: [], forgotten: {} });
    // No commit, no forgetting, no dialling on a master that stays master: only the run that keeps its fence down.
    expect(order).toEqual(['run (master)']);
    await done();
  });

  test('resumed at start (keepalived held the role before): the role before the first run, none of the takeover', async () => {
    const { ha, order, timeline, reconciler, done } = await roles();
    ha.resume('master');
    expect(reconciler.role).toBe('master');
    expect(order).toEqual([]);
    expect(timeline.since(0).at(-1)?.text).toBe('resumed master (keepalived has held it since before this start)');
    await done();
  });

  test('a session command that fails is reported and noted; the role change is still made', async () => {
    const { ha, timeline, done } = await roles('/usr/bin/pon');
    const result = await ha.become('master');
    expect(result.role).toBe('master');
    expect(result.sessions).toEqual([{ uplink: 'dsl', ok: false, said: expect.stringContaining('no such peer') }]);
    expect(timeline.since(0).at(-1)?.text).toMatch(/unknown → master \(failed: dsl: .*no such peer/);
    await done();
  });
});

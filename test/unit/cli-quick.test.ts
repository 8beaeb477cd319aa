// The quick door (cli/quick.ts) runs hook, status, pools, assign, release and
// ha master|backup|fault (keepalived's notify script: takeover time) without
// commander. It must take only shapes commander takes the same way,
// and then do exactly what the commander path does: the same request to the
// daemon, the same output, the same exit code. Everything else is left to
// commander (help, usage errors).

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { quickCall, quickMain } from '../../src/cli/quick.js';
import { RequestError } from '../../src/model/errors.js';
import type { ControlRequest } from '../../src/schema/control.js';
import { listenControl, type ControlServer } from '../../src/system/control-server.js';
import { silentLogger } from '../../src/system/logger.js';
import { FakeRunner } from '../helpers/fake-runner.js';

const argv = (...args: string[]): string[] => ['node', 'dispatcher', ...args];
const HOOK = ['ip-down', 'ppp0', '/dev/ttyS0', '38400', '192.0.2.2', '192.0.2.1'];

describe('the shapes the quick door takes', () => {
  test('global options before the command, operands, --json where the command has it', () => {
    const call = quickCall(argv('-c', '/etc/x.yaml', '--state', '/s', '--socket', '/r.sock', 'hook', ...HOOK, 'isp1'));
    expect(call?.spec.name).toBe('hook');
    expect(call?.globals).toEqual({ config: '/etc/x.yaml', state: '/s', socket: '/r.sock' });
    expect(call?.operands).toEqual([...HOOK, 'isp1']);
    // The optional ipparam, absent, is an undefined operand, as commander gives it.
    expect(quickCall(argv('hook', ...HOOK))?.operands).toEqual([...HOOK, undefined]);
    expect(quickCall(argv('status'))).toMatchObject({ globals: { config: '/etc/dispatcher/config.yaml' }, operands: [], json: false });
    expect(quickCall(argv('pools', '--json'))).toMatchObject({ operands: [], json: true });
    expect(quickCall(argv('assign', '--json', '198.18.0.10', 'isp1'))).toMatchObject({ operands: ['198.18.0.10', 'isp1'], json: true });
    expect(quickCall(argv('release', '198.18.0.10'))).toMatchObject({ operands: ['198.18.0.10'], json: false });
  });

  test("a subcommand by both its words: keepalived's notify script's `ha ROLE`", () => {
    // As render/ha-notify.ts writes it: the globals, then `ha "$role"`.
    const call = quickCall(argv('--config', '/etc/x.yaml', '--socket', '/r.sock', 'ha', 'master'));
    expect(call).toMatchObject({ spec: { parent: 'ha', name: 'master' }, globals: { config: '/etc/x.yaml', socket: '/r.sock' }, operands: [], json: false });
    for (const role of ['backup', 'fault']) expect(quickCall(argv('ha', role))?.spec).toMatchObject({ parent: 'ha', name: role });
  });

  test('anything else is left to commander', () => {
    const left = [
      [], // no command: help
      ['--version'],
      ['start'],
      ['plan'],
      ['status', '--help'],
      ['help', 'status'],
      ['hook', 'ip-up'], // too few operands: commander says which is missing
      ['hook', ...HOOK, 'isp1', 'extra'],
      ['hook', ...HOOK, '--json'], // hook has no --json
      ['status', '--socket', '/r.sock'], // a global after the command
      ['--config=/etc/x.yaml', 'status'],
      ['-c/etc/x.yaml', 'status'],
      ['--socket'], // a global without its value
      ['--', 'status'],
      ['--json', 'status'],
      ['release'],
      ['assign', '198.18.0.10'],
      ['ha'], // commander lists its subcommands
      ['ha', 'render', '--dir', '/tmp/ha'],
      ['ha', 'render'],
      ['ha', 'primary'],
      ['ha', 'master', 'now'],
      ['ha', 'master', '--json'],
      ['ha', 'master', '--help'],
      ['ha', '--socket', '/r.sock', 'master'],
      ['master'], // a subcommand alone is no command
      ['help', 'ha'],
    ];
    for (const args of left) expect([args, quickCall(argv(...args))]).toEqual([args, undefined]);
  });
});

describe('both doors do the same', () => {
  let dir: string;
  let socket: string;
  let server: ControlServer;
  const received: ControlRequest[] = [];
  const run = { at: '2026-11-29T10:00:00.000Z', reasons: ['assign'], ok: true, durationMs: 3, applied: {} };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-quick-'));
    socket = join(dir, 'ctl.sock');
    server = await listenControl(
      socket,
      async (request) => {
        received.push(request);
        switch (request.cmd) {
          case 'hook':
            return { uplink: 'isp1' };
          case 'pools':
            return { uplinks: [], clients: 0 };
          case 'status':
            return { version: '0.1.0', pid: 1, clients: 0 };
          case 'assign':
            return { ip: request.ip, uplink: request.uplink, pinned: true, run };
          case 'release':
            if (request.ip === '198.18.0.99') throw new RequestError('198.18.0.99 is not assigned to any pool');
            return { ip: request.ip, released: 'isp2', run };
          case 'ha':
            return {
              role: request.role,
              previous: 'unknown',
              conntrackd: request.role === 'fault' ? [{ step: '-t', ok: false, said: 'cannot connect' }] : [{ step: '-c', ok: true, said: '' }],
              run,
              sessions: request.role === 'backup' ? [{ uplink: 'dsl', ok: true, said: '' }] : [],
              forgotten: request.role === 'master' ? { isp2: 3, dsl: 0 } : {},
            };
          default:
            throw new Error(`unexpected ${request.cmd}`);
        }
      },
      silentLogger,
    );
  });

  afterAll(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** What one door sends, prints and returns. */
  async function through(door: (argv: string[]) => Promise<number | undefined>, args: string[]) {
    received.length = 0;
    const out: string[] = [];
    const err: string[] = [];
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => Boolean(out.push(String(chunk))));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => Boolean(err.push(String(chunk))));
    try {
      const code = await door(argv('--socket', socket, ...args));
      return { code, sent: [...received], out: out.join(''), err: err.join('') };
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  }

  const calls = [
    ['hook', ...HOOK],
    ['hook', ...HOOK, 'isp1'],
    ['pools', '--json'],
    ['status', '--json'],
    ['assign', '198.18.0.10', 'isp1'],
    ['assign', '198.18.0.10', 'isp1', '--json'],
    ['release', '198.18.0.10'],
    ['release', '198.18.0.99'], // refused by the daemon: exit 2 with its reason
    ['hook', 'ip-sideways', 'ppp0', '/dev/ttyS0', '38400', '192.0.2.2', '192.0.2.1'], // refused before asking
    ['ha', 'master'],
    ['ha', 'backup'],
    ['ha', 'fault'], // a conntrackd step failed: said, exit 0
    ['--socket', '/nonexistent/ctl.sock', 'ha', 'master'], // the last --socket counts: no daemon, exit 1
  ];

  test('commander still has all of `ha`: render and the roles in its help', async () => {
    const help = await through((a) => main(a, new FakeRunner()), ['ha', '--help']);
    expect(help.code).toBe(0);
    for (const word of ['render', 'master', 'backup', 'fault']) expect(help.out).toMatch(new RegExp(`^  ${word}\\b`, 'm'));
    const missing = await through((a) => main(a, new FakeRunner()), ['ha', 'render']);
    expect(missing).toMatchObject({ code: 2, sent: [] });
    expect(missing.err).toMatch(/--dir/);
  });

  test('ha ROLE says what the role change did: the lines dialled or hung up, the connections forgotten, what failed', async () => {
    const said = async (role: string) => (await through(quickMain, ['ha', role])).out;
    expect(await said('master')).toBe('unknown → master; connections forgotten (their address stayed behind): isp2 3\n');
    expect(await said('backup')).toBe('unknown → backup; hung up dsl\n');
    expect(await said('fault')).toBe('unknown → fault (failed: conntrackd -t: cannot connect)\n');
  });

  test.each(calls.map((args) => [args.join(' '), args] as const))('%s', async (_name, args) => {
    const commander = await through((a) => main(a, new FakeRunner()), args);
    const quick = await through(quickMain, args);
    expect(quick).toEqual(commander);
    // Not a vacuous match: the call reached the daemon or was refused with a message.
    expect(commander.sent.length + commander.err.length).toBeGreaterThan(0);
  });
});

// The CLI loads only the module of the command it runs (start-up time: the
// ppp hook's is part of failover time), so finding that command in argv must
// agree with commander.

import { describe, expect, test } from '@jest/globals';
import { commandOf, modulesFor } from '../../src/cli/main.js';

const argv = (...args: string[]): string[] => ['node', 'dispatcher', ...args];
const names = (args: string[]): string[] => modulesFor(argv(...args)).flatMap((m) => m.names);

describe('which command argv names', () => {
  test('the first operand after the global options, whose values are skipped', () => {
    expect(commandOf(argv('pools'))).toBe('pools');
    expect(commandOf(argv('--config', 'pools', 'status', '--json'))).toBe('status');
    expect(commandOf(argv('-c', '/etc/x.yaml', '--state', '/s', '--socket', '/r.sock', 'hook', 'ip-down'))).toBe('hook');
    expect(commandOf(argv('--config=/etc/x.yaml', '-c/etc/y.yaml', 'assign', '10.0.0.2', 'isp1'))).toBe('assign');
    expect(commandOf(argv('--', 'release'))).toBe('release');
    expect(commandOf(argv('--json'))).toBeUndefined();
  });

  test('one module for a known command, none for --version, all for help or an unknown name', () => {
    expect(names(['--socket', '/r.sock', 'hook', 'ip-up'])).toEqual(['hook']);
    expect(names(['release', '10.0.0.2'])).toEqual(['assign', 'release']);
    expect(names(['--version'])).toEqual([]);
    const all = names([]);
    expect(all).toEqual(expect.arrayContaining(['start', 'pools', 'status', 'hook', 'assign', 'release', 'lab']));
    expect(names(['--help'])).toEqual(all);
    expect(names(['help', 'pools'])).toEqual(all);
    expect(names(['pool'])).toEqual(all);
    // Every command is listed once.
    expect(new Set(all).size).toBe(all.length);
  });

  test('the daemon and the lab start processes: the exec seam is loaded before they run', () => {
    for (const name of ['start', 'lab']) expect(modulesFor(argv(name)).map((m) => m.light ?? false)).toEqual([false]);
    for (const name of ['hook', 'pools', 'status', 'assign', 'release']) expect(modulesFor(argv(name)).map((m) => m.light)).toEqual([true]);
  });
});

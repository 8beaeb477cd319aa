// Installing on a real gateway: the package installs from its tarball with
// `npm install -g` and gives the `dispatcher` command; `install-service`
// writes a unit that systemd's own checker accepts without a word, with the
// directives a service manager needs, and an example config that loads —
// never over an operator's config.

import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseConfig } from '../../src/config/load.js';
import { DISPATCHER_BIN } from '../../src/lab/harness.js';
import { DAEMON_NODE_FLAGS } from '../../src/render/systemd-unit.js';
import { ExecaRunner } from '../../src/system/exec.js';
import { readableCopy } from '../helpers/readable-copy.js';
import { runTempDir } from '../../src/lab/leftovers.js';

jest.setTimeout(180_000);

const runner = new ExecaRunner();
const ROOT = join(DISPATCHER_BIN, '..', '..');

describe('installing on a real gateway', () => {
  let dir: string;

  beforeAll(async () => {
    dir = await runTempDir('service');
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('writes a unit systemd-analyze verify accepts silently, and an example config that loads', async () => {
    const config = join(dir, 'etc', 'config.yaml');
    const units = join(dir, 'units');
    const result = await runner.run([process.execPath, DISPATCHER_BIN, '--config', config, 'install-service', '--unit-dir', units]);
    expect(result.stdout).toContain('systemctl daemon-reload && systemctl enable --now dispatcher');
    const unitFile = join(units, 'dispatcher.service');
    const verify = await runner.run(['systemd-analyze', 'verify', unitFile], { okExitCodes: [0, 1] });
    expect({ exit: verify.exitCode, said: verify.stderr.trim() }).toEqual({ exit: 0, said: '' });
    const unit = await readFile(unitFile, 'utf8');
    for (const line of [
      'Type=exec',
      `ExecStart=${[process.execPath, ...DAEMON_NODE_FLAGS, DISPATCHER_BIN].join(' ')} --config ${config} start`,
      'ExecReload=/bin/kill -HUP $MAINPID',
      'Restart=on-failure',
      'StateDirectory=dispatcher',
      'RuntimeDirectory=dispatcher',
      'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_SETGID',
      'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_SETGID',
      'WantedBy=multi-user.target',
    ]) {
      expect(unit.split('\n')).toContain(line);
    }
    // The defaults of state and socket are the directories systemd makes for the unit.
    const example = parseConfig(await readFile(config, 'utf8'), config);
    expect([example.state, example.socket]).toEqual(['/var/lib/dispatcher', '/run/dispatcher/dispatcher.sock']);
    // The schema the example names sits beside it, for editors.
    expect(await readFile(join(dir, 'etc', 'config.schema.json'), 'utf8')).toBe(await readFile(new URL('../../pools/config.schema.json', import.meta.url), 'utf8'));
  });

  test("an operator's config is never overwritten; a path with spaces is quoted for systemd", async () => {
    const config = join(dir, 'my etc', 'config.yaml');
    await runner.run(['mkdir', '-p', join(dir, 'my etc')]);
    await writeFile(config, '# mine\n');
    const result = await runner.run([process.execPath, DISPATCHER_BIN, '--config', config, 'install-service', '--unit-dir', join(dir, 'units2')]);
    expect(result.stdout).toContain(`kept the existing config ${config}`);
    expect(await readFile(config, 'utf8')).toBe('# mine\n');
    const unitFile = join(dir, 'units2', 'dispatcher.service');
    expect(await readFile(unitFile, 'utf8')).toContain(`--config "${config}" start`);
    const verify = await runner.run(['systemd-analyze', 'verify', unitFile], { okExitCodes: [0, 1] });
    expect(verify.stderr.trim()).toBe('');
  });

  test('doctor without root says it needs root instead of reporting a broken kernel', async () => {
    // nobody may not be able to read the checkout (root's home is 0700): run a copy it can read.
    const program = await readableCopy();
    try {
      const result = await runner.run(['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', ...program.argv(['doctor'])], { okExitCodes: [0, 1, 2] });
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain('doctor needs root');
    } finally {
      await program.remove();
    }
  });

  test('npm install -g from the packed tarball gives a working dispatcher command', async () => {
    const packed = await runner.run(['npm', 'pack', '--pack-destination', dir, '--silent'], { timeoutMs: 120_000, env: { npm_config_loglevel: 'error' } as Record<string, string> });
    const tarball = join(dir, packed.stdout.trim().split('\n').pop() as string);
    const prefix = join(dir, 'global');
    await runner.run(['npm', 'install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { timeoutMs: 150_000 });
    const installed = join(prefix, 'bin', 'dispatcher');
    const version = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect((await runner.run([installed, '--version'])).stdout.trim()).toBe(version.version);
    const units = join(dir, 'units3');
    await runner.run([installed, '--config', join(dir, 'etc', 'config.yaml'), 'install-service', '--unit-dir', units]);
    expect(await readFile(join(units, 'dispatcher.service'), 'utf8')).toContain(`${join(prefix, 'lib', 'node_modules', 'dispatcher', 'bin', 'dispatcher')} --config`);
    // The web page and the Prometheus/Grafana files ship with it.
    for (const file of ['web/index.html', 'web/app.js', 'web/style.css', 'contrib/prometheus/alerts.yml', 'contrib/grafana/dispatcher.json']) {
      await readFile(join(prefix, 'lib', 'node_modules', 'dispatcher', file));
    }
  });
});

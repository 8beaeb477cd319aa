import { afterEach, beforeEach, expect, test } from '@jest/globals';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { askDaemon } from '../../src/system/control-client.js';
import { AlreadyRunning, listenControl, type ControlServer } from '../../src/system/control-server.js';
import { silentLogger } from '../../src/system/logger.js';
import { MAX_REQUEST_BYTES, type ControlRequest } from '../../src/schema/control.js';
import { RequestError } from '../../src/model/errors.js';

let dir: string;
let socket: string;
let server: ControlServer;
const handled: ControlRequest[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dispatcher-control-'));
  socket = join(dir, 'run', 'ctl.sock');
  handled.length = 0;
  server = await listenControl(
    socket,
    async (request) => {
      handled.push(request);
      if (request.cmd === 'release') throw new RequestError(`${request.ip} is not assigned to any pool`);
      return { echo: request.cmd };
    },
    silentLogger,
  );
});

afterEach(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

function raw(text: string): Promise<string> {
  return new Promise((resolve) => {
    const client = connect(socket);
    let answer = '';
    client.setEncoding('utf8');
    client.on('data', (d: string) => (answer += d));
    client.on('close', () => resolve(answer));
    client.on('connect', () => client.end(text));
  });
}

test('the socket is created 0600', async () => {
  expect(((await stat(socket)).mode & 0o777).toString(8)).toBe('600');
});

test('requests are answered; refused ones carry their reason', async () => {
  expect(await askDaemon(socket, { cmd: 'pools' })).toEqual({ ok: true, result: { echo: 'pools' } });
  expect(await askDaemon(socket, { cmd: 'release', ip: '198.18.0.10' })).toEqual({ ok: false, error: { kind: 'request', message: '198.18.0.10 is not assigned to any pool' } });
});

test('malformed, unknown and oversized requests get an error, not a crash, and reach no handler', async () => {
  expect(JSON.parse(await raw('{nope\n'))).toEqual({ ok: false, error: { kind: 'request', message: 'request is not JSON' } });
  expect(JSON.parse(await raw('{"cmd":"rm -rf /"}\n')).error.message).toMatch(/unknown command/);
  expect(JSON.parse(await raw('{"cmd":"assign","ip":"198.18.0.10","uplink":"isp1; reboot"}\n')).error.message).toMatch(/not an uplink name/);
  expect(JSON.parse(await raw('{"cmd":"pools","extra":1}\n')).error.message).toMatch(/unexpected field/);
  expect(JSON.parse(await raw(`${'x'.repeat(MAX_REQUEST_BYTES + 10)}\n`)).error.message).toMatch(/larger than/);
  expect(handled).toEqual([]);
  expect(await askDaemon(socket, { cmd: 'ping' })).toEqual({ ok: true, result: { echo: 'ping' } });
});

test('a second daemon on the same socket is refused; a stale socket file is replaced', async () => {
  await expect(listenControl(socket, async () => null, silentLogger)).rejects.toBeInstanceOf(AlreadyRunning);
  await server.close();
  server = await listenControl(socket, async () => 'again', silentLogger);
  expect(await askDaemon(socket, { cmd: 'ping' })).toEqual({ ok: true, result: 'again' });
});

test('no daemon: the client says so instead of failing', async () => {
  expect(await askDaemon(join(dir, 'absent.sock'), { cmd: 'ping' })).toBeNull();
});

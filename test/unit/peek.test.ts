// The CLI's way to the daemon: the socket read from the config file without
// verifying the rest (a config mid-edit still reaches a running daemon).

import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { peekSocket, plainSocket } from '../../src/config/peek.js';
import { yamlSocket } from '../../src/config/peek-yaml.js';
import { DEFAULTS } from '../../src/schema/config.js';
import { DEFAULT_SOCKET } from '../../src/schema/paths.js';

describe('peeking at the socket', () => {
  let dir: string;
  const write = async (name: string, text: string): Promise<string> => {
    const path = join(dir, name);
    await writeFile(path, text);
    return path;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-peek-'));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the config's socket, even when the rest of the config is wrong", async () => {
    expect(await peekSocket(await write('ok.yaml', 'socket: /run/gw/ctl.sock\nlan: { interfaces: [lan0] }\n'))).toBe('/run/gw/ctl.sock');
    expect(await peekSocket(await write('bad.yaml', 'socket: /run/gw/ctl.sock\nuplinks: 7\nfrobnicate: yes\n'))).toBe('/run/gw/ctl.sock');
  });

  test('the default where the file gives none it could use: absent, unparsable, not a mapping, a relative path', async () => {
    expect(DEFAULT_SOCKET).toBe(DEFAULTS.socket);
    expect(await peekSocket(join(dir, 'absent.yaml'))).toBe(DEFAULT_SOCKET);
    expect(await peekSocket(await write('broken.yaml', 'socket: [unclosed\n'))).toBe(DEFAULT_SOCKET);
    expect(await peekSocket(await write('list.yaml', '- a\n- b\n'))).toBe(DEFAULT_SOCKET);
    expect(await peekSocket(await write('relative.yaml', 'socket: run/ctl.sock\n'))).toBe(DEFAULT_SOCKET);
  });

  test('the plain cases are read without the YAML library, and the same as it reads them', async () => {
    const plain = {
      'lan: { interfaces: [lan0] }\n': DEFAULT_SOCKET,
      'socket: /run/gw/ctl.sock   # where the CLI asks\nlan: {}\n': '/run/gw/ctl.sock',
      'socket:\t/run/gw/ctl.sock\r\nlan: {}\r\n': '/run/gw/ctl.sock',
    };
    for (const [text, socket] of Object.entries(plain)) {
      expect(plainSocket(text)).toBe(socket);
      expect(yamlSocket(text)).toBe(socket);
    }
    // YAML's to read: quoted, flow style, nested, two mentions, several documents, a character the line is not read with.
    for (const text of [
      'socket: "/run/gw/ctl.sock"\n',
      '{ socket: /run/gw/ctl.sock }\n',
      'ha:\n  socket: /run/ha.sock\n',
      '# socket: /run/old.sock\nsocket: /run/gw/ctl.sock\n',
      '---\nsocket: /run/gw/ctl.sock\n',
      'socket: /run/gw/ctl.sock #\nsocket: /run/other.sock\n',
      'socket: /run/gw: ctl\n',
      'socket: /run/*alias\n',
    ]) {
      expect(plainSocket(text)).toBeUndefined();
    }
    // And where the library reads them, the file's answer is the library's.
    expect(await peekSocket(await write('quoted.yaml', 'socket: "/run/gw/ctl.sock"\n'))).toBe('/run/gw/ctl.sock');
    expect(await peekSocket(await write('flow.yaml', '{ socket: /run/gw/ctl.sock }\n'))).toBe('/run/gw/ctl.sock');
    expect(await peekSocket(await write('commented.yaml', '# socket: /run/old.sock\nsocket: /run/gw/ctl.sock\n'))).toBe('/run/gw/ctl.sock');
    expect(await peekSocket(await write('nested.yaml', 'ha:\n  socket: /run/ha.sock\n'))).toBe(DEFAULT_SOCKET);
  });
});

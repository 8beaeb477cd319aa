// The unit `install-service` writes: what systemd runs, quoted as systemd
// reads it, with source maps on so a crash in the journal names src/ lines.

import { describe, expect, test } from '@jest/globals';
import { systemdUnit } from '../../src/render/systemd-unit.js';

const paths = { node: '/usr/bin/node', dispatcher: '/opt/dispatcher/bin/dispatcher', config: '/etc/dispatcher/config.yaml' };

describe('systemd unit', () => {
  test('starts the daemon in the foreground with source maps on', () => {
    const lines = systemdUnit(paths).split('\n');
    expect(lines).toContain('ExecStart=/usr/bin/node --enable-source-maps --max-semi-space-size=4 /opt/dispatcher/bin/dispatcher --config /etc/dispatcher/config.yaml start');
    expect(lines).toContain('Type=exec');
    expect(lines).toContain('Documentation=file:///opt/dispatcher/README.md');
  });

  test('quotes a path with spaces and doubles % for systemd', () => {
    const unit = systemdUnit({ ...paths, config: '/etc/my dispatcher/100%.yaml' });
    expect(unit.split('\n')).toContain('ExecStart=/usr/bin/node --enable-source-maps --max-semi-space-size=4 /opt/dispatcher/bin/dispatcher --config "/etc/my dispatcher/100%%.yaml" start');
  });
});

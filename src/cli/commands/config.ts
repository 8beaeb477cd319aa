import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { configJsonSchemaText } from '../../schema/config.js';
import type { CliContext } from '../context.js';

export function registerConfig(program: Command, ctx: CliContext): void {
  const config = program.command('config').description('the configuration file: check one, or print its JSON Schema for editors');
  config
    .command('schema')
    .description('print the JSON Schema of the config file (pools/config.schema.json is this output)')
    .action(() => {
      ctx.out(configJsonSchemaText());
    });
  config
    .command('check')
    .description('check a config file without root and without touching anything (exit 0 ok, 2 with every problem)')
    .argument('[file]', 'the file to check (default: --config)')
    .action(async (file: string | undefined) => {
      const { config: globalFile, state, socket } = ctx.globals();
      const path = file ?? globalFile;
      // The same load as `start` (YAML, schema, cross-field checks, hook programs and key file): a ConfigError exits 2.
      const checked = await loadConfig(path, { ...(state ? { state } : {}), ...(socket ? { socket } : {}) });
      ctx.out(`${path}: OK (${checked.uplinks.length} uplink${checked.uplinks.length === 1 ? '' : 's'}: ${checked.uplinks.map((u) => u.name).join(', ')}; LAN ${checked.lan.interfaces.join(', ')})\n`);
    });
}

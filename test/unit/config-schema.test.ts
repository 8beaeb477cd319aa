// The config schema as the one source: pools/config.schema.json is its output,
// the examples point editors at it, pools/README.md's key tables name exactly
// its keys with its defaults, and `dispatcher config schema|check` serve it.

import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { configJsonSchema, configJsonSchemaText } from '../../src/schema/config.js';
import type { Runner } from '../../src/system/exec.js';

const POOLS = new URL('../../pools/', import.meta.url);
const pools = (file: string): string => readFileSync(new URL(file, POOLS), 'utf8');

test('pools/config.schema.json is the schema as the code defines it', () => {
  const committed = pools('config.schema.json');
  if (committed !== configJsonSchemaText()) {
    throw new Error(
      'pools/config.schema.json is stale: the config schema (src/schema/config.ts) changed. Regenerate it with `npm run schema` (npm run build && node bin/dispatcher config schema > pools/config.schema.json) and commit it.',
    );
  }
});

test('every example config points the YAML language server at the schema on its first line', () => {
  const examples = readdirSync(POOLS).filter((f) => f.endsWith('.yaml'));
  expect(examples.length).toBeGreaterThanOrEqual(4);
  for (const file of examples) expect(`${file}: ${pools(file).split('\n')[0]}`).toBe(`${file}: # yaml-language-server: $schema=./config.schema.json`);
});

test('the JSON schema describes the YAML the operator writes: snake_case keys, durations as text, defaults as written', () => {
  const schema = configJsonSchema() as { properties: Record<string, { properties?: Record<string, { default?: unknown }> }>; required: string[]; additionalProperties: boolean };
  expect(schema.required).toEqual(['lan', 'uplinks']);
  expect(schema.additionalProperties).toBe(false);
  expect(schema.properties.health?.properties?.interval?.default).toBe('100ms');
  expect(schema.properties.clients?.properties?.per_mac?.default).toBe(64);
  expect(schema.properties.marks?.properties?.mask?.default).toBe('0xff000000');
});

// ---- pools/README.md's key tables against the schema

interface JsonSchema {
  readonly type?: string;
  readonly properties?: Record<string, JsonSchema>;
  readonly items?: JsonSchema;
  readonly default?: unknown;
}

/** Every key the operator can write, as README names them (uplinks' keys under "uplinks."), with its default. */
function schemaKeys(schema: JsonSchema, prefix = ''): Map<string, JsonSchema> {
  const keys = new Map<string, JsonSchema>();
  for (const [name, value] of Object.entries(schema.properties ?? {})) {
    const inner = value.properties ? value : value.items?.properties ? value.items : null;
    if (inner) for (const [key, leaf] of schemaKeys(inner, `${prefix}${name}.`)) keys.set(key, leaf);
    else keys.set(`${prefix}${name}`, value);
  }
  return keys;
}

interface Row {
  readonly key: string;
  readonly default: string;
}

/** Rows of every "Key | Default | Meaning" table; a row's keys are relative to a heading that names one section. */
function readmeRows(text: string): Row[] {
  const rows: Row[] = [];
  let prefix = '';
  let inTable = false;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      const spans = [...line.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);
      prefix = spans.length === 1 ? `${spans[0]}.` : '';
      inTable = false;
    } else if (/^\| Key \| Default \| Meaning \|/.test(line)) {
      inTable = true;
    } else if (inTable && line.startsWith('|') && !line.startsWith('|--')) {
      const [keyCell, defaultCell] = line.split(' | ').map((c) => c.replace(/^\| /, '').trim());
      for (const m of (keyCell ?? '').matchAll(/`([^`]+)`/g)) rows.push({ key: `${prefix}${m[1]}`, default: defaultCell ?? '' });
    } else if (!line.startsWith('|')) {
      inTable = false;
    }
  }
  return rows;
}

/** The value a Default cell starts with: a code span, or its first word. */
function leading(cell: string): string {
  return /^`([^`]*)`/.exec(cell)?.[1] ?? cell.split(/\s/)[0] ?? '';
}

describe("pools/README.md's key tables", () => {
  const keys = schemaKeys(configJsonSchema() as JsonSchema);
  const rows = readmeRows(pools('README.md'));
  const wildcards = rows.filter((r) => r.key.endsWith('.*')).map((r) => r.key.slice(0, -1));

  test('document every key of the schema', () => {
    const undocumented = [...keys.keys()].filter((key) => !rows.some((r) => r.key === key) && !wildcards.some((w) => key.startsWith(w)));
    expect(undocumented).toEqual([]);
    expect(rows.length).toBeGreaterThan(50);
  });

  test('document no key the schema does not have', () => {
    const unknown = rows.filter((r) => !r.key.endsWith('.*') && !keys.has(r.key)).map((r) => r.key);
    expect(unknown).toEqual([]);
    for (const w of wildcards) expect([...keys.keys()].some((k) => k.startsWith(w))).toBe(true);
  });

  test('give each default as the schema has it, and none where it has none', () => {
    const wrong = rows.flatMap((row) => {
      const leaf = keys.get(row.key);
      if (!leaf) return [];
      const shown = leading(row.default);
      if (leaf.default === undefined) return /^[`0-9]/.test(row.default) ? [`${row.key}: README says ${row.default}, the schema has no default`] : [];
      const same = typeof leaf.default === 'number' ? Number(shown) === leaf.default : typeof leaf.default === 'string' ? shown === leaf.default : shown === JSON.stringify(leaf.default);
      return same ? [] : [`${row.key}: README says ${row.default}, the schema ${JSON.stringify(leaf.default)}`];
    });
    expect(wrong).toEqual([]);
  });
});

// ---- dispatcher config schema | check

/** Checking a config runs no command at all. */
const NO_COMMANDS: Runner = {
  run: async (argv) => {
    throw new Error(`config check ran ${argv.join(' ')}`);
  },
  spawn: (argv) => {
    throw new Error(`config check started ${argv.join(' ')}`);
  },
};

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
  const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0);
  try {
    const code = await main(['node', 'dispatcher', ...args], NO_COMMANDS);
    return { code, out: out.join(''), err: err.join('') };
  } finally {
    stdout.mockRestore();
    stderr.mockRestore();
  }
}

describe('dispatcher config', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dispatcher-config-cli-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('schema prints pools/config.schema.json', async () => {
    const result = await cli(['config', 'schema']);
    expect(result).toEqual({ code: 0, out: pools('config.schema.json'), err: '' });
  });

  test('check FILE: one line and exit 0 for a good file', async () => {
    const result = await cli(['config', 'check', new URL('lab.yaml', POOLS).pathname]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^\S*lab\.yaml: OK \(3 uplinks: isp1, isp2, isp3; LAN lan0\)\n$/);
    expect(result.err).toBe('');
  });

  test('check without FILE checks --config; every problem, with its field and fix, exits 2', async () => {
    const path = join(dir, 'bad.yaml');
    await writeFile(path, pools('lab.yaml').replace('weight: 2', 'weight: 0').replace('interface: ppp1', 'interface: lan0').replace('scan: {', 'helth: {}\nscan: {'));
    const result = await cli(['--config', path, 'config', 'check']);
    expect(result.code).toBe(2);
    expect(result.out).toBe('');
    expect(result.err).toBe(
      `dispatcher: invalid configuration in ${path}:\n` +
        '  uplinks[0].weight: must be a whole number from 1 to 256, not 0 — use a positive integer (it is also the multipath route weight); 1 is the default\n' +
        '  helth: unknown key — did you mean "health"?\n' +
        '  uplinks[1].interface: lan0 is also a LAN interface — an interface is either in lan.interfaces or an uplink, not both\n',
    );
  });

  test('check of a file that cannot be read names it and exits 2', async () => {
    const result = await cli(['config', 'check', join(dir, 'absent.yaml')]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/--config: cannot read .*absent\.yaml \(ENOENT\)/);
  });
});

// The only reader of configuration files: read, parse YAML, verify.

import { access, constants, readFile, stat } from 'node:fs/promises';
import { validateCronExpression } from 'cron';
import { parseDocument } from 'yaml';
import type { Config } from '../model/config.js';
import { ConfigError, type ConfigProblem } from '../model/errors.js';
import { verifyConfig } from './verify.js';

export interface Overrides {
  readonly state?: string;
  readonly socket?: string;
}

function validateSchedule(expression: string): string | null {
  const result = validateCronExpression(expression);
  return result.valid ? null : `is not a cron expression (${result.error?.message ?? 'unreadable'})`;
}

/** Parses YAML text and verifies it; throws ConfigError naming each problem. */
export function parseConfig(text: string, source: string, overrides: Overrides = {}): Config {
  // prettyErrors: the errors carry their line and column (linePos).
  const document = parseDocument(text, { uniqueKeys: true, prettyErrors: true, logLevel: 'error' });
  if (document.errors.length > 0) {
    throw new ConfigError(
      document.errors.map((error) => {
        const [line, column] = error.linePos?.[0] ? [error.linePos[0].line, error.linePos[0].col] : [0, 0];
        return { field: `(YAML line ${line}, column ${column})`, problem: (error.message.split('\n')[0] as string).replace(/ at line \d+, column \d+:?$/, ''), fix: 'correct the YAML syntax' };
      }),
      source,
    );
  }
  let raw: unknown;
  try {
    raw = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // Aliases are resolved only here: an alias before its anchor, or an alias bomb (found by fuzzing).
    throw new ConfigError([{ field: '(YAML aliases)', problem: (error as Error).message, fix: 'define each anchor (&name) before its aliases (*name) use it, and use few aliases' }], source);
  }
  const doc = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...raw, ...definedOnly(overrides) } : raw;
  return verifyConfig(doc, { validateSchedule }, source);
}

function definedOnly(overrides: Overrides): Record<string, string> {
  return Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)) as Record<string, string>;
}

/** Hook programs, the TSIG key and the web token must be usable now, not fail silently at the first outage. */
async function checkFiles(config: Config, source: string): Promise<void> {
  const missing = await Promise.all(
    config.notify.exec.map(async (program, i) => {
      try {
        await access(program, constants.X_OK);
        return null;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? 'error';
        return { field: `notify.exec[${i}]`, problem: `${program} is not an executable file (${code})`, fix: 'give the path of an existing program and make it executable (chmod +x)' };
      }
    }),
  );
  const token = config.web?.tokenFile ? await webToken(config.web.tokenFile) : null;
  const problems = [...missing.filter((p) => p !== null), ...(config.ddns ? await checkKeyFile(config.ddns.keyFile) : []), ...(token && 'problem' in token ? [token.problem] : [])];
  if (problems.length > 0) throw new ConfigError(problems, source);
}

/** The web dashboard's token: the first line of web.token_file, 16 characters or more, in a file only its owner reads. */
async function webToken(path: string): Promise<{ token: string } | { problem: ConfigProblem }> {
  const field = 'web.token_file';
  const fix = `write one into a file only root reads: (umask 077; openssl rand -hex 32 > ${path})`;
  try {
    const [text, info] = await Promise.all([readFile(path, 'utf8'), stat(path)]);
    const token = text.split('\n')[0]?.trim() ?? '';
    if (token.length < 16) return { problem: { field, problem: `${path} holds no token of 16 characters or more`, fix } };
    if ((info.mode & 0o077) !== 0) return { problem: { field, problem: `${path} can be read by other users (mode ${(info.mode & 0o777).toString(8)})`, fix: `chmod 600 ${path}` } };
    return { token };
  } catch (error) {
    return { problem: { field, problem: `cannot read ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, fix } };
  }
}

/** The token of web.token_file as it is now (read again by every reload); a ConfigError naming what is wrong with it. */
export async function readWebToken(path: string, source: string): Promise<string> {
  const token = await webToken(path);
  if ('problem' in token) throw new ConfigError([token.problem], source);
  return token.token;
}

/** The TSIG key must be readable and look like one now, not fail at the first update. */
async function checkKeyFile(path: string): Promise<ConfigProblem[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    return [{ field: 'ddns.key', problem: `cannot read ${path} (${code})`, fix: 'create it with "tsig-keygen -a hmac-sha256 NAME > FILE" and give the server the same key' }];
  }
  if (!/\bkey\s+"?[A-Za-z0-9._-]+"?\s*\{[^}]*\balgorithm\s+[^;]+;[^}]*\bsecret\s+"[A-Za-z0-9+/=]+"\s*;/s.test(text)) {
    return [{ field: 'ddns.key', problem: `${path} is not a TSIG key file (key "NAME" { algorithm …; secret "…"; };)`, fix: 'write it with tsig-keygen or ddns-confgen, as the server has it' }];
  }
  return [];
}

export async function loadConfig(path: string, overrides: Overrides = {}): Promise<Config> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError([{ field: '--config', problem: `cannot read ${path} (${code})`, fix: 'pass --config with the path of your config file (start from pools/example.yaml)' }]);
  }
  const config = parseConfig(text, path, overrides);
  await checkFiles(config, path);
  return config;
}

// What every command gets: global options, the exec seam, output streams.

import type { Config } from '../model/config.js';
import type { Runner } from '../system/exec.js';
import type { Command, RequestOf, ResultOf } from '../schema/control.js';
import { readFileSync } from 'node:fs';
import { ask } from '../system/control-client.js';
import { peekSocket } from '../config/peek.js';

export const DEFAULT_CONFIG = '/etc/dispatcher/config.yaml';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface Globals {
  readonly config: string;
  readonly state?: string;
  readonly socket?: string;
}

export interface CliContext {
  readonly runner: Runner;
  readonly version: string;
  out(text: string): void;
  err(text: string): void;
  globals(): Globals;
  /** Set by a command that ends with a code other than 0 without throwing. */
  exitCode: number;
}

/** A context that writes to this process's streams; globals until the parser has read them. */
export function processContext(runner: Runner, globals: Globals = { config: DEFAULT_CONFIG }): CliContext {
  return {
    runner,
    version: VERSION,
    out: (text) => void process.stdout.write(text),
    err: (text) => void process.stderr.write(text),
    globals: () => globals,
    exitCode: 0,
  };
}

export async function configFor(ctx: CliContext): Promise<Config> {
  const { config, state, socket } = ctx.globals();
  // Loaded on use: the config's reader and schema are most of the CLI's start-up,
  // and a command given --socket that the daemon answers never needs them.
  const { loadConfig } = await import('../config/load.js');
  return loadConfig(config, { ...(state ? { state } : {}), ...(socket ? { socket } : {}) });
}

/**
 * Where the daemon listens: --socket, else the config's, else the default
 * (config/peek.ts: read without verifying the rest, so a config mid-edit does
 * not cut the operator or pppd off from a running daemon, and asking the
 * daemon stays fast).
 */
export async function socketFor(ctx: CliContext): Promise<string> {
  const { config, socket } = ctx.globals();
  return socket ?? peekSocket(config);
}

/** The running daemon's result for a request, or null when none is running. */
export async function fromDaemon<C extends Command>(ctx: CliContext, request: RequestOf<C>): Promise<ResultOf<C> | null> {
  return ask(await socketFor(ctx), request);
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}

// What every command gets: global options, the exec seam, output streams.

import type { Config } from '../model/config.js';
import { ConfigError } from '../model/errors.js';
import type { Runner } from '../system/exec.js';
import type { Command, RequestOf, ResultOf } from '../schema/control.js';
import { ask } from '../system/control-client.js';

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

export async function configFor(ctx: CliContext): Promise<Config> {
  const { config, state, socket } = ctx.globals();
  // Loaded on use: the config's reader and schema are most of the CLI's start-up,
  // and a command given --socket that the daemon answers never needs them.
  const { loadConfig } = await import('../config/load.js');
  return loadConfig(config, { ...(state ? { state } : {}), ...(socket ? { socket } : {}) });
}

/**
 * Where the daemon listens: --socket, else the config's, else the default.
 * A config file that does not load (an operator mid-edit, a refused reload)
 * must not cut the operator or pppd off from a running daemon.
 */
export async function socketFor(ctx: CliContext): Promise<string> {
  const { socket } = ctx.globals();
  if (socket) return socket;
  try {
    return (await configFor(ctx)).socket;
  } catch (error) {
    if (error instanceof ConfigError) return (await import('../schema/config.js')).DEFAULTS.socket;
    throw error;
  }
}

/** The running daemon's result for a request, or null when none is running. */
export async function fromDaemon<C extends Command>(ctx: CliContext, request: RequestOf<C>): Promise<ResultOf<C> | null> {
  return ask(await socketFor(ctx), request);
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}

// What every command gets: global options, the exec seam, output streams.

import { loadConfig } from '../config/load.js';
import { DEFAULTS } from '../config/verify.js';
import type { ControlRequest } from '../core/requests.js';
import type { Config } from '../model/config.js';
import { ConfigError } from '../model/errors.js';
import type { Runner } from '../system/exec.js';
import { askDaemon, resultOf } from './client.js';

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

export function configFor(ctx: CliContext): Promise<Config> {
  const { config, state, socket } = ctx.globals();
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
    if (error instanceof ConfigError) return DEFAULTS.socket;
    throw error;
  }
}

/** The running daemon's result for a request, or null when none is running. */
export async function fromDaemon(ctx: CliContext, request: ControlRequest): Promise<unknown | null> {
  const response = await askDaemon(await socketFor(ctx), request);
  return response === null ? null : resultOf(response);
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}

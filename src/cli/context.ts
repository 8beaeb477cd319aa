// What every command gets: global options, the exec seam, output streams.

import { loadConfig } from '../config/load.js';
import type { ControlRequest } from '../core/requests.js';
import type { Config } from '../model/config.js';
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

/** The running daemon's result for a request, or null when none is running. */
export async function fromDaemon(config: Config, request: ControlRequest): Promise<unknown | null> {
  const response = await askDaemon(config.socket, request);
  return response === null ? null : resultOf(response);
}

export function printJson(ctx: CliContext, value: unknown): void {
  ctx.out(`${JSON.stringify(value, null, 2)}\n`);
}

// Structured log lines through pino: one JSON object per line on stderr,
// {"level":"info","time":"<ISO>","msg":"…",…fields}, which journald keeps as is
// and `journalctl -u dispatcher -o cat | jq` reads. Level from
// DISPATCHER_LOG_LEVEL (default info). The Logger interface keeps call sites
// as (message, fields) and lets tests pass a silent or recording logger.

import { destination, pino, stdTimeFunctions } from 'pino';

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const LEVELS: readonly Level[] = ['debug', 'info', 'warn', 'error'];

/** A pino logger writing synchronously to `fd` (a log line is never lost when the daemon stops). */
export function jsonLogger(level: Level = (process.env.DISPATCHER_LOG_LEVEL as Level) ?? 'info', fd = 2): Logger {
  const log = pino(
    {
      level: LEVELS.includes(level) ? level : 'info',
      base: undefined,
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination({ fd, sync: true }),
  );
  return {
    debug: (msg, fields = {}) => log.debug(fields, msg),
    info: (msg, fields = {}) => log.info(fields, msg),
    warn: (msg, fields = {}) => log.warn(fields, msg),
    error: (msg, fields = {}) => log.error(fields, msg),
  };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

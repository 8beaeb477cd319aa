// Structured log lines (one JSON object per line on stderr), readable by
// journald and by people. Level from DISPATCHER_LOG_LEVEL (default info).

export type Level = 'debug' | 'info' | 'warn' | 'error';
export type Fields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
}

const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function jsonLogger(write: (line: string) => void = (line) => process.stderr.write(line), level: Level = (process.env.DISPATCHER_LOG_LEVEL as Level) ?? 'info'): Logger {
  const threshold = ORDER[level] ?? ORDER.info;
  const emit = (lvl: Level) => (msg: string, fields: Fields = {}) => {
    if (ORDER[lvl] < threshold) return;
    write(`${JSON.stringify({ level: lvl, time: new Date().toISOString(), msg, ...fields })}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

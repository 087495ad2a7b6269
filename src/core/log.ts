// Structured JSON logs, one line each, with an ISO-8601 time and a level. The level can change at run
// time (admin API); a logger and all its children share it.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;
export type LogFn = (msg: string, fields?: LogFields) => void;

export const LOG_LEVELS: readonly LogLevel[] = Object.freeze(['debug', 'info', 'warn', 'error', 'silent']);

export interface Logger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  child(bindings: LogFields): Logger;
  /** The current level (shared with every child). */
  level(): LogLevel;
  /** Change the level of this logger, its parent and all their children. */
  setLevel(level: LogLevel): void;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

interface LevelRef {
  name: LogLevel;
  order: number;
}

export function createLogger(level: LogLevel = 'info', sink: (line: string) => void = (l) => process.stderr.write(l), bindings: LogFields = {}): Logger {
  return build({ name: level, order: ORDER[level] }, sink, bindings);
}

function build(ref: LevelRef, sink: (line: string) => void, bindings: LogFields): Logger {
  const prefix = JSON.stringify(bindings).slice(1, -1);
  const make = (name: Exclude<LogLevel, 'silent'>): LogFn => {
    const order = ORDER[name];
    return (msg, fields) => {
      if (order < ref.order) return;
      const f = fields ? JSON.stringify(fields, errorReplacer).slice(1, -1) : '';
      sink(`{"time":"${new Date().toISOString()}","level":"${name}"${prefix ? ',' + prefix : ''},"msg":${JSON.stringify(msg)}${f ? ',' + f : ''}}\n`);
    };
  };
  return {
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    child: (b) => build(ref, sink, { ...bindings, ...b }),
    level: () => ref.name,
    setLevel: (l) => {
      ref.name = l;
      ref.order = ORDER[l];
    },
  };
}

function errorReplacer(_k: string, v: unknown): unknown {
  if (v instanceof Error) return { message: v.message, code: (v as NodeJS.ErrnoException).code };
  return v;
}

/** A logger that stays silent: its level cannot be raised (it is shared by tests and helpers). */
export const silentLogger: Logger = (() => {
  const base = createLogger('silent');
  const silent: Logger = { ...base, child: () => silent, setLevel: () => {} };
  return silent;
})();

/** One log line as written by a logger, for output that bypasses a Logger (CLI start-up lines). */
export function logLine(level: Exclude<LogLevel, 'silent'>, msg: string, fields: LogFields = {}): string {
  const f = JSON.stringify(fields, errorReplacer).slice(1, -1);
  return `{"time":"${new Date().toISOString()}","level":"${level}","msg":${JSON.stringify(msg)}${f ? ',' + f : ''}}\n`;
}

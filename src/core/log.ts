// Structured JSON logs, one line each. The level is chosen at construction: disabled levels are no-ops.
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
export type LogFields = Record<string, unknown>;
export type LogFn = (msg: string, fields?: LogFields) => void;

export interface Logger {
  readonly debug: LogFn;
  readonly info: LogFn;
  readonly warn: LogFn;
  readonly error: LogFn;
  child(bindings: LogFields): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const noop: LogFn = () => {};

export function createLogger(level: LogLevel = 'info', sink: (line: string) => void = (l) => process.stderr.write(l), bindings: LogFields = {}): Logger {
  const prefix = JSON.stringify(bindings).slice(1, -1);
  const make = (name: Exclude<LogLevel, 'silent'>): LogFn => {
    if (ORDER[name] < ORDER[level]) return noop;
    return (msg, fields) => {
      const f = fields ? JSON.stringify(fields, errorReplacer).slice(1, -1) : '';
      sink(`{"time":${Date.now()},"level":"${name}"${prefix ? ',' + prefix : ''},"msg":${JSON.stringify(msg)}${f ? ',' + f : ''}}\n`);
    };
  };
  return {
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    child: (b) => createLogger(level, sink, { ...bindings, ...b }),
  };
}

function errorReplacer(_k: string, v: unknown): unknown {
  if (v instanceof Error) return { message: v.message, code: (v as NodeJS.ErrnoException).code };
  return v;
}

export const silentLogger: Logger = createLogger('silent');

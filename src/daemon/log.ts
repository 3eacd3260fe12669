/** The daemon's log: one logfmt line per message on stderr, filtered by level. */
import type { LogLevel } from './config.js';

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, fatal: 4 };

export class Logger {
  private level: LogLevel;
  private readonly write: (line: string) => void;

  constructor(
    level: LogLevel = 'info',
    write: (line: string) => void = (line) => process.stderr.write(line),
  ) {
    this.level = level;
    this.write = write;
  }

  setLevel(level: LogLevel): void {
    this.level = level;
  }

  private log(level: LogLevel, message: string): void {
    if (ORDER[level] < ORDER[this.level]) return;
    this.write(`time="${new Date().toISOString()}" level=${level} msg=${JSON.stringify(message)}\n`);
  }

  debug(message: string): void {
    this.log('debug', message);
  }

  info(message: string): void {
    this.log('info', message);
  }

  warn(message: string): void {
    this.log('warn', message);
  }

  error(message: string): void {
    this.log('error', message);
  }
}

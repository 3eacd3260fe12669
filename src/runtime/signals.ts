import { constants } from 'node:os';
import { invalidArgument } from '../common/errors.js';

const SIGNALS = constants.signals as Record<string, number>;

/** Accepts `KILL`, `SIGKILL`, `kill` and `9`; returns the signal number. */
export function parseSignal(value: string): number {
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    const number = Number(text);
    if (number >= 1 && number <= 64) return number;
  } else {
    const upper = text.toUpperCase();
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`;
    const number = SIGNALS[name];
    if (number !== undefined) return number;
    const rt = /^SIGRTMIN(?:\+(\d+))?$/.exec(name);
    if (rt) return 34 + Number(rt[1] ?? 0);
  }
  throw invalidArgument(`invalid signal ${JSON.stringify(value)}`);
}

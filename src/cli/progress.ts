/**
 * Docker's JSON message streams (pull, push, load, import): one JSON object per message with
 * `status`, `id`, `progress`/`progressDetail`, `stream`, `aux` or `errorDetail`. On a terminal each
 * layer keeps its own line, redrawn in place with cursor movements and a progress bar
 * (`[=====>     ]  1.2MB/3.4MB`); elsewhere each status line is printed once and progress updates
 * are dropped — docker's jsonmessage.DisplayJSONMessagesStream.
 */
import type { Readable } from 'node:stream';
import { CommandError } from './errors.js';
import { goDuration, humanSize } from './format/units.js';

export interface JsonProgress {
  current?: number;
  total?: number;
  start?: number;
  hidecounts?: boolean;
  units?: string;
}

export interface JsonMessage {
  stream?: string;
  status?: string;
  progress?: string;
  progressDetail?: JsonProgress;
  id?: string;
  from?: string;
  time?: number;
  timeNano?: number;
  error?: string;
  errorDetail?: { code?: number; message?: string };
  aux?: unknown;
}

type Source = Readable | AsyncIterable<Buffer | string>;

/** The text of each JSON object in a stream of newline-delimited (or concatenated) objects. */
export async function* readJsonTexts(source: Source): AsyncGenerator<string> {
  let buffered = '';
  for await (const chunk of source) {
    buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
    for (;;) {
      const end = jsonEnd(buffered);
      if (end === -1) break;
      const text = buffered.slice(0, end).trim();
      buffered = buffered.slice(end);
      if (text !== '') yield text;
    }
  }
  if (buffered.trim() !== '') throw new CommandError('unexpected end of JSON input');
}

/** Parsed JSON messages from a stream. */
export async function* readJsonMessages(source: Source): AsyncGenerator<JsonMessage> {
  for await (const text of readJsonTexts(source)) yield JSON.parse(text) as JsonMessage;
}

/** The end index of the first complete JSON object in `text`, or -1. */
function jsonEnd(text: string): number {
  let depth = 0;
  let inString = false;
  let started = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    else if (c === '{') {
      depth++;
      started = true;
    } else if (c === '}') {
      depth--;
      if (started && depth === 0) return i + 1;
    }
  }
  return -1;
}

/** JSONProgress.String(): bar (wide terminals), sizes, time left. */
export function progressString(p: JsonProgress, width: number, nowSeconds = Date.now() / 1000): string {
  const current = p.current ?? 0;
  const total = p.total ?? 0;
  if (current <= 0 && total <= 0) return '';
  if (total <= 0) {
    return p.units ? `${current} ${p.units}` : humanSize(current).padStart(8);
  }
  const percentage = Math.min(50, Math.trunc(Math.trunc((current / total) * 100) / 2));
  let bar = '';
  if (width > 110) bar = `[${'='.repeat(percentage)}>${' '.repeat(Math.max(0, 50 - percentage))}] `;
  let numbers = '';
  if (!p.hidecounts) {
    if (!p.units) {
      numbers = `${humanSize(current).padStart(8)}/${humanSize(total)}`;
      if (current > total) numbers = humanSize(current).padStart(8);
    } else {
      numbers = `${current}/${total} ${p.units}`;
      if (current > total) numbers = `${current} ${p.units}`;
    }
  }
  let timeLeft = '';
  if (current > 0 && (p.start ?? 0) > 0 && percentage < 50) {
    const fromStart = nowSeconds - (p.start ?? 0);
    const left = Math.trunc(((total - current) * fromStart) / current);
    if (width > 50) timeLeft = ` ${goDuration(left * 1e9)}`;
  }
  return bar + numbers + timeLeft;
}

function rfc3339NanoFixed(ns: number): string {
  const date = new Date(Math.floor(ns / 1e6));
  const nanos = String(ns % 1e9).padStart(9, '0');
  return `${date.toISOString().slice(0, 19)}.${nanos}Z`;
}

export interface DisplayOptions {
  terminal: boolean;
  /** Terminal width for the bar (docker assumes 200 when unknown). */
  width?: number;
  onAux?: (aux: unknown) => void;
}

/** Renders a JSON message stream; the first error message stops it and is thrown. */
export async function displayJsonMessages(
  source: Source,
  out: NodeJS.WritableStream,
  options: DisplayOptions,
): Promise<void> {
  const terminal = options.terminal;
  const width = options.width ?? 200;
  let ids = new Map<string, number>();
  for await (const message of readJsonMessages(source)) {
    if (message.aux !== undefined && message.aux !== null) {
      options.onAux?.(message.aux);
      continue;
    }
    let diff = 0;
    const hasProgress = message.progressDetail !== undefined && message.progressDetail !== null;
    if (message.id && (hasProgress || message.progress)) {
      let line = ids.get(message.id);
      if (line === undefined) {
        line = ids.size;
        ids.set(message.id, line);
        if (terminal) out.write('\n');
      }
      diff = ids.size - line;
      if (terminal && diff > 0) out.write(`\x1b[${diff}A`);
    } else {
      ids = new Map();
    }
    const error = display(message, out, terminal, width);
    if (message.id && terminal && diff > 0) out.write(`\x1b[${diff}B`);
    if (error) throw error;
  }
}

function display(
  m: JsonMessage,
  out: NodeJS.WritableStream,
  terminal: boolean,
  width: number,
): Error | undefined {
  if (m.errorDetail || m.error) {
    if (m.errorDetail?.code === 401) return new CommandError('authentication is required');
    return new CommandError(m.errorDetail?.message ?? m.error ?? 'unknown error');
  }
  const progress = m.progressDetail ? progressString(m.progressDetail, width) : '';
  let endl = '';
  if (terminal && !m.stream && m.progressDetail) {
    out.write('\x1b[2K\r');
    endl = '\r';
  } else if (m.progressDetail && progress !== '') {
    return undefined; // progress bars only on a terminal
  }
  let text = '';
  if (m.timeNano) text += `${rfc3339NanoFixed(m.timeNano)} `;
  else if (m.time) text += `${rfc3339NanoFixed(m.time * 1e9)} `;
  if (m.id) text += `${m.id}: `;
  if (m.from) text += `(from ${m.from}) `;
  if (m.progressDetail && terminal) text += `${m.status ?? ''} ${progress}${endl}`;
  else if (m.progress) text += `${m.status ?? ''} ${m.progress}${endl}`;
  else if (m.stream) text += `${m.stream}${endl}`;
  else text += `${m.status ?? ''}${endl}\n`;
  out.write(text);
  return undefined;
}

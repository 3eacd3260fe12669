/**
 * The Dockerfile's lexical structure, as Docker's frontend reads it: parser directives at the top
 * (`# syntax=`, `# escape=`, `# check=`), comments, line continuations (the escape character at
 * the end of a line; comment and empty lines inside a continuation are skipped), the keyword,
 * leading `--flags`, and heredocs (`<<EOF`, `<<-EOF`, quoted delimiters, several per line) for
 * RUN, COPY and ADD. What the arguments mean is instructions.ts's job.
 */
import { dockerfileError } from './errors.js';

export interface Heredoc {
  /** The delimiter word, quotes removed. */
  name: string;
  /** The body, each line ending in a newline (leading tabs removed for `<<-`). */
  content: string;
  /** False when the delimiter was quoted: the body is taken literally. */
  expand: boolean;
  /** `<<-`: leading tabs were stripped. */
  chomp: boolean;
  /** File descriptor number written before `<<` (`3<<EOF`), if any. */
  fd?: number;
}

export interface RawInstruction {
  /** Upper case keyword. */
  keyword: string;
  /** Leading `--name[=value]` words, as written (quotes kept). */
  flags: string[];
  /** The arguments after the flags, continuation lines joined. */
  rest: string;
  /** The instruction as written on one line (keyword included), for step output. */
  original: string;
  heredocs: Heredoc[];
  /** 1-based position of the keyword. */
  line: number;
  column: number;
  /** 1-based column where `rest` starts on its line, for argument errors. */
  restColumn: number;
}

export interface ParsedDockerfile {
  /** Recognised parser directives, lower case names. */
  directives: Record<string, string>;
  escape: string;
  instructions: RawInstruction[];
  warnings: string[];
}

// The value is trimmed in code: `\s*(.+?)\s*$` backtracks quadratically on a long line of spaces.
const DIRECTIVE = /^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=(.*)$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const HEREDOC_WORD = /^(\d*)<<(-?)([^<]*)$/;

const isBlank = (line: string): boolean => line.trim() === '';
const isComment = (line: string): boolean => line.trimStart().startsWith('#');

/** Split `text` into words on unquoted whitespace, keeping quotes and escapes as written. */
export function rawWords(text: string, escape: string): Array<{ word: string; start: number }> {
  const words: Array<{ word: string; start: number }> = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
    if (i >= text.length) break;
    const start = i;
    let quote = '';
    for (; i < text.length; i++) {
      const ch = text[i] as string;
      if (quote === '') {
        if (/\s/.test(ch)) break;
        if (ch === escape) i++;
        else if (ch === '"' || ch === "'") quote = ch;
      } else if (ch === quote) quote = '';
      else if (quote === '"' && ch === escape) i++;
    }
    words.push({ word: text.slice(start, Math.min(i, text.length)), start });
  }
  return words;
}

/** The heredoc a word starts, if it is one: `<<EOF`, `<<-EOF`, `<<"EOF"`, `2<<'EOF'`. */
export function heredocWord(word: string): Omit<Heredoc, 'content'> | undefined {
  const match = HEREDOC_WORD.exec(word);
  if (match === null) return undefined;
  const raw = match[3] ?? '';
  if (raw === '') return undefined;
  const name = raw.replace(/["']/g, '');
  if (name === '') return undefined;
  return {
    name,
    expand: !/["']/.test(raw),
    chomp: match[2] === '-',
    ...(match[1] !== '' ? { fd: Number(match[1]) } : {}),
  };
}

function continuationPattern(escape: string): RegExp {
  const escaped = escape === '\\' ? '\\\\' : escape;
  return new RegExp(`${escaped}[ \\t]*$`);
}

/** Read the directives, then the instructions of a Dockerfile. */
export function parseDockerfile(text: string, file = 'Dockerfile'): ParsedDockerfile {
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  const directives: Record<string, string> = {};
  const warnings: string[] = [];
  let index = 0;
  for (; index < lines.length; index++) {
    const match = DIRECTIVE.exec(lines[index] as string);
    const value = match?.[2]?.trim() ?? '';
    if (match === null || value === '') break;
    const name = (match[1] as string).toLowerCase();
    if (!KNOWN_DIRECTIVES.has(name)) break; // an unknown directive is a comment, and ends the directives
    if (name in directives)
      throw dockerfileError(file, index + 1, 1, `only one ${name} parser directive can be used`);
    directives[name] = value;
  }
  const escape = directives.escape ?? '\\';
  if (escape !== '\\' && escape !== '`')
    throw dockerfileError(file, 1, 1, `invalid escape token '${escape}' does not match ^[\\\\\`]$`);
  const continuation = continuationPattern(escape);

  const instructions: RawInstruction[] = [];
  while (index < lines.length) {
    const first = lines[index] as string;
    if (isBlank(first) || isComment(first)) {
      index++;
      continue;
    }
    const line = index + 1;
    const trimmed = first.trimStart();
    const column = first.length - trimmed.length + 1;
    let logical = trimmed;
    index++;
    while (continuation.test(logical)) {
      logical = logical.replace(continuation, '');
      // Comment lines and empty lines inside a continuation are skipped, as Docker does.
      while (index < lines.length && (isComment(lines[index] as string) || isBlank(lines[index] as string))) {
        if (isBlank(lines[index] as string)) warnings.push(`${file}:${index + 1}: empty continuation line`);
        index++;
      }
      if (index >= lines.length) break;
      logical += lines[index] as string;
      index++;
    }
    // A line of only the escape character (continued into nothing) holds no instruction.
    logical = logical.trimStart();
    const keywordMatch = /^(\S+)\s*/.exec(logical);
    if (keywordMatch === null) continue;
    const keyword = (keywordMatch[1] as string).toUpperCase();
    const afterKeyword = logical.slice(keywordMatch[0].length);
    const flags: string[] = [];
    let restFrom = 0;
    for (const { word, start } of rawWords(afterKeyword, escape)) {
      if (!word.startsWith('--')) break;
      flags.push(word);
      restFrom = start + word.length;
    }
    const untrimmed = afterKeyword.slice(restFrom);
    const rest = untrimmed.trim();
    const restOffset = keywordMatch[0].length + restFrom + (untrimmed.length - untrimmed.trimStart().length);
    const heredocs: Heredoc[] = [];
    if (HEREDOC_KEYWORDS.has(keyword)) {
      for (const { word } of rawWords(rest, escape)) {
        const found = heredocWord(word);
        if (found === undefined) continue;
        const body: string[] = [];
        let terminated = false;
        while (index < lines.length) {
          let bodyLine = lines[index] as string;
          index++;
          if (found.chomp) bodyLine = bodyLine.replace(/^\t+/, '');
          if (bodyLine === found.name) {
            terminated = true;
            break;
          }
          body.push(bodyLine);
        }
        if (!terminated)
          throw dockerfileError(file, line, column, `unterminated heredoc: no line "${found.name}" ends it`);
        heredocs.push({ ...found, content: body.map((l) => `${l}\n`).join('') });
      }
    }
    instructions.push({
      keyword,
      flags,
      rest,
      original: logical.trimEnd(),
      heredocs,
      line,
      column,
      restColumn: column + restOffset,
    });
  }
  return { directives, escape, instructions, warnings };
}

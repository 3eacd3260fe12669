/**
 * Variable expansion and word splitting with the rules Docker's Dockerfile frontend applies to
 * the instructions it expands (ADD COPY ENV EXPOSE FROM LABEL STOPSIGNAL USER VOLUME WORKDIR ARG):
 * - `$VAR`, `${VAR}`, `${VAR:-word}`, `${VAR-word}`, `${VAR:+word}`, `${VAR+word}`,
 *   `${VAR:?message}`, `${VAR?message}`; a `$` not followed by a name stays a `$`.
 * - single quotes keep everything literal; double quotes keep whitespace and allow expansion;
 *   the escape character (`\` or the `escape` directive's backtick) escapes the next character
 *   (inside double quotes only `"`, `$` and the escape character itself).
 * - quotes are removed from the result.
 * Unlike a shell, there is no command substitution, globbing or tilde expansion.
 */
import { invalidArgument } from '../../common/errors.js';

/** The value of a variable, or undefined when it is not set. */
export type Lookup = (name: string) => string | undefined;

/** A lookup over a map that records the names it was asked for (to know which build args a step used). */
export function recordingLookup(values: ReadonlyMap<string, string>, used?: Set<string>): Lookup {
  return (name) => {
    used?.add(name);
    return values.get(name);
  };
}

const EOF = '';
const isNameChar = (ch: string): boolean => /^[A-Za-z0-9_]$/.test(ch);
const isSpecialParam = (ch: string): boolean => '@*#?-$!0'.includes(ch) && ch !== '';

class Words {
  readonly words: string[] = [];
  private word = '';
  private inWord = false;

  add(text: string): void {
    this.word += text;
    this.inWord = true;
  }

  /** Text from an unquoted expansion: its whitespace separates words. */
  addSplitting(text: string): void {
    for (const ch of text) {
      if (/\s/.test(ch)) this.end();
      else this.add(ch);
    }
  }

  /** Quotes make a word even when empty (`""`). */
  touch(): void {
    this.inWord = true;
  }

  end(): void {
    if (this.inWord) this.words.push(this.word);
    this.word = '';
    this.inWord = false;
  }
}

/** `${a:-${b:-...}}` nesting allowed: far beyond real use, well within the call stack. */
const MAX_NESTING = 100;

class Lexer {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly text: string,
    private readonly lookup: Lookup,
    private readonly escape: string,
  ) {}

  private peek(): string {
    return this.text[this.pos] ?? EOF;
  }

  private next(): string {
    const ch = this.text[this.pos] ?? EOF;
    if (ch !== EOF) this.pos++;
    return ch;
  }

  /** The whole text as one word (quotes removed, variables expanded, whitespace kept). */
  word(): string {
    return this.until(EOF);
  }

  /** The text split into words on unquoted whitespace (also whitespace that expansions produce). */
  words(): string[] {
    const out = new Words();
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (/\s/.test(ch)) {
        this.next();
        out.end();
      } else if (ch === "'") {
        out.touch();
        out.add(this.singleQuoted());
      } else if (ch === '"') {
        out.touch();
        out.add(this.doubleQuoted());
      } else if (ch === '$') {
        out.addSplitting(this.dollar());
      } else {
        this.next();
        if (ch === this.escape) {
          const escaped = this.next();
          if (escaped === EOF) break;
          out.add(escaped);
        } else out.add(ch);
      }
    }
    out.end();
    return out.words;
  }

  /** Characters up to `stop` (consumed), with quotes and expansions processed. */
  private until(stop: string): string {
    let result = '';
    let found = stop === EOF;
    while (this.peek() !== EOF) {
      const ch = this.peek();
      if (stop !== EOF && ch === stop) {
        this.next();
        found = true;
        break;
      }
      if (ch === "'") result += this.singleQuoted();
      else if (ch === '"') result += this.doubleQuoted();
      else if (ch === '$') result += this.dollar();
      else {
        this.next();
        if (ch === this.escape) {
          const escaped = this.next();
          if (escaped === EOF) break;
          result += escaped;
        } else result += ch;
      }
    }
    if (!found) throw invalidArgument(`unexpected end of statement while looking for matching ${stop}`);
    return result;
  }

  private singleQuoted(): string {
    this.next();
    let result = '';
    for (;;) {
      const ch = this.next();
      if (ch === EOF)
        throw invalidArgument('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return result;
      result += ch;
    }
  }

  private doubleQuoted(): string {
    this.next();
    let result = '';
    for (;;) {
      const ch = this.peek();
      if (ch === EOF)
        throw invalidArgument('unexpected end of statement while looking for matching double-quote');
      if (ch === '"') {
        this.next();
        return result;
      }
      if (ch === '$') {
        result += this.dollar();
        continue;
      }
      this.next();
      if (ch === this.escape) {
        const following = this.peek();
        if (following === EOF) continue;
        if (following === '"' || following === '$' || following === this.escape) {
          result += this.next();
          continue;
        }
      }
      result += ch;
    }
  }

  private name(): string {
    let name = '';
    for (;;) {
      const ch = this.peek();
      if (ch === EOF) return name;
      if (name === '' && /[0-9]/.test(ch)) {
        while (/[0-9]/.test(this.peek()) && this.peek() !== EOF) name += this.next();
        return name;
      }
      if (name === '' && isSpecialParam(ch)) return this.next();
      if (!isNameChar(ch)) return name;
      name += this.next();
    }
  }

  private dollar(): string {
    this.next(); // '$'
    if (this.peek() !== '{') {
      const name = this.name();
      if (name === '') return '$';
      return this.lookup(name) ?? '';
    }
    this.next(); // '{'
    const name = this.name();
    if (name === '') throw invalidArgument('bad substitution: a variable name must follow ${');
    const ch = this.next();
    if (ch === '}') return this.lookup(name) ?? '';
    if (ch === EOF) throw invalidArgument(`missing '}' in substitution of ${name}`);
    let colon = false;
    let modifier = ch;
    if (ch === ':') {
      colon = true;
      modifier = this.next();
    }
    if (modifier !== '-' && modifier !== '+' && modifier !== '?')
      throw invalidArgument(
        `unsupported modifier (${colon ? ':' : ''}${modifier}) in substitution of ${name}`,
      );
    if (++this.depth > MAX_NESTING)
      throw invalidArgument(`variable substitutions nested more than ${MAX_NESTING} deep`);
    const word = this.until('}');
    this.depth--;
    const value = this.lookup(name);
    const unset = value === undefined || (colon && value === '');
    switch (modifier) {
      case '-':
        return unset ? word : (value as string);
      case '+':
        return unset ? '' : word;
      default:
        if (unset) throw invalidArgument(`${name}: ${word || 'is not allowed to be unset'}`);
        return value as string;
    }
  }
}

/** Expand one word: quotes removed, variables replaced, whitespace kept. */
export function processWord(text: string, lookup: Lookup, escape = '\\'): string {
  return new Lexer(text, lookup, escape).word();
}

/** Expand and split into words as Docker does for EXPOSE, VOLUME, USER and the like. */
export function processWords(text: string, lookup: Lookup, escape = '\\'): string[] {
  return new Lexer(text, lookup, escape).words();
}

/**
 * Heredoc bodies of COPY/ADD with an unquoted delimiter: variables are expanded and the escape
 * character escapes `$` and itself, but quotes are ordinary characters.
 */
export function expandHeredoc(text: string, lookup: Lookup, escape = '\\'): string {
  let result = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (ch === escape && (text[i + 1] === '$' || text[i + 1] === escape)) {
      result += text[++i];
      continue;
    }
    if (ch !== '$') {
      result += ch;
      continue;
    }
    // Reuse the lexer for exactly one expansion: find where it ends.
    const match = /^\$(\{[^}]*\}|[A-Za-z_][A-Za-z0-9_]*|[0-9]+)/.exec(text.slice(i));
    if (match === null) {
      result += '$';
      continue;
    }
    result += processWord(match[0], lookup, escape);
    i += match[0].length - 1;
  }
  return result;
}

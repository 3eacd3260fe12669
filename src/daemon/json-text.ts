/**
 * JSON.parse with errors a person can act on: the line and column of the first syntax error.
 * V8's messages carry a character position only sometimes, so on failure a small scanner walks
 * the text to find where it stops being JSON.
 */

interface SyntaxProblem {
  offset: number;
  message: string;
}

class Stop extends Error {
  readonly offset: number;

  constructor(offset: number, message: string) {
    super(message);
    this.offset = offset;
  }
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** The first syntax error in `text`, or undefined if it is valid JSON. */
export function findSyntaxError(text: string): SyntaxProblem | undefined {
  let i = 0;
  const found = (): string => (i >= text.length ? 'the end of the file' : JSON.stringify(text[i]));
  const skipSpace = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i] ?? '')) i++;
  };
  const string = (): void => {
    const start = i;
    i++;
    while (true) {
      if (i >= text.length) throw new Stop(start, 'unterminated string');
      const c = text[i] ?? '';
      if (c === '"') {
        i++;
        return;
      }
      if (c === '\\') {
        const next = text[i + 1] ?? '';
        if ('"\\/bfnrt'.includes(next) && next !== '') i += 2;
        else if (next === 'u' && /^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) i += 6;
        else throw new Stop(i, 'invalid escape sequence in a string');
        continue;
      }
      if (c < ' ') throw new Stop(i, 'control character in a string (escape it)');
      i++;
    }
  };
  const value = (): void => {
    skipSpace();
    const c = text[i];
    if (c === '{') {
      i++;
      skipSpace();
      if (text[i] === '}') {
        i++;
        return;
      }
      while (true) {
        skipSpace();
        if (text[i] !== '"') throw new Stop(i, `expected a property name in double quotes, found ${found()}`);
        string();
        skipSpace();
        if (text[i] !== ':') throw new Stop(i, `expected ':' after a property name, found ${found()}`);
        i++;
        value();
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        throw new Stop(i, `expected ',' or '}' after a property value, found ${found()}`);
      }
    }
    if (c === '[') {
      i++;
      skipSpace();
      if (text[i] === ']') {
        i++;
        return;
      }
      while (true) {
        value();
        skipSpace();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        throw new Stop(i, `expected ',' or ']' after an array element, found ${found()}`);
      }
    }
    if (c === '"') return string();
    for (const literal of ['true', 'false', 'null']) {
      if (text.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    NUMBER.lastIndex = i;
    const number = NUMBER.exec(text);
    if (number !== null && number[0] !== '' && number[0] !== '-') {
      i += number[0].length;
      return;
    }
    throw new Stop(i, `expected a value, found ${found()}`);
  };
  try {
    value();
    skipSpace();
    if (i < text.length) throw new Stop(i, `unexpected ${found()} after the end of the JSON value`);
    return undefined;
  } catch (err) {
    if (err instanceof Stop) return { offset: err.offset, message: err.message };
    // Nesting deep enough to exhaust the stack: no position, but still not valid JSON here.
    return { offset: 0, message: 'the text is nested too deeply to read' };
  }
}

/** 1-based line and column of a character offset. */
export function lineAndColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  const line = before.split('\n').length;
  return { line, column: offset - before.lastIndexOf('\n') };
}

/** Parses JSON or throws an Error whose message is "line L, column C: what is wrong". */
export function parseJsonText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    const problem = findSyntaxError(text);
    if (problem === undefined) throw err;
    const { line, column } = lineAndColumn(text, problem.offset);
    throw new Error(`invalid JSON at line ${line}, column ${column}: ${problem.message}`, { cause: err });
  }
}

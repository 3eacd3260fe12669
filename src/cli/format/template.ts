/**
 * A subset of Go's text/template, enough for docker's `--format`: `{{.Field}}`, `{{.A.B}}`,
 * `{{json .}}`, pipelines (`{{.Names | upper}}`), parenthesised arguments, variables (`$`, `$x :=`),
 * `if`/`else if`/`else`/`end`, `range` (with `$i, $v :=`), `with`, trim markers (`{{-`, `-}}`),
 * comments, and docker's functions (json, split, join, title, lower, upper, pad, truncate) plus
 * Go's builtins (print, printf, println, len, index, eq, ne, lt, le, gt, ge, and, or, not).
 * Values print as Go's fmt does: `[a b]` for lists, `map[k:v]` for objects, `<no value>` for a
 * missing key.
 */

export class TemplateError extends Error {
  /** Where execution failed: the offset in the template and the node's text (".Config.Cmd"). */
  at?: { pos: number; context: string };

  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

/** Objects carrying this marker behave like Go structs: an unknown field is an error. */
export const STRUCT = Symbol('struct');
/** The value of a missing map key ("<no value>" when printed). */
export const NO_VALUE = Symbol('no value');

export type TemplateFunction = (...args: unknown[]) => unknown;

type Arg =
  | { kind: 'field'; chain: string[]; pos: number }
  | { kind: 'var'; name: string; chain: string[]; pos: number }
  | { kind: 'literal'; value: unknown }
  | { kind: 'ident'; name: string }
  | { kind: 'pipe'; pipeline: Pipeline; chain: string[] };

interface Pipeline {
  decl: string[];
  commands: Arg[][];
}

type Node =
  | { kind: 'text'; text: string }
  | { kind: 'action'; pipeline: Pipeline }
  | { kind: 'if' | 'with' | 'range'; pipeline: Pipeline; body: Node[]; otherwise: Node[] };

// ---------------------------------------------------------------------------------------------
// Lexing

interface Action {
  source: string;
  /** Offset of `source` in the whole template, for error positions. */
  offset: number;
}

type Piece = { text: string } | Action;

function split(template: string): Piece[] {
  const pieces: Piece[] = [];
  let rest = template;
  let base = 0;
  while (rest.length > 0) {
    const open = rest.indexOf('{{');
    if (open === -1) {
      pieces.push({ text: rest });
      break;
    }
    let text = rest.slice(0, open);
    let body = rest.slice(open + 2);
    let offset = base + open + 2;
    if (/^-[ \t\r\n]/.test(body)) {
      text = text.replace(/[ \t\r\n]+$/, '');
      body = body.slice(1);
      offset++;
    }
    const close = findClose(body);
    if (close === -1) throw new TemplateError('unclosed action');
    let source = body.slice(0, close);
    let after = body.slice(close + 2);
    const consumed = offset + close + 2;
    if (/[ \t\r\n]-$/.test(source)) {
      source = source.slice(0, -1);
      const trimmed = after.replace(/^[ \t\r\n]+/, '');
      base = consumed + (after.length - trimmed.length);
      after = trimmed;
    } else base = consumed;
    if (text !== '') pieces.push({ text });
    pieces.push({ source, offset });
    rest = after;
  }
  return pieces;
}

/** The end of an action, skipping `}}` inside quoted strings. */
function findClose(body: string): number {
  let quote: string | undefined;
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === '`') quote = c;
    else if (c === '}' && body[i + 1] === '}') return i;
  }
  return -1;
}

type Token =
  | { t: 'field'; chain: string[]; pos: number }
  | { t: 'var'; name: string; chain: string[]; pos: number }
  | { t: 'string'; value: string }
  | { t: 'number'; value: number }
  | { t: 'ident'; name: string }
  | { t: 'punct'; value: '(' | ')' | '|' | ':=' | '=' | ',' }
  | { t: 'dotchain'; chain: string[] };

function tokenize(source: string, offset: number): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  const chainAt = (start: number): { chain: string[]; end: number } => {
    const chain: string[] = [];
    let j = start;
    while (source[j] === '.' && /[A-Za-z_]/.test(source[j + 1] ?? '')) {
      let k = j + 1;
      while (k < source.length && /[A-Za-z0-9_]/.test(source[k] ?? '')) k++;
      chain.push(source.slice(j + 1, k));
      j = k;
    }
    return { chain, end: j };
  };
  while (i < source.length) {
    const c = source[i] ?? '';
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (c === '.') {
      if (/[A-Za-z_]/.test(source[i + 1] ?? '')) {
        const { chain, end } = chainAt(i);
        tokens.push({ t: 'field', chain, pos: offset + i });
        i = end;
      } else {
        tokens.push({ t: 'field', chain: [], pos: offset + i });
        i++;
      }
      continue;
    }
    if (c === '$') {
      let k = i + 1;
      while (k < source.length && /[A-Za-z0-9_]/.test(source[k] ?? '')) k++;
      const name = source.slice(i, k);
      const { chain, end } = chainAt(k);
      tokens.push({ t: 'var', name, chain, pos: offset + i });
      i = end;
      continue;
    }
    if (c === '"') {
      let k = i + 1;
      while (k < source.length && source[k] !== '"') k += source[k] === '\\' ? 2 : 1;
      if (k >= source.length) throw new TemplateError('unterminated quoted string');
      tokens.push({ t: 'string', value: unquote(source.slice(i, k + 1)) });
      i = k + 1;
      continue;
    }
    if (c === '`') {
      const k = source.indexOf('`', i + 1);
      if (k === -1) throw new TemplateError('unterminated raw quoted string');
      tokens.push({ t: 'string', value: source.slice(i + 1, k) });
      i = k + 1;
      continue;
    }
    if (c === "'") {
      const k = source.indexOf("'", i + 1);
      if (k === -1) throw new TemplateError('unterminated character constant');
      const ch = unquote(`"${source.slice(i + 1, k)}"`);
      tokens.push({ t: 'number', value: ch.codePointAt(0) ?? 0 });
      i = k + 1;
      continue;
    }
    if (/[0-9-]/.test(c) && /[0-9]/.test(c === '-' ? (source[i + 1] ?? '') : c)) {
      const match = /^-?(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+(e[+-]?[0-9]+)?)/.exec(source.slice(i));
      const text = match?.[0] ?? c;
      tokens.push({ t: 'number', value: Number(text) });
      i += text.length;
      continue;
    }
    if (c === ':' && source[i + 1] === '=') {
      tokens.push({ t: 'punct', value: ':=' });
      i += 2;
      continue;
    }
    if (c === '(' || c === ')' || c === '|' || c === '=' || c === ',') {
      tokens.push({ t: 'punct', value: c });
      i++;
      if (c === ')') {
        const { chain, end } = chainAt(i);
        if (chain.length > 0) {
          tokens.push({ t: 'dotchain', chain });
          i = end;
        }
      }
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      let k = i;
      while (k < source.length && /[A-Za-z0-9_]/.test(source[k] ?? '')) k++;
      if (source[k] === '.') throw new TemplateError('unexpected <.> in operand');
      tokens.push({ t: 'ident', name: source.slice(i, k) });
      i = k;
      continue;
    }
    throw new TemplateError(`unexpected ${JSON.stringify(c)} in command`);
  }
  return tokens;
}

function unquote(quoted: string): string {
  try {
    return JSON.parse(quoted.replace(/\\x([0-9a-fA-F]{2})/g, '\\u00$1').replace(/\\a/g, '\\u0007')) as string;
  } catch {
    throw new TemplateError(`invalid quoted string ${quoted}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Parsing

class Parser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  pipeline(): Pipeline {
    const decl: string[] = [];
    // `$x :=` or `$i, $v :=`
    const save = this.pos;
    const names: string[] = [];
    while (this.peek()?.t === 'var') {
      const token = this.tokens[this.pos] as Extract<Token, { t: 'var' }>;
      if (token.chain.length > 0) break;
      names.push(token.name);
      this.pos++;
      const next = this.peek();
      if (next?.t === 'punct' && next.value === ',') {
        this.pos++;
        continue;
      }
      break;
    }
    const assign = this.peek();
    if (names.length > 0 && assign?.t === 'punct' && (assign.value === ':=' || assign.value === '=')) {
      this.pos++;
      decl.push(...names);
    } else this.pos = save;
    const commands: Arg[][] = [];
    let command: Arg[] = [];
    while (this.pos < this.tokens.length) {
      const token = this.peek();
      if (token?.t === 'punct' && token.value === ')') break;
      if (token?.t === 'punct' && token.value === '|') {
        if (command.length === 0) throw new TemplateError('missing command before "|"');
        commands.push(command);
        command = [];
        this.pos++;
        continue;
      }
      command.push(this.operand());
    }
    if (command.length > 0) commands.push(command);
    else if (commands.length > 0) throw new TemplateError('missing command after "|"');
    if (commands.length === 0 && decl.length === 0) throw new TemplateError('missing value for command');
    return { decl, commands };
  }

  private peek(): Token | undefined {
    return this.tokens[this.pos];
  }

  private operand(): Arg {
    const token = this.tokens[this.pos++];
    if (!token) throw new TemplateError('unexpected end of action');
    switch (token.t) {
      case 'field':
        return { kind: 'field', chain: token.chain, pos: token.pos };
      case 'var':
        return { kind: 'var', name: token.name, chain: token.chain, pos: token.pos };
      case 'string':
      case 'number':
        return { kind: 'literal', value: token.value };
      case 'ident':
        if (token.name === 'true' || token.name === 'false')
          return { kind: 'literal', value: token.name === 'true' };
        if (token.name === 'nil') return { kind: 'literal', value: null };
        return { kind: 'ident', name: token.name };
      case 'punct': {
        if (token.value !== '(') throw new TemplateError(`unexpected "${token.value}" in operand`);
        const pipeline = this.pipeline();
        const close = this.tokens[this.pos++];
        if (close?.t !== 'punct' || close.value !== ')') throw new TemplateError('unclosed left paren');
        const next = this.peek();
        let chain: string[] = [];
        if (next?.t === 'dotchain') {
          chain = next.chain;
          this.pos++;
        }
        return { kind: 'pipe', pipeline, chain };
      }
      default:
        throw new TemplateError('unexpected token in operand');
    }
  }

  done(): boolean {
    return this.pos >= this.tokens.length;
  }
}

function parsePipeline(source: string, offset: number): Pipeline {
  const parser = new Parser(tokenize(source, offset));
  const pipeline = parser.pipeline();
  if (!parser.done()) throw new TemplateError('unexpected ")" in command');
  return pipeline;
}

interface Source {
  text: string;
  offset: number;
}

/** The text after `n` characters, leading whitespace skipped, with its offset kept right. */
function after(source: Source, n: number): Source {
  const rest = source.text.slice(n);
  const trimmed = rest.trimStart();
  return { text: trimmed.trimEnd(), offset: source.offset + n + (rest.length - trimmed.length) };
}

function parseNodes(pieces: Piece[]): Node[] {
  let index = 0;
  const parseList = (
    inBlock: boolean,
  ): { nodes: Node[]; end: 'end' | 'else' | 'eof'; elseSource?: Source } => {
    const nodes: Node[] = [];
    while (index < pieces.length) {
      const piece = pieces[index++] as Piece;
      if ('text' in piece) {
        nodes.push({ kind: 'text', text: piece.text });
        continue;
      }
      const source = after({ text: piece.source, offset: piece.offset }, 0);
      if (source.text.startsWith('/*')) {
        if (!source.text.endsWith('*/')) throw new TemplateError('unclosed comment');
        continue;
      }
      const keyword = /^(if|range|with|else|end|define|template|block|break|continue)\b/.exec(
        source.text,
      )?.[1];
      if (keyword === 'end') {
        if (!inBlock) throw new TemplateError('unexpected {{end}}');
        return { nodes, end: 'end' };
      }
      if (keyword === 'else') {
        if (!inBlock) throw new TemplateError('unexpected {{else}}');
        return { nodes, end: 'else', elseSource: after(source, 4) };
      }
      if (keyword === 'if' || keyword === 'range' || keyword === 'with') {
        nodes.push(parseBlock(keyword, after(source, keyword.length)));
        continue;
      }
      if (keyword !== undefined) throw new TemplateError(`{{${keyword}}} is not supported`);
      nodes.push({ kind: 'action', pipeline: parsePipeline(source.text, source.offset) });
    }
    if (inBlock) throw new TemplateError('unexpected EOF');
    return { nodes, end: 'eof' };
  };
  const parseBlock = (kind: 'if' | 'range' | 'with', source: Source): Node => {
    const pipeline = parsePipeline(source.text, source.offset);
    const body = parseList(true);
    let otherwise: Node[] = [];
    if (body.end === 'else') {
      const elseSource = body.elseSource ?? { text: '', offset: 0 };
      const chained = /^(if|with)\b/.exec(elseSource.text)?.[1] as 'if' | 'with' | undefined;
      if (chained) {
        // `{{else if ...}}` is an if nested in the else branch, sharing the closing {{end}}.
        otherwise = [parseBlock(chained, after(elseSource, chained.length))];
      } else {
        const rest = parseList(true);
        if (rest.end !== 'end') throw new TemplateError('expected {{end}}');
        otherwise = rest.nodes;
      }
    }
    return { kind, pipeline, body: body.nodes, otherwise };
  };
  return parseList(false).nodes;
}

// ---------------------------------------------------------------------------------------------
// Values

function isStruct(value: unknown): boolean {
  return typeof value === 'object' && value !== null && STRUCT in value;
}

function truthy(value: unknown): boolean {
  if (value === undefined || value === null || value === NO_VALUE) return false;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return value !== 0;
  if (typeof value === 'string') return value !== '';
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === 'object') return isStruct(value) || Object.keys(value).length > 0;
  return true;
}

/** Go's fmt %v of a value. */
export function formatValue(value: unknown): string {
  if (value === NO_VALUE || value === undefined) return '<no value>';
  if (value === null) return '<nil>';
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return formatNumber(value);
  if (typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return `[${value.map(formatNested).join(' ')}]`;
  if (typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${key}:${formatNested((value as Record<string, unknown>)[key])}`);
    return `map[${entries.join(' ')}]`;
  }
  return String(value);
}

const formatNested = (value: unknown): string =>
  value === null || value === undefined ? '<nil>' : formatValue(value);

function formatNumber(value: number): string {
  if (Number.isInteger(value) && Math.abs(value) < 1e21) return value.toFixed(0);
  const text = String(value);
  return text.replace(/e([+-])(\d)$/, 'e$10$2');
}

/** Go's encoding/json of a value, HTML characters left alone as docker's `json` function does. */
export function toJson(value: unknown): string {
  if (value === NO_VALUE || value === undefined) return 'null';
  const text = JSON.stringify(value, (_key, v: unknown) => (v === NO_VALUE ? null : v));
  if (text === undefined) return 'null';
  // docker's list contexts marshal themselves with Go's HTML-escaping encoder.
  return isStruct(value)
    ? text.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026')
    : text;
}

function compare(a: unknown, b: unknown, name: string): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError(`error calling ${name}: incompatible types for comparison`);
}

function goSprintf(format: string, args: unknown[]): string {
  let index = 0;
  return format.replace(/%([-+# 0]*\d*(?:\.\d+)?)([vsdqftx%])/g, (_m, flags: string, verb: string) => {
    if (verb === '%') return '%';
    const arg = args[index++];
    let out: string;
    switch (verb) {
      case 'q':
        out = JSON.stringify(formatValue(arg));
        break;
      case 'd':
        out = typeof arg === 'number' ? Math.trunc(arg).toString() : formatValue(arg);
        break;
      case 'f': {
        const precision = /\.(\d+)/.exec(flags)?.[1];
        out = typeof arg === 'number' ? arg.toFixed(precision ? Number(precision) : 6) : formatValue(arg);
        break;
      }
      case 'x':
        out = typeof arg === 'number' ? arg.toString(16) : Buffer.from(formatValue(arg)).toString('hex');
        break;
      default:
        out = formatValue(arg);
    }
    const width = /(\d+)(?:\.|$)/.exec(flags.replace(/^[-+# 0]*/, ''))?.[1];
    if (width !== undefined) {
      const w = Number(width);
      out = flags.includes('-') ? out.padEnd(w) : out.padStart(w);
    }
    return out;
  });
}

const stringArg = (value: unknown): string => (typeof value === 'string' ? value : formatValue(value));

/** Functions available in every docker format (text/template builtins plus docker's). */
export const BASIC_FUNCTIONS: Record<string, TemplateFunction> = {
  json: (v) => toJson(v),
  split: (s, sep) => stringArg(s).split(stringArg(sep)),
  join: (list, sep) => (Array.isArray(list) ? list.map(formatValue).join(stringArg(sep)) : stringArg(list)),
  title: (s) =>
    stringArg(s).replace(
      /(^|[^\p{L}\p{N}'])(\p{L})/gu,
      (_m, pre: string, ch: string) => pre + ch.toUpperCase(),
    ),
  lower: (s) => stringArg(s).toLowerCase(),
  upper: (s) => stringArg(s).toUpperCase(),
  pad: (s, prefix, suffix) => ' '.repeat(Number(prefix)) + stringArg(s) + ' '.repeat(Number(suffix)),
  truncate: (s, length) => {
    const text = stringArg(s);
    return text.length < Number(length) ? text : text.slice(0, Number(length));
  },
  print: (...args) => goSprint(args),
  println: (...args) => args.map(formatValue).join(' ') + '\n',
  printf: (format, ...args) => goSprintf(stringArg(format), args),
  len: (v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (typeof v === 'object' && v !== null) return Object.keys(v).length;
    throw new TemplateError(`error calling len: len of type ${typeof v}`);
  },
  index: (v, ...keys) => {
    let current: unknown = v;
    for (const key of keys) {
      if (Array.isArray(current)) current = current[Number(key)];
      else if (typeof current === 'object' && current !== null) {
        const record = current as Record<string, unknown>;
        current = Object.prototype.hasOwnProperty.call(record, String(key)) ? record[String(key)] : NO_VALUE;
      } else throw new TemplateError(`error calling index: cannot index slice/array with nil`);
    }
    return current;
  },
  eq: (a, ...rest) => rest.some((b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => compare(a, b, 'lt') < 0,
  le: (a, b) => compare(a, b, 'le') <= 0,
  gt: (a, b) => compare(a, b, 'gt') > 0,
  ge: (a, b) => compare(a, b, 'ge') >= 0,
  not: (v) => !truthy(v),
  and: (...args) => args.find((v) => !truthy(v)) ?? args.at(-1),
  or: (...args) => args.find((v) => truthy(v)) ?? args.at(-1),
};

/** Go's fmt.Sprint: spaces only between operands that are not both strings. */
function goSprint(args: unknown[]): string {
  let out = '';
  args.forEach((arg, i) => {
    if (i > 0 && typeof arg !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += formatValue(arg);
  });
  return out;
}

/** docker's header functions: the header row is rendered by the same template with these. */
export const HEADER_FUNCTIONS: Record<string, TemplateFunction> = {
  ...BASIC_FUNCTIONS,
  json: (v) => formatValue(v),
  split: (v) => v,
  join: (v) => v,
  title: (v) => v,
  lower: (v) => v,
  upper: (v) => v,
  pad: (v) => v,
  truncate: (v) => v,
};

// ---------------------------------------------------------------------------------------------
// Execution

class Scope {
  private readonly vars: Array<Map<string, unknown>> = [];
  constructor(root: unknown) {
    this.vars.push(new Map([['$', root]]));
  }
  push(): void {
    this.vars.push(new Map());
  }
  pop(): void {
    this.vars.pop();
  }
  set(name: string, value: unknown): void {
    (this.vars.at(-1) as Map<string, unknown>).set(name, value);
  }
  assign(name: string, value: unknown): void {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const frame = this.vars[i] as Map<string, unknown>;
      if (frame.has(name)) {
        frame.set(name, value);
        return;
      }
    }
    throw new TemplateError(`undefined variable: ${name}`);
  }
  get(name: string): unknown {
    for (let i = this.vars.length - 1; i >= 0; i--) {
      const frame = this.vars[i] as Map<string, unknown>;
      if (frame.has(name)) return frame.get(name);
    }
    throw new TemplateError(`undefined variable: ${name}`);
  }
}

export interface TemplateOptions {
  functions?: Record<string, TemplateFunction>;
  /** Go's missingkey=error: a missing map key fails instead of printing "<no value>". */
  missingKeyError?: boolean;
}

export class Template {
  private readonly nodes: Node[];
  private readonly functions: Record<string, TemplateFunction>;
  private readonly missingKeyError: boolean;

  constructor(
    private readonly source: string,
    options: TemplateOptions = {},
  ) {
    this.functions = options.functions ?? BASIC_FUNCTIONS;
    this.missingKeyError = options.missingKeyError === true;
    this.nodes = parseNodes(split(source));
    this.check(this.nodes);
  }

  /** Go's execution error text: `template: :1:52: executing "" at <.Foo>: ...`. */
  describe(err: TemplateError): string {
    if (!err.at) return `template: :1: ${err.message}`;
    const before = this.source.slice(0, err.at.pos);
    const newline = before.lastIndexOf('\n');
    const line = 1 + (before.match(/\n/g) ?? []).length;
    const column = newline === -1 ? err.at.pos : err.at.pos - newline - 1;
    return `template: :${line}:${column}: executing "" at <${err.at.context}>: ${err.message}`;
  }

  withFunctions(functions: Record<string, TemplateFunction>): Template {
    return new Template(this.source, { functions, missingKeyError: this.missingKeyError });
  }

  execute(data: unknown): string {
    const out: string[] = [];
    this.run(this.nodes, data, new Scope(data), out);
    return out.join('');
  }

  /** Unknown functions are parse errors in Go. */
  private check(nodes: Node[]): void {
    const checkPipeline = (pipeline: Pipeline): void => {
      for (const command of pipeline.commands) {
        for (const arg of command) {
          if (arg.kind === 'ident' && !(arg.name in this.functions)) {
            throw new TemplateError(`function "${arg.name}" not defined`);
          }
          if (arg.kind === 'pipe') checkPipeline(arg.pipeline);
        }
      }
    };
    for (const node of nodes) {
      if (node.kind === 'action') checkPipeline(node.pipeline);
      else if (node.kind !== 'text') {
        checkPipeline(node.pipeline);
        this.check(node.body);
        this.check(node.otherwise);
      }
    }
  }

  private run(nodes: Node[], dot: unknown, scope: Scope, out: string[]): void {
    for (const node of nodes) {
      switch (node.kind) {
        case 'text':
          out.push(node.text);
          break;
        case 'action': {
          const value = this.pipeline(node.pipeline, dot, scope);
          if (node.pipeline.decl.length === 0) out.push(formatValue(value));
          break;
        }
        case 'if':
        case 'with': {
          scope.push();
          const value = this.pipeline(node.pipeline, dot, scope);
          if (truthy(value)) this.run(node.body, node.kind === 'with' ? value : dot, scope, out);
          else this.run(node.otherwise, dot, scope, out);
          scope.pop();
          break;
        }
        case 'range': {
          scope.push();
          const decl = node.pipeline.decl;
          const value = this.pipeline({ decl: [], commands: node.pipeline.commands }, dot, scope);
          const items: Array<[unknown, unknown]> = Array.isArray(value)
            ? value.map((v, i) => [i, v])
            : typeof value === 'object' && value !== null
              ? Object.keys(value)
                  .sort()
                  .map((k) => [k, (value as Record<string, unknown>)[k]])
              : typeof value === 'number'
                ? Array.from({ length: value }, (_v, i) => [i, i])
                : [];
          if (items.length === 0) this.run(node.otherwise, dot, scope, out);
          for (const [key, item] of items) {
            if (decl.length === 1) scope.set(decl[0] as string, item);
            if (decl.length === 2) {
              scope.set(decl[0] as string, key);
              scope.set(decl[1] as string, item);
            }
            this.run(node.body, item, scope, out);
          }
          scope.pop();
          break;
        }
      }
    }
  }

  private pipeline(pipeline: Pipeline, dot: unknown, scope: Scope): unknown {
    let value: unknown = NO_VALUE;
    let first = true;
    for (const command of pipeline.commands) {
      value = this.command(command, dot, scope, first ? undefined : { value });
      first = false;
    }
    if (pipeline.decl.length === 1) {
      const name = pipeline.decl[0] as string;
      scope.set(name, value);
    }
    return value;
  }

  /** Attaches the failing node's position to an error raised while evaluating it. */
  private located<T>(arg: Arg, run: () => T): T {
    try {
      return run();
    } catch (err) {
      if (err instanceof TemplateError && !err.at && (arg.kind === 'field' || arg.kind === 'var')) {
        const context =
          (arg.kind === 'var' ? arg.name : '') + (arg.chain.length > 0 ? `.${arg.chain.join('.')}` : '.');
        err.at = { pos: arg.pos, context: arg.kind === 'var' && arg.chain.length === 0 ? arg.name : context };
      }
      throw err;
    }
  }

  private command(args: Arg[], dot: unknown, scope: Scope, piped: { value: unknown } | undefined): unknown {
    const [head, ...rest] = args;
    if (!head) throw new TemplateError('empty command');
    const evalArgs = (): unknown[] => {
      const values = rest.map((arg) => this.arg(arg, dot, scope));
      if (piped) values.push(piped.value);
      return values;
    };
    if (head.kind === 'ident') {
      const fn = this.functions[head.name];
      if (!fn) throw new TemplateError(`function "${head.name}" not defined`);
      return fn(...evalArgs());
    }
    if ((head.kind === 'field' || head.kind === 'var') && head.chain.length > 0) {
      const base = head.kind === 'field' ? dot : scope.get(head.name);
      const { receiver, value } = this.located(head, () => this.walk(base, head.chain));
      if (typeof value === 'function') return (value as TemplateFunction).apply(receiver, evalArgs());
      if (rest.length > 0 || piped)
        throw new TemplateError(`can't give argument to non-function ${head.chain.join('.')}`);
      return value;
    }
    if (rest.length > 0 || piped) throw new TemplateError("can't give argument to non-function");
    return this.arg(head, dot, scope);
  }

  private arg(arg: Arg, dot: unknown, scope: Scope): unknown {
    switch (arg.kind) {
      case 'literal':
        return arg.value;
      case 'field':
        return this.located(arg, () => this.callIfFunction(this.walk(dot, arg.chain)));
      case 'var':
        return this.located(arg, () => this.callIfFunction(this.walk(scope.get(arg.name), arg.chain)));
      case 'pipe':
        return this.callIfFunction(this.walk(this.pipeline(arg.pipeline, dot, scope), arg.chain));
      case 'ident': {
        const fn = this.functions[arg.name];
        if (!fn) throw new TemplateError(`function "${arg.name}" not defined`);
        return fn();
      }
    }
  }

  private callIfFunction(found: { receiver: unknown; value: unknown }): unknown {
    return typeof found.value === 'function'
      ? (found.value as TemplateFunction).call(found.receiver)
      : found.value;
  }

  private walk(base: unknown, chain: string[]): { receiver: unknown; value: unknown } {
    let receiver: unknown = undefined;
    let value = base;
    for (const [i, name] of chain.entries()) {
      if (typeof value === 'function' && i > 0) value = (value as TemplateFunction).call(receiver);
      receiver = value;
      if (value === null || value === undefined || value === NO_VALUE) {
        if (value === NO_VALUE) return { receiver, value: NO_VALUE };
        throw new TemplateError(`nil pointer evaluating .${chain.slice(0, i + 1).join('.')}`);
      }
      if (typeof value !== 'object') {
        throw new TemplateError(`can't evaluate field ${name} in type ${typeof value}`);
      }
      const record = value as Record<string, unknown>;
      if (isStruct(value)) {
        if (!(name in record)) throw new TemplateError(`can't evaluate field ${name}`);
        value = record[name];
      } else if (Object.prototype.hasOwnProperty.call(record, name)) value = record[name];
      else if (this.missingKeyError) throw new TemplateError(`map has no entry for key "${name}"`);
      else value = NO_VALUE;
    }
    return { receiver, value };
  }
}

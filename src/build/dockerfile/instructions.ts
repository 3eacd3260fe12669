/**
 * Dockerfile instructions with their arguments checked and split (exec vs shell form, key=value
 * pairs, flags), grouped into build stages. Values stay unexpanded: variables are expanded when a
 * step runs, with the environment and build args of that moment (shell-lex.ts).
 */
import { dockerfileError } from './errors.js';
import { parseDockerfile, rawWords, type Heredoc, type RawInstruction } from './parser.js';

/** Exec form (a JSON array) or shell form (the text, run through the stage's SHELL). */
export type CommandLine = { json: string[] } | { shell: string };

export interface KeyValue {
  key: string;
  value: string;
}

interface Base {
  raw: RawInstruction;
  /** Flag values as written, by name (`--mount` may repeat). */
  flags: Map<string, string[]>;
}

export type Instruction =
  | (Base & { kind: 'FROM'; image: string; stageName?: string })
  | (Base & { kind: 'RUN'; command: CommandLine; heredocs: Heredoc[] })
  | (Base & { kind: 'CMD' | 'ENTRYPOINT'; command: CommandLine })
  | (Base & { kind: 'SHELL'; shell: string[] })
  | (Base & { kind: 'ENV' | 'LABEL'; pairs: KeyValue[] })
  | (Base & { kind: 'ARG'; args: Array<{ name: string; value?: string }> })
  | (Base & { kind: 'EXPOSE' | 'USER' | 'WORKDIR' | 'STOPSIGNAL' | 'MAINTAINER'; text: string })
  | (Base & { kind: 'VOLUME'; paths: { json: string[] } | { text: string } })
  | (Base & { kind: 'COPY' | 'ADD'; sources: string[]; dest: string; heredocs: Heredoc[] })
  | (Base & { kind: 'HEALTHCHECK'; test?: CommandLine })
  | (Base & { kind: 'ONBUILD'; trigger: string });

export type InstructionKind = Instruction['kind'];
/** The instruction type of one keyword (also for members shared by several, like CMD/ENTRYPOINT). */
export type InstructionOf<K extends InstructionKind> = Instruction extends infer I
  ? I extends { kind: infer IK }
    ? K extends IK
      ? I & { kind: K }
      : never
    : never
  : never;

export interface Stage {
  index: number;
  /** The `AS name`, lower case. */
  name?: string;
  from: InstructionOf<'FROM'>;
  instructions: Instruction[];
}

export interface Dockerfile {
  file: string;
  escape: string;
  directives: Record<string, string>;
  /** ARGs before the first FROM: usable in FROM lines only (unless declared again in a stage). */
  metaArgs: Array<InstructionOf<'ARG'>>;
  stages: Stage[];
  warnings: string[];
}

/** Flags each instruction accepts; `true` marks boolean flags (`--link`). */
const FLAGS: Record<string, Record<string, boolean>> = {
  FROM: { platform: false },
  RUN: { mount: false, network: false, security: false },
  COPY: { from: false, chown: false, chmod: false, link: true, parents: true, exclude: false },
  ADD: {
    chown: false,
    chmod: false,
    link: true,
    'keep-git-dir': true,
    checksum: false,
    exclude: false,
  },
  HEALTHCHECK: {
    interval: false,
    timeout: false,
    'start-period': false,
    'start-interval': false,
    retries: false,
  },
};
const REPEATABLE = new Set(['mount', 'exclude']);

const KEYWORDS = new Set([
  'FROM',
  'RUN',
  'CMD',
  'ENTRYPOINT',
  'SHELL',
  'ENV',
  'LABEL',
  'ARG',
  'EXPOSE',
  'USER',
  'WORKDIR',
  'STOPSIGNAL',
  'MAINTAINER',
  'VOLUME',
  'COPY',
  'ADD',
  'HEALTHCHECK',
  'ONBUILD',
]);

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

class Reader {
  constructor(
    readonly file: string,
    readonly escape: string,
  ) {}

  fail(raw: RawInstruction, message: string, atArgs = false): never {
    throw dockerfileError(this.file, raw.line, atArgs ? raw.restColumn : raw.column, message);
  }

  flags(raw: RawInstruction): Map<string, string[]> {
    const allowed = FLAGS[raw.keyword] ?? {};
    const flags = new Map<string, string[]>();
    for (const word of raw.flags) {
      const text = word.slice(2);
      const eq = text.indexOf('=');
      const name = (eq === -1 ? text : text.slice(0, eq)).toLowerCase();
      if (!(name in allowed))
        this.fail(
          raw,
          `unknown flag: --${name} (${raw.keyword} accepts ${
            Object.keys(allowed)
              .map((f) => `--${f}`)
              .join(', ') || 'no flags'
          })`,
        );
      const isBool = allowed[name] === true;
      let value: string;
      if (eq === -1) {
        if (!isBool) this.fail(raw, `missing a value on flag: --${name}`);
        value = 'true';
      } else {
        value = text.slice(eq + 1);
        if (isBool && !['true', 'false'].includes(value.toLowerCase()))
          this.fail(raw, `expecting boolean value for flag --${name}, not: ${value}`);
      }
      const values = flags.get(name) ?? [];
      if (values.length > 0 && !REPEATABLE.has(name)) this.fail(raw, `duplicate flag specified: --${name}`);
      values.push(value);
      flags.set(name, values);
    }
    return flags;
  }

  requireArgs(raw: RawInstruction): void {
    if (raw.rest === '' && raw.heredocs.length === 0)
      this.fail(raw, `${raw.keyword} requires at least one argument`);
  }

  /** Docker's parseMaybeJSON: a JSON array of strings is exec form, anything else shell form. */
  commandLine(raw: RawInstruction, text: string): CommandLine {
    const json = this.jsonArray(raw, text, false);
    return json !== undefined ? { json } : { shell: text };
  }

  /** The JSON array `text`; undefined when it is not JSON (unless `required`). */
  jsonArray(raw: RawInstruction, text: string, required: boolean): string[] | undefined {
    const trimmed = text.trim();
    if (!trimmed.startsWith('[')) {
      if (required) this.fail(raw, `${raw.keyword} requires the arguments to be in JSON form`, true);
      return undefined;
    }
    let value: unknown;
    try {
      value = JSON.parse(trimmed);
    } catch (err) {
      if (required)
        this.fail(
          raw,
          `${raw.keyword} requires the arguments to be in JSON form: ${(err as Error).message}`,
          true,
        );
      return undefined;
    }
    if (!Array.isArray(value)) {
      if (required) this.fail(raw, `${raw.keyword} requires the arguments to be in JSON form`, true);
      return undefined;
    }
    if (!value.every((item) => typeof item === 'string'))
      this.fail(raw, 'when using JSON array syntax, arrays must be comprised of strings only', true);
    return value as string[];
  }

  /** ENV and LABEL: `key=value ...`, or the legacy `key value` (the rest of the line is the value). */
  pairs(raw: RawInstruction): KeyValue[] {
    const words = rawWords(raw.rest, this.escape).map((w) => w.word);
    if (words.length === 0) this.fail(raw, `${raw.keyword} requires at least one argument`);
    if (!(words[0] as string).includes('=')) {
      const match = /^(\S+)\s+([\s\S]+)$/.exec(raw.rest);
      if (match === null) this.fail(raw, `${raw.keyword} must have two arguments`, true);
      return [{ key: match[1] as string, value: match[2] as string }];
    }
    return words.map((word) => {
      const eq = word.indexOf('=');
      if (eq === -1)
        this.fail(raw, `syntax error - can't find = in "${word}". Must be of the form: name=value`, true);
      if (eq === 0) this.fail(raw, `${raw.keyword} names can not be blank`, true);
      return { key: word.slice(0, eq), value: word.slice(eq + 1) };
    });
  }

  instruction(raw: RawInstruction, nested = false): Instruction {
    const keyword = raw.keyword;
    if (!KEYWORDS.has(keyword)) this.fail(raw, `unknown instruction: ${keyword}`);
    const flags = this.flags(raw);
    const base = { raw, flags };
    switch (keyword) {
      case 'FROM': {
        const words = rawWords(raw.rest, this.escape).map((w) => w.word);
        if (words.length === 0) this.fail(raw, 'FROM requires either one or three arguments');
        if (words.length !== 1 && !(words.length === 3 && (words[1] as string).toLowerCase() === 'as'))
          this.fail(raw, 'FROM requires either one or three arguments', true);
        const stageName = words[2]?.toLowerCase();
        if (stageName !== undefined && !STAGE_NAME.test(stageName))
          this.fail(
            raw,
            `invalid name for build stage: "${words[2]}", name can't start with a number or contain symbols`,
            true,
          );
        return { ...base, kind: 'FROM', image: words[0] as string, ...(stageName ? { stageName } : {}) };
      }
      case 'RUN':
        this.requireArgs(raw);
        return { ...base, kind: 'RUN', command: this.commandLine(raw, raw.rest), heredocs: raw.heredocs };
      case 'CMD':
      case 'ENTRYPOINT':
        return { ...base, kind: keyword, command: this.commandLine(raw, raw.rest) };
      case 'SHELL': {
        this.requireArgs(raw);
        const shell = this.jsonArray(raw, raw.rest, true) as string[];
        if (shell.length === 0) this.fail(raw, 'SHELL requires at least one argument', true);
        return { ...base, kind: 'SHELL', shell };
      }
      case 'ENV':
      case 'LABEL':
        return { ...base, kind: keyword, pairs: this.pairs(raw) };
      case 'ARG': {
        const words = rawWords(raw.rest, this.escape).map((w) => w.word);
        if (words.length === 0) this.fail(raw, 'ARG requires at least one argument');
        const args = words.map((word) => {
          const eq = word.indexOf('=');
          const name = eq === -1 ? word : word.slice(0, eq);
          if (name === '') this.fail(raw, 'ARG names can not be blank', true);
          return eq === -1 ? { name } : { name, value: word.slice(eq + 1) };
        });
        return { ...base, kind: 'ARG', args };
      }
      case 'EXPOSE':
      case 'USER':
      case 'WORKDIR':
      case 'STOPSIGNAL':
      case 'MAINTAINER':
        this.requireArgs(raw);
        return { ...base, kind: keyword, text: raw.rest };
      case 'VOLUME': {
        this.requireArgs(raw);
        const json = this.jsonArray(raw, raw.rest, false);
        return { ...base, kind: 'VOLUME', paths: json !== undefined ? { json } : { text: raw.rest } };
      }
      case 'COPY':
      case 'ADD': {
        const json = this.jsonArray(raw, raw.rest, false);
        const words = json ?? rawWords(raw.rest, this.escape).map((w) => w.word);
        if (words.length < 2)
          this.fail(
            raw,
            `${keyword} requires at least two arguments, but only one was provided. Destination could not be determined`,
            true,
          );
        return {
          ...base,
          kind: keyword,
          sources: words.slice(0, -1),
          dest: words.at(-1) as string,
          heredocs: raw.heredocs,
        };
      }
      case 'HEALTHCHECK': {
        const words = rawWords(raw.rest, this.escape);
        const first = words[0]?.word.toUpperCase();
        if (first === 'NONE') {
          if (words.length > 1) this.fail(raw, 'HEALTHCHECK NONE takes no arguments', true);
          if (flags.size > 0) this.fail(raw, 'options cannot be used with HEALTHCHECK NONE');
          return { ...base, kind: 'HEALTHCHECK' };
        }
        if (first !== 'CMD') this.fail(raw, 'HEALTHCHECK requires NONE or CMD <command>', true);
        const command = raw.rest.slice((words[0] as { start: number }).start + 3).trim();
        if (command === '') this.fail(raw, 'HEALTHCHECK CMD requires a command', true);
        return { ...base, kind: 'HEALTHCHECK', test: this.commandLine(raw, command) };
      }
      case 'ONBUILD': {
        if (nested) this.fail(raw, 'ONBUILD cannot be nested');
        this.requireArgs(raw);
        const inner = parseDockerfile(raw.rest, this.file).instructions[0] as RawInstruction;
        const innerRaw = { ...inner, line: raw.line, column: raw.restColumn, restColumn: raw.restColumn };
        if (innerRaw.keyword === 'ONBUILD')
          this.fail(raw, "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed", true);
        if (innerRaw.keyword === 'FROM' || innerRaw.keyword === 'MAINTAINER')
          this.fail(raw, `${innerRaw.keyword} isn't allowed as an ONBUILD trigger`, true);
        this.instruction(innerRaw, true);
        return { ...base, kind: 'ONBUILD', trigger: raw.rest };
      }
    }
    return this.fail(raw, `unknown instruction: ${keyword}`);
  }
}

/** Parse a Dockerfile into its stages (and the ARGs before the first FROM). */
export function readDockerfile(text: string, file = 'Dockerfile'): Dockerfile {
  const parsed = parseDockerfile(text, file);
  const reader: Reader = new Reader(file, parsed.escape);
  const metaArgs: Array<InstructionOf<'ARG'>> = [];
  const stages: Stage[] = [];
  const names = new Set<string>();
  for (const raw of parsed.instructions) {
    const instruction = reader.instruction(raw);
    if (instruction.kind === 'FROM') {
      if (instruction.stageName !== undefined) {
        if (names.has(instruction.stageName))
          reader.fail(raw, `duplicate name for build stage: "${instruction.stageName}"`, true);
        names.add(instruction.stageName);
      }
      stages.push({
        index: stages.length,
        ...(instruction.stageName !== undefined ? { name: instruction.stageName } : {}),
        from: instruction,
        instructions: [],
      });
      continue;
    }
    const stage = stages.at(-1);
    if (stage === undefined) {
      if (instruction.kind === 'ARG') {
        metaArgs.push(instruction);
        continue;
      }
      reader.fail(
        raw,
        `${raw.keyword} before FROM: a Dockerfile must start with FROM (only ARG may come before it)`,
      );
    }
    stage.instructions.push(instruction);
  }
  if (stages.length === 0)
    throw dockerfileError(
      file,
      parsed.instructions.at(-1)?.line ?? 1,
      1,
      'no FROM instruction: a Dockerfile needs at least one build stage (FROM image)',
    );
  return {
    file,
    escape: parsed.escape,
    directives: parsed.directives,
    metaArgs,
    stages,
    warnings: parsed.warnings,
  };
}

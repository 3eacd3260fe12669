/**
 * The shape of a berth command (flags, argument count, usage and help text, the function that runs
 * it) and the parsing step shared by all of them: docker's flag grammar (args.ts), typed flag
 * values checked with docker's wording, argument counts checked with docker's messages.
 */
import { parseArgs, type FlagSpec, type ParsedArgs } from './args.js';
import type { CliContext } from './context.js';
import { UsageError } from './errors.js';
import { BerthError } from '../common/errors.js';
import { checkFlagValue } from './opts/values.js';

/** Value types, as docker's help names them; `bytes`, `int`, `decimal`, `duration` are checked. */
export type FlagType =
  | 'bool'
  | 'string'
  | 'list'
  | 'int'
  | 'uint'
  | 'uint16'
  | 'bytes'
  | 'decimal'
  | 'duration'
  | 'map'
  | 'filter'
  | 'mount'
  | 'network'
  | 'ulimit'
  | 'pipeline'
  | 'stringArray';

export interface FlagDef {
  name: string;
  short?: string;
  type: FlagType;
  description: string;
  /** Shown as "(default ...)" in help. */
  defaultText?: string;
  hidden?: boolean;
  /** Other spellings docker accepts (`--net` for `--network`). */
  aliases?: string[];
  /** Checks a value when flags are parsed, as docker's option types do: the problem, or undefined. */
  validate?: (value: string) => string | undefined;
}

export interface ArgCount {
  min?: number;
  max?: number;
}

export interface CommandDef {
  usage: string;
  description: string;
  flags: FlagDef[];
  args?: ArgCount;
  /** Flags after the first positional argument belong to it (run IMAGE CMD..., exec CTR CMD...). */
  stopAtPositional?: boolean;
  /** Other names under which docker knows the command ("docker container ls, docker ps"). */
  aliases?: string[];
  run(ctx: CliContext, args: ParsedArgs, invocation: Invocation): Promise<number | void>;
}

export interface Invocation {
  /** "berth run" or "berth container run": how the user called it, for messages. */
  name: string;
  /** run and create report daemon errors with exit code 125 and the usage hint. */
  exit125?: boolean;
}

const VALUE_CHECKS: Partial<Record<FlagType, (value: string) => string | undefined>> = {
  int: (v) =>
    /^[+-]?\d+$/.test(v) ? undefined : `strconv.ParseInt: parsing ${JSON.stringify(v)}: invalid syntax`,
  uint: (v) =>
    /^\+?\d+$/.test(v) ? undefined : `strconv.ParseUint: parsing ${JSON.stringify(v)}: invalid syntax`,
  uint16: (v) =>
    /^\+?\d+$/.test(v) && Number(v) <= 65535
      ? undefined
      : `strconv.ParseUint: parsing ${JSON.stringify(v)}: ${/^\+?\d+$/.test(v) ? 'value out of range' : 'invalid syntax'}`,
  decimal: (v) => checkFlagValue('decimal', v),
  bytes: (v) => checkFlagValue('bytes', v),
  duration: (v) => checkFlagValue('duration', v),
};

function flagLabel(def: FlagDef): string {
  return def.short ? `-${def.short}, --${def.name}` : `--${def.name}`;
}

function usageText(def: CommandDef, name: string): string {
  return `Usage:  ${name} ${def.usage}`.trimEnd();
}

function usageError(
  message: string,
  def: CommandDef,
  name: string,
  exitCode: number,
  prefixed: boolean,
  see = false,
) {
  const hint = see
    ? `See '${name} --help' for more information`
    : `Run '${name} --help' for more information`;
  return new UsageError(`${message}\n\n${usageText(def, name)}\n\n${hint}`, exitCode, prefixed);
}

const plural = (n: number): string => `${n} argument${n === 1 ? '' : 's'}`;

/** Parses a command's arguments with docker's checks; `help` is set when --help was given. */
export function parseCommand(
  def: CommandDef,
  argv: string[],
  invocation: Invocation,
): { args: ParsedArgs; help: boolean } {
  const specs: FlagSpec[] = def.flags.map((f) => ({
    name: f.name,
    short: f.short,
    value: f.type !== 'bool',
    multiple: ['list', 'map', 'filter', 'mount', 'network', 'ulimit', 'stringArray'].includes(f.type),
    aliases: f.aliases?.map((alias) => `--${alias}`),
  }));
  specs.push({ name: 'help' });
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, specs, { stopAtPositional: def.stopAtPositional });
  } catch (err) {
    if (err instanceof BerthError) throw usageError(err.message, def, invocation.name, 125, false);
    throw err;
  }
  if (args.flags.get('help')?.at(-1) === 'true') return { args, help: true };
  for (const flag of def.flags) {
    const check = flag.validate ?? VALUE_CHECKS[flag.type];
    if (!check) continue;
    for (const value of args.flags.get(flag.name) ?? []) {
      const problem = check(value);
      if (problem !== undefined) {
        throw usageError(
          `invalid argument ${JSON.stringify(value)} for "${flagLabel(flag)}" flag: ${problem}`,
          def,
          invocation.name,
          125,
          false,
        );
      }
    }
  }
  const count = args.positional.length;
  const { min, max } = def.args ?? {};
  const fail = (text: string, see = false): never => {
    throw usageError(`'${invocation.name}' ${text}`, def, invocation.name, 1, true, see);
  };
  if (max === 0 && count > 0) fail('accepts no arguments');
  if (min !== undefined && max !== undefined && min === max && count !== min) fail(`requires ${plural(min)}`);
  if (min !== undefined && max !== undefined && min !== max && (count < min || count > max)) {
    fail(`requires at least ${min} and at most ${plural(max)}`);
  }
  if (min !== undefined && max === undefined && count < min) fail(`requires at least ${plural(min)}`, true);
  if (max !== undefined && min === undefined && count > max) fail(`requires at most ${plural(max)}`);
  return { args, help: false };
}

/** Help in the docker CLI's layout. */
export function helpText(def: CommandDef, name: string): string {
  let text = `${usageText(def, name)}\n\n${def.description}\n`;
  if (def.aliases && def.aliases.length > 0) text += `\nAliases:\n  ${def.aliases.join(', ')}\n`;
  const flags = def.flags.filter((f) => !f.hidden);
  if (flags.length > 0) {
    const labels = flags.map((f) => {
      const label = f.short ? `-${f.short}, --${f.name}` : `    --${f.name}`;
      return f.type === 'bool' ? label : `${label} ${f.type}`;
    });
    const width = Math.max(...labels.map((l) => l.length));
    text += '\nOptions:\n';
    flags.forEach((f, i) => {
      const defaultText = f.defaultText !== undefined ? ` (default ${f.defaultText})` : '';
      text += `  ${(labels[i] ?? '').padEnd(width)}   ${f.description}${defaultText}\n`;
    });
  }
  return text;
}

/** Flag definitions used by many commands. */
export const FORMAT_FLAG: FlagDef = {
  name: 'format',
  type: 'string',
  description:
    "Format output using a custom template: 'table', 'table TEMPLATE', 'json' or a Go template " +
    '(see https://docs.docker.com/go/formatting/)',
};
export const FILTER_FLAG: FlagDef = {
  name: 'filter',
  short: 'f',
  type: 'filter',
  description: 'Filter output based on conditions provided',
};
export const FORCE_PRUNE_FLAG: FlagDef = {
  name: 'force',
  short: 'f',
  type: 'bool',
  description: 'Do not prompt for confirmation',
};

import { invalidArgument } from '../common/errors.js';

/** One command-line flag: `--name`, optional one-letter `-s`, boolean or taking a value, maybe repeated. */
export interface FlagSpec {
  name: string;
  short?: string;
  value?: boolean;
  multiple?: boolean;
  /** Other accepted spellings (e.g. runc's single-dash long options). */
  aliases?: string[];
}

export interface ParsedArgs {
  flags: Map<string, string[]>;
  positional: string[];
}

/**
 * Parse flags the way docker and runc do: `--name value`, `--name=value`, grouped short booleans
 * (`-it`), `-e VALUE` and `-eVALUE`, and `--` to end flags. With `stopAtPositional`, everything
 * after the first positional argument is left as it is (for `exec ID CMD ARGS...`).
 */
export function parseArgs(
  args: string[],
  specs: FlagSpec[],
  options: { stopAtPositional?: boolean } = {},
): ParsedArgs {
  const byName = new Map<string, FlagSpec>();
  for (const spec of specs) {
    byName.set(`--${spec.name}`, spec);
    if (spec.short) byName.set(`-${spec.short}`, spec);
    for (const alias of spec.aliases ?? []) byName.set(alias, spec);
  }
  const flags = new Map<string, string[]>();
  const positional: string[] = [];
  const set = (spec: FlagSpec, value: string): void => {
    const list = flags.get(spec.name) ?? [];
    if (spec.multiple) list.push(value);
    else list.splice(0, list.length, value);
    flags.set(spec.name, list);
  };
  const take = (
    spec: FlagSpec,
    name: string,
    inline: string | undefined,
    next: () => string | undefined,
    shortGroup?: string,
  ): void => {
    if (spec.value) {
      const value = inline ?? next();
      if (value === undefined) {
        // pflag's wording: "'m' in -m" for a shorthand, the flag itself otherwise.
        throw invalidArgument(
          `flag needs an argument: ${shortGroup ? `'${name.slice(1)}' in ${shortGroup}` : name}`,
        );
      }
      set(spec, value);
      return;
    }
    const value = inline ?? 'true';
    if (value !== 'true' && value !== 'false') {
      throw invalidArgument(`invalid boolean value ${JSON.stringify(value)} for ${name}`);
    }
    set(spec, value);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const next = (): string | undefined => (i + 1 < args.length ? args[++i] : undefined);
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
      if (options.stopAtPositional) {
        positional.push(...args.slice(i + 1));
        break;
      }
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const inline = eq > 0 ? arg.slice(eq + 1) : undefined;
    const spec = byName.get(name);
    if (spec) {
      take(spec, name, inline, next, /^-[^-]$/.test(name) ? arg : undefined);
      continue;
    }
    if (arg.startsWith('--')) throw invalidArgument(`unknown flag: ${name}`);
    // Grouped short flags (-it), the last of which may take a value (-e FOO or -eFOO).
    for (let j = 1; j < arg.length; j++) {
      const short = byName.get(`-${arg[j]}`);
      if (!short) throw invalidArgument(`unknown shorthand flag: '${arg[j]}' in ${arg}`);
      if (short.value) {
        const rest = arg.slice(j + 1);
        take(short, `-${arg[j]}`, rest !== '' ? rest : undefined, next, arg);
        break;
      }
      set(short, 'true');
    }
  }
  return { flags, positional };
}

export const flagValue = (parsed: ParsedArgs, name: string): string | undefined =>
  parsed.flags.get(name)?.at(-1);
export const flagValues = (parsed: ParsedArgs, name: string): string[] => parsed.flags.get(name) ?? [];
export const flagBool = (parsed: ParsedArgs, name: string): boolean => flagValue(parsed, name) === 'true';

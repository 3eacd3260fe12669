/**
 * docker's list formatter: `--format` is "table" (the default table), "table TEMPLATE" (a header
 * row rendered by the same template, then aligned columns), "json" (`{{json .}}` per line) or a
 * bare Go template (one line per item). `\t` and `\n` written literally in a format are turned into
 * a tab and a newline, as docker does.
 */
import { tabwrite } from './tabwriter.js';
import { HEADER_FUNCTIONS, STRUCT, Template, TemplateError } from './template.js';
import { CommandError } from '../errors.js';

export interface ListFormat {
  /** The user's --format (or empty). */
  format: string | undefined;
  /** The table used when --format is empty or "table". */
  defaultTable: string;
  /** Field name -> column header. */
  headers: Record<string, string>;
  /** With -q: the template used instead (docker: `{{.ID}}`). */
  quiet?: string;
}

export const isTableFormat = (format: string): boolean => format.startsWith('table');

/** Docker's replacement of the two escapes users type in shells. */
const unescape = (format: string): string => format.replace(/\\t/g, '\t').replace(/\\n/g, '\n');

export function parseTemplate(format: string): Template {
  try {
    return new Template(format);
  } catch (err) {
    if (err instanceof TemplateError)
      throw new CommandError(`template parsing error: template: :1: ${err.message}`);
    throw err;
  }
}

export function executeTemplate(template: Template, data: unknown): string {
  try {
    return template.execute(data);
  } catch (err) {
    if (err instanceof TemplateError) throw new CommandError(template.describe(err));
    throw err;
  }
}

/** Renders a list of items (template contexts) the way docker's `ps`, `images`, ... do. */
export function renderList(spec: ListFormat, items: object[], quiet = false): string {
  let format = spec.format ?? '';
  if (quiet) format = spec.quiet ?? '{{.ID}}';
  else if (format === '' || format === 'table') format = spec.defaultTable;
  else if (format === 'json') format = '{{json .}}';
  const table = isTableFormat(format);
  const body = unescape((table ? format.slice('table'.length) : format).replace(/^ +| +$/g, ''));
  const template = parseTemplate(body);
  let text = '';
  if (table) {
    const header = template.withFunctions(HEADER_FUNCTIONS);
    text += executeTemplate(header, { ...spec.headers, Label: labelHeader }) + '\n';
  }
  for (const item of items) text += executeTemplate(template, item) + '\n';
  return table ? tabwrite(text) : text;
}

/** The header of a `{{.Label "com.example.some-key"}}` column: "some key". */
const labelHeader = (name: unknown): string => (String(name).split('.').at(-1) ?? '').replace(/[-_]/g, ' ');

/**
 * A template context that behaves like one of docker's Go structs: unknown fields are errors and
 * `{{json .}}` gives every field, keys sorted (docker marshals them through a map).
 */
export function structContext<T extends Record<string, unknown>>(fields: T): T {
  const context = { ...fields, [STRUCT]: true } as T & { [STRUCT]: true };
  Object.defineProperty(context, 'toJSON', {
    enumerable: false,
    value: () => {
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(fields).sort()) {
        const value = fields[key];
        if (typeof value !== 'function') out[key] = value;
      }
      return out;
    },
  });
  return context;
}

/** Docker's `Label "name"` accessor over a comma-separated k=v label string. */
export function labelLookup(labels: Record<string, string> | null | undefined): (name: unknown) => string {
  return (name: unknown) => (labels ?? {})[String(name)] ?? '';
}

/** `k=v,k=v` in key order, as docker prints Labels. */
export function joinLabels(labels: Record<string, string> | null | undefined): string {
  return Object.entries(labels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .sort()
    .join(',');
}

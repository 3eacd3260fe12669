/**
 * `RUN --mount=...` specs, BuildKit's syntax: comma-separated `key=value` fields (a bare key is
 * `key=true`), `type=` one of cache (default for nothing: bind), bind, tmpfs, secret.
 */
import { posix } from 'node:path';
import { invalidArgument } from '../common/errors.js';

export type MountSpec =
  | { type: 'cache'; target: string; id: string; readonly: boolean; mode: number; uid: number; gid: number }
  | { type: 'bind'; target: string; source: string; from?: string; readwrite: boolean }
  | { type: 'tmpfs'; target: string; size?: number }
  | { type: 'secret'; target: string; id: string; required: boolean; mode: number; uid: number; gid: number };

const TRUE = new Set(['true', '1', '']);

function fieldsOf(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of text.split(',')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const key = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    fields.set(key, eq === -1 ? '' : part.slice(eq + 1).trim());
  }
  return fields;
}

function int(fields: Map<string, string>, key: string, fallback: number, base = 10): number {
  const value = fields.get(key);
  if (value === undefined) return fallback;
  const parsed = parseInt(value, base);
  if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(parsed))
    throw invalidArgument(`invalid --mount ${key}=${value}: not a number`);
  return parsed;
}

function bool(fields: Map<string, string>, ...keys: string[]): boolean {
  return keys.some((key) => fields.has(key) && TRUE.has((fields.get(key) as string).toLowerCase()));
}

/** Byte sizes for tmpfs: plain bytes or with k/m/g suffixes. */
function size(text: string): number {
  const match = /^(\d+)([kmg]?)b?$/i.exec(text);
  if (match === null) throw invalidArgument(`invalid --mount size=${text}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] ?? 1;
  return Number(match[1]) * unit;
}

/** Parse one --mount value; `workdir` makes relative targets absolute. */
export function parseMount(text: string, workdir: string): MountSpec {
  const fields = fieldsOf(text);
  const type = fields.get('type') ?? 'bind';
  const rawTarget = fields.get('target') ?? fields.get('dst') ?? fields.get('destination');
  const target = rawTarget === undefined ? undefined : posix.resolve(workdir || '/', rawTarget);
  const known: Record<string, string[]> = {
    cache: ['type', 'target', 'dst', 'destination', 'id', 'readonly', 'ro', 'mode', 'uid', 'gid', 'sharing'],
    bind: [
      'type',
      'target',
      'dst',
      'destination',
      'source',
      'src',
      'from',
      'readonly',
      'ro',
      'rw',
      'readwrite',
    ],
    tmpfs: ['type', 'target', 'dst', 'destination', 'size'],
    secret: ['type', 'target', 'dst', 'destination', 'id', 'required', 'mode', 'uid', 'gid'],
  };
  const allowed = known[type];
  if (allowed === undefined)
    throw invalidArgument(
      `unsupported --mount type "${type}" (berth supports cache, bind, tmpfs and secret)`,
    );
  for (const key of fields.keys())
    if (!allowed.includes(key)) throw invalidArgument(`unexpected key '${key}' in --mount type=${type}`);
  if (type === 'secret') {
    const id = fields.get('id') ?? (target !== undefined ? posix.basename(target) : undefined);
    if (id === undefined || id === '') throw invalidArgument('--mount type=secret needs an id or a target');
    return {
      type,
      id,
      target: target ?? `/run/secrets/${id}`,
      required: bool(fields, 'required'),
      mode: int(fields, 'mode', 0o400, 8),
      uid: int(fields, 'uid', 0),
      gid: int(fields, 'gid', 0),
    };
  }
  if (target === undefined) throw invalidArgument(`--mount type=${type} needs a target`);
  switch (type) {
    case 'cache':
      return {
        type,
        target,
        id: fields.get('id') || target,
        readonly: bool(fields, 'readonly', 'ro'),
        mode: int(fields, 'mode', 0o755, 8),
        uid: int(fields, 'uid', 0),
        gid: int(fields, 'gid', 0),
      };
    case 'tmpfs': {
      const limit = fields.get('size');
      return { type, target, ...(limit !== undefined ? { size: size(limit) } : {}) };
    }
    default: {
      const from = fields.get('from');
      return {
        type: 'bind',
        target,
        source: fields.get('source') ?? fields.get('src') ?? '/',
        ...(from !== undefined && from !== '' ? { from } : {}),
        readwrite: bool(fields, 'rw', 'readwrite'),
      };
    }
  }
}

/**
 * `HostConfig.Binds` strings and `HostConfig.Mounts` entries, parsed and validated with Docker's
 * rules and messages (daemon/volume/mounts, Linux parser), into mount requests the engine resolves
 * (volume names to host paths) before building the spec. Whether a bind source exists is the
 * engine's check; the shapes are checked here.
 */
import { posix } from 'node:path';
import { invalidArgument } from '../common/errors.js';
import type { Mount, Propagation, TmpfsOptions } from './docker-types.js';

export const PROPAGATIONS: ReadonlySet<string> = new Set<Propagation>([
  'private',
  'rprivate',
  'shared',
  'rshared',
  'slave',
  'rslave',
]);
const DEFAULT_PROPAGATION: Propagation = 'rprivate';
const RW_MODES = new Set(['rw', 'ro']);
const LABEL_MODES = new Set(['z', 'Z']);
const CONSISTENCY_MODES = new Set(['consistent', 'cached', 'delegated']);

/** What the engine must mount, before volumes are resolved to host paths. */
export interface MountRequest {
  type: 'bind' | 'volume' | 'tmpfs';
  /** bind: an absolute host path; volume: the volume's name ('' for an anonymous volume); tmpfs: ''. */
  source: string;
  /** Cleaned absolute path in the container. */
  destination: string;
  readOnly: boolean;
  /** Binds only; `rprivate` unless given. */
  propagation?: Propagation;
  nonRecursive?: boolean;
  createMountpoint?: boolean;
  readOnlyNonRecursive?: boolean;
  /** Volumes: do not copy the image's content at the destination into a new volume. */
  noCopy?: boolean;
  subpath?: string;
  volumeDriver?: string;
  volumeDriverOptions?: Record<string, string>;
  volumeLabels?: Record<string, string>;
  /** tmpfs: Docker's option string (`size=64m,mode=1777`). */
  tmpfsData?: string;
  /** The mode string of a Binds entry, as Docker keeps it (`ro,z`). */
  mode?: string;
}

/** A mount the engine resolved to host paths: the input of buildSpec. */
export type ResolvedMount =
  | {
      type: 'bind';
      source: string;
      destination: string;
      readOnly?: boolean;
      /** Omitted: no propagation option (the mount keeps what it inherits), as Docker does for volumes. */
      propagation?: Propagation;
      nonRecursive?: boolean;
    }
  | { type: 'tmpfs'; destination: string; data?: string };

class MountConfigError extends Error {}

const invalidSpec = (raw: string): string => `invalid volume specification: '${raw}'`;

function validateMountMode(mode: string): boolean {
  if (mode === '') return true;
  const counts = { rw: 0, label: 0, propagation: 0, copy: 0, consistency: 0 };
  for (const option of mode.split(',')) {
    if (RW_MODES.has(option)) counts.rw++;
    else if (LABEL_MODES.has(option)) counts.label++;
    else if (PROPAGATIONS.has(option)) counts.propagation++;
    else if (option === 'nocopy') counts.copy++;
    else if (CONSISTENCY_MODES.has(option)) counts.consistency++;
    else return false;
  }
  return Object.values(counts).every((count) => count <= 1);
}

function checkTarget(target: string | undefined): string {
  if (target === undefined || target === '') throw new MountConfigError('field Target must not be empty');
  const normalized = target.replaceAll('\\', '/');
  if (posix.normalize(normalized) === '/' || posix.normalize(normalized) === '//')
    throw new MountConfigError("invalid specification: destination can't be '/'");
  if (!posix.isAbsolute(normalized))
    throw new MountConfigError(`invalid mount path: '${normalized}' mount path must be absolute`);
  return posix.resolve(normalized);
}

/** Docker's ConvertTmpfsOptions: the tmpfs option string of a `--mount type=tmpfs`. */
export function tmpfsMountData(options: TmpfsOptions | null | undefined, readOnly: boolean): string {
  const raw: string[] = [];
  if (readOnly) raw.push('ro');
  if (options?.Mode) raw.push(`mode=${options.Mode.toString(8)}`);
  if (options?.SizeBytes) {
    let size = options.SizeBytes;
    let suffix = '';
    for (const [unit, divisor] of [
      ['g', 2 ** 30],
      ['m', 2 ** 20],
      ['k', 2 ** 10],
    ] as const) {
      if (size % divisor === 0) {
        size /= divisor;
        suffix = unit;
        break;
      }
    }
    raw.push(`size=${size}${suffix}`);
  }
  for (const option of options?.Options ?? []) {
    if (option.length === 1) raw.push(option[0] ?? '');
    else if (option.length === 2) raw.push(`${option[0]}=${option[1]}`);
    else throw new MountConfigError(`invalid tmpfs option ${JSON.stringify(option)}`);
  }
  return raw.join(',');
}

/** Docker's validateMountConfig (without the bind source existence check) and conversion. */
function requestFromMount(m: Mount): MountRequest {
  const destination = checkTarget(m.Target);
  const readOnly = m.ReadOnly === true;
  switch (m.Type) {
    case 'bind': {
      if (!m.Source) throw new MountConfigError('field Source must not be empty');
      const propagation = m.BindOptions?.Propagation;
      if (propagation && !PROPAGATIONS.has(propagation))
        throw new MountConfigError(`invalid propagation mode: ${propagation}`);
      if (m.VolumeOptions) throw new MountConfigError('field VolumeOptions must not be specified');
      if (m.TmpfsOptions) throw new MountConfigError('field TmpfsOptions must not be specified');
      const source = m.Source.replaceAll('\\', '/');
      if (!posix.isAbsolute(source))
        throw new MountConfigError(`invalid mount path: '${source}' mount path must be absolute`);
      const options = m.BindOptions ?? {};
      if (options.ReadOnlyNonRecursive && options.ReadOnlyForceRecursive)
        throw new MountConfigError('mount options conflict: ReadOnlyNonRecursive && ReadOnlyForceRecursive');
      // berth-runtime has no recursively read-only mounts (runtime features lack "rro"); Docker
      // refuses ReadOnlyForceRecursive on such a runtime too.
      if (options.ReadOnlyForceRecursive)
        throw new MountConfigError(
          'ReadOnlyForceRecursive: the runtime does not support recursively read-only mounts',
        );
      return {
        type: 'bind',
        source: posix.resolve(source),
        destination,
        readOnly,
        propagation: propagation || DEFAULT_PROPAGATION,
        ...(options.NonRecursive ? { nonRecursive: true } : {}),
        ...(options.CreateMountpoint ? { createMountpoint: true } : {}),
        ...(options.ReadOnlyNonRecursive ? { readOnlyNonRecursive: true } : {}),
      };
    }
    case 'volume': {
      if (m.BindOptions) throw new MountConfigError('field BindOptions must not be specified');
      if (m.TmpfsOptions) throw new MountConfigError('field TmpfsOptions must not be specified');
      const source = m.Source ?? '';
      const subpath = m.VolumeOptions?.Subpath ?? '';
      if (subpath !== '') {
        if (source === '') throw new MountConfigError('must not set Subpath when using anonymous volumes');
        const clean = posix.normalize(subpath);
        if (posix.isAbsolute(clean) || clean === '..' || clean.startsWith('../'))
          throw new MountConfigError('subpath must be a relative path within the volume');
      }
      if (readOnly && source === '')
        throw new MountConfigError('must not set ReadOnly mode when using anonymous volumes');
      const driver = m.VolumeOptions?.DriverConfig;
      return {
        type: 'volume',
        source,
        destination,
        readOnly,
        ...(m.VolumeOptions?.NoCopy ? { noCopy: true } : {}),
        ...(subpath !== '' ? { subpath: posix.normalize(subpath) } : {}),
        ...(driver?.Name ? { volumeDriver: driver.Name } : {}),
        ...(driver?.Options ? { volumeDriverOptions: { ...driver.Options } } : {}),
        ...(m.VolumeOptions?.Labels ? { volumeLabels: { ...m.VolumeOptions.Labels } } : {}),
      };
    }
    case 'tmpfs': {
      if (m.BindOptions) throw new MountConfigError('field BindOptions must not be specified');
      if (m.VolumeOptions) throw new MountConfigError('field VolumeOptions must not be specified');
      if (m.Source) throw new MountConfigError('field Source must not be specified');
      const data = tmpfsMountData(m.TmpfsOptions, readOnly);
      tmpfsSpecOptions(data);
      return { type: 'tmpfs', source: '', destination, readOnly, tmpfsData: data };
    }
    default:
      throw new MountConfigError('mount type unknown');
  }
}

/** Validate and convert one `HostConfig.Mounts` entry (`--mount`). */
export function parseMount(m: Mount): MountRequest {
  try {
    return requestFromMount(m);
  } catch (err) {
    if (!(err instanceof MountConfigError)) throw err;
    throw invalidArgument(`invalid mount config for type ${JSON.stringify(m.Type ?? '')}: ${err.message}`);
  }
}

/**
 * Parse one `HostConfig.Binds` entry (`-v`): `dest`, `source:dest` or `source:dest:mode`; an
 * absolute source is a bind mount, anything else names a volume. Mode words: `ro`/`rw`,
 * propagation, `nocopy`, `z`/`Z` (SELinux relabelling, accepted and ignored) and the macOS
 * consistency words (ignored).
 */
export function parseBind(raw: string, volumeDriver = ''): MountRequest {
  const fields = raw.split(':');
  if (fields[0] === '' || fields.length > 3) throw invalidArgument(invalidSpec(raw));
  // `/dest:ro` would be a volume with a mode but no name.
  if (fields.length === 2 && validateMountMode(fields[1] ?? '')) throw invalidArgument(invalidSpec(raw));
  const [source = '', target = '', mode = ''] = fields.length === 1 ? ['', fields[0]] : fields;
  if (!validateMountMode(mode)) throw invalidArgument(`invalid mode: ${mode}`);
  const words = mode === '' ? [] : mode.split(',');
  const propagation = words.find((word) => PROPAGATIONS.has(word)) as Propagation | undefined;
  const type = posix.isAbsolute(source) ? 'bind' : 'volume';
  const mount: Mount = {
    Type: type,
    Source: source,
    Target: target,
    ReadOnly: words.includes('ro'),
    ...(propagation ? { BindOptions: { Propagation: propagation } } : {}),
  };
  const noCopy = words.includes('nocopy');
  if (noCopy || (volumeDriver !== '' && type === 'volume')) {
    mount.VolumeOptions = {
      ...(noCopy ? { NoCopy: true } : {}),
      ...(volumeDriver !== '' && type === 'volume' ? { DriverConfig: { Name: volumeDriver } } : {}),
    };
  }
  try {
    return { ...requestFromMount(mount), mode };
  } catch (err) {
    if (!(err instanceof MountConfigError)) throw err;
    throw invalidArgument(`${invalidSpec(raw)}: invalid mount config for type "${type}": ${err.message}`);
  }
}

/** Turn a request into what buildSpec takes, given the host path a volume resolved to. */
export function resolveMountRequest(request: MountRequest, volumePath?: string): ResolvedMount {
  if (request.type === 'tmpfs')
    return { type: 'tmpfs', destination: request.destination, data: request.tmpfsData ?? '' };
  const source =
    request.type === 'bind'
      ? request.source
      : posix.join(requireVolumePath(request, volumePath), request.subpath ?? '');
  return {
    type: 'bind',
    source,
    destination: request.destination,
    readOnly: request.readOnly,
    ...(request.propagation ? { propagation: request.propagation } : {}),
    ...(request.nonRecursive ? { nonRecursive: true } : {}),
  };
}

function requireVolumePath(request: MountRequest, volumePath: string | undefined): string {
  if (volumePath === undefined || !posix.isAbsolute(volumePath))
    throw new TypeError(
      `volume ${request.source || '(anonymous)'} at ${request.destination} has no host path`,
    );
  return volumePath;
}

const splitOptions = (data: string): string[] => (data === '' ? [] : data.split(','));

/** mount(2) flag words of tmpfs options; words sharing a key cancel each other (last wins). */
const FLAG_KEYS: Readonly<Record<string, string>> = {
  ro: 'rdonly',
  rw: 'rdonly',
  suid: 'nosuid',
  nosuid: 'nosuid',
  dev: 'nodev',
  nodev: 'nodev',
  exec: 'noexec',
  noexec: 'noexec',
  sync: 'sync',
  async: 'sync',
  dirsync: 'dirsync',
  remount: 'remount',
  mand: 'mand',
  nomand: 'mand',
  atime: 'noatime',
  noatime: 'noatime',
  diratime: 'nodiratime',
  nodiratime: 'nodiratime',
  bind: 'bind',
  rbind: 'rbind',
  relatime: 'relatime',
  norelatime: 'relatime',
  strictatime: 'strictatime',
  nostrictatime: 'strictatime',
  private: 'propagation',
  rprivate: 'propagation',
  shared: 'propagation',
  rshared: 'propagation',
  slave: 'propagation',
  rslave: 'propagation',
  unbindable: 'propagation',
  runbindable: 'propagation',
};
const TMPFS_DATA_KEYS = new Set(['size', 'mode', 'uid', 'gid', 'nr_inodes', 'nr_blocks', 'mpol']);

/**
 * Docker's MergeTmpfsOptions: later options win over earlier ones with the same effect, `defaults`
 * is dropped, and data options other than tmpfs's own are refused.
 */
export function mergeTmpfsOptions(options: string[]): string[] {
  const seenFlags = new Set<string>();
  const seenData = new Set<string>();
  const merged: string[] = [];
  for (const option of [...options].reverse()) {
    if (option === 'defaults') continue;
    const flagKey = FLAG_KEYS[option];
    if (flagKey !== undefined) {
      if (seenFlags.has(flagKey)) continue;
      seenFlags.add(flagKey);
      merged.unshift(option);
      continue;
    }
    const equals = option.indexOf('=');
    const key = equals < 0 ? '' : option.slice(0, equals);
    if (equals < 0 || !TMPFS_DATA_KEYS.has(key)) {
      // Go's %q of the option split at "=": ["foo"] or ["key" "value"].
      const words = equals < 0 ? [option] : [key, option.slice(equals + 1)];
      throw invalidArgument(`invalid tmpfs option [${words.map((w) => JSON.stringify(w)).join(' ')}]`);
    }
    if (seenData.has(key)) continue;
    seenData.add(key);
    merged.unshift(option);
  }
  return merged;
}

/** The OCI options of a Docker tmpfs mount: noexec,nosuid,nodev,rprivate overridden by `data`. */
export function tmpfsSpecOptions(data: string): string[] {
  return mergeTmpfsOptions(['noexec', 'nosuid', 'nodev', DEFAULT_PROPAGATION, ...splitOptions(data)]);
}

/**
 * Named volumes with Docker's local driver: `<dataRoot>/volumes/<name>/_data`, metadata beside
 * it in `volume.json` (written atomically). Options `type`, `device` and `o` make the volume a
 * mount of that device (for example a tmpfs) at first use, as Docker's local driver does.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeJsonAtomic } from '../common/atomic-file.js';
import { conflict, invalidArgument, notFound } from '../common/errors.js';
import { spreadSubdirectories } from '../linux/spread-dirs.js';

const run = promisify(execFile);
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;
const DRIVER_OPTIONS = new Set(['type', 'device', 'o']);

export interface VolumeRecord {
  Name: string;
  Driver: 'local';
  Mountpoint: string;
  CreatedAt: string;
  Labels: Record<string, string>;
  Scope: 'local';
  Options: Record<string, string>;
  /** Not Docker's: whether the volume has no name of its own (removed with `rm -v`). */
  anonymous?: boolean;
}

export class VolumeStore {
  private readonly volumes = new Map<string, VolumeRecord>();
  private readonly mounted = new Set<string>();

  private constructor(readonly root: string) {}

  static async open(dataRoot: string): Promise<VolumeStore> {
    const store = new VolumeStore(join(dataRoot, 'volumes'));
    await mkdir(store.root, { recursive: true, mode: 0o701 });
    await spreadSubdirectories(store.root);
    for (const name of await readdir(store.root)) {
      try {
        store.volumes.set(
          name,
          JSON.parse(await readFile(join(store.root, name, 'volume.json'), 'utf8')) as VolumeRecord,
        );
      } catch {
        // not a volume (or one whose creation did not finish): ignore
      }
    }
    return store;
  }

  async create(
    name: string | undefined,
    options: {
      labels?: Record<string, string>;
      driver?: string;
      driverOpts?: Record<string, string>;
      anonymous?: boolean;
    } = {},
  ): Promise<VolumeRecord> {
    if (options.driver && options.driver !== 'local') {
      throw notFound(
        `error looking up volume plugin ${options.driver}: plugin "${options.driver}" not found`,
      );
    }
    const volumeName = name || randomBytes(32).toString('hex');
    if (!NAME.test(volumeName)) {
      throw invalidArgument(
        `create ${volumeName}: "${volumeName}" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`,
      );
    }
    for (const key of Object.keys(options.driverOpts ?? {})) {
      if (!DRIVER_OPTIONS.has(key)) throw invalidArgument(`invalid option key: "${key}"`);
    }
    const existing = this.volumes.get(volumeName);
    if (existing) return existing;
    const dir = join(this.root, volumeName);
    await mkdir(join(dir, '_data'), { recursive: true, mode: 0o755 });
    const record: VolumeRecord = {
      Name: volumeName,
      Driver: 'local',
      Mountpoint: join(dir, '_data'),
      CreatedAt: new Date().toISOString(),
      Labels: options.labels ?? {},
      Scope: 'local',
      Options: options.driverOpts ?? {},
      ...(options.anonymous ? { anonymous: true } : {}),
    };
    await writeJsonAtomic(join(dir, 'volume.json'), record);
    this.volumes.set(volumeName, record);
    return record;
  }

  get(name: string): VolumeRecord {
    const volume = this.volumes.get(name);
    if (!volume) throw notFound(`get ${name}: no such volume`);
    return volume;
  }

  find(name: string): VolumeRecord | undefined {
    return this.volumes.get(name);
  }

  list(): VolumeRecord[] {
    return [...this.volumes.values()].sort((a, b) => (a.Name < b.Name ? -1 : 1));
  }

  /** The host path to mount: the device mounted first when the volume has `type`/`device` options. */
  async mountpoint(name: string): Promise<string> {
    const volume = this.get(name);
    const { type, device, o } = volume.Options;
    if (type !== undefined && !this.mounted.has(name)) {
      const args = ['-t', type, ...(o ? ['-o', o] : []), device ?? type, volume.Mountpoint];
      await run('mount', args).catch((err: { stderr?: string }) => {
        throw invalidArgument(
          `error while mounting volume '${volume.Mountpoint}': ${(err.stderr ?? '').trim()}`,
        );
      });
      this.mounted.add(name);
    }
    return volume.Mountpoint;
  }

  async remove(name: string, usedBy: string[], force = false): Promise<void> {
    const volume = this.volumes.get(name);
    if (!volume) {
      if (force) return;
      throw notFound(`get ${name}: no such volume`);
    }
    if (usedBy.length > 0) throw conflict(`remove ${name}: volume is in use - [${usedBy.join(', ')}]`);
    if (this.mounted.has(name)) {
      await run('umount', [volume.Mountpoint]).catch(() => undefined);
      this.mounted.delete(name);
    }
    await rm(join(this.root, name), { recursive: true, force: true });
    this.volumes.delete(name);
  }
}

/**
 * Container records: one directory per container under `<dataRoot>/containers/<id>/` with its
 * record in `config.v2.json` (written atomically), indexed in memory by id and name.
 */
import { mkdirSync, rmSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../common/atomic-file.js';
import { conflict, notFound } from '../common/errors.js';
import type { ContainerRecord } from './container-record.js';

const ID_PATTERN = /^[0-9a-f]{64}$/;

export class ContainerStore {
  private readonly byId = new Map<string, ContainerRecord>();
  private readonly byName = new Map<string, string>();
  /** The last write of each record under way (see write()). */
  private readonly writes = new Map<string, Promise<void>>();

  private constructor(readonly root: string) {}

  static async open(dataRoot: string): Promise<ContainerStore> {
    const store = new ContainerStore(join(dataRoot, 'containers'));
    await mkdir(store.root, { recursive: true, mode: 0o710 });
    for (const id of await readdir(store.root)) {
      if (!ID_PATTERN.test(id)) continue;
      try {
        const record = JSON.parse(
          await readFile(join(store.root, id, 'config.v2.json'), 'utf8'),
        ) as ContainerRecord;
        store.index(record);
      } catch {
        // A directory without a complete record is a create that crashed: nothing refers to it.
        await rm(join(store.root, id), { recursive: true, force: true });
      }
    }
    return store;
  }

  private index(record: ContainerRecord): void {
    this.byId.set(record.id, record);
    this.byName.set(record.name, record.id);
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  nameTaken(name: string): boolean {
    return this.byName.has(name);
  }

  /** Reserve the name and the directory, then write the first record. */
  async add(record: ContainerRecord): Promise<void> {
    const holder = this.byName.get(record.name);
    if (holder !== undefined) {
      throw conflict(
        `Conflict. The container name "/${record.name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    this.index(record);
    try {
      mkdirSync(this.dir(record.id), { mode: 0o710 });
      // A container removed at its exit (AutoRemove) cannot outlive a power loss: recovery would
      // remove it, so its first record needs no fsync (two, on every `docker run --rm`).
      await this.write(record, record.hostConfig.AutoRemove !== true);
    } catch (err) {
      this.byId.delete(record.id);
      this.byName.delete(record.name);
      throw err;
    }
  }

  /** Write the record durably: its configuration changed (create, rename, update, networks). */
  save(record: ContainerRecord): Promise<void> {
    return this.write(record, true);
  }

  /**
   * Write a change of state only (started, exited, paused): atomic but not fsynced, which is two
   * fsyncs off every start and exit. berthd crashing keeps the rename; after a power loss no
   * container runs, and recovery derives the state from the runtime anyway (an ext4 rename over
   * the previous record flushes the new one with the next journal commit).
   */
  saveState(record: ContainerRecord): Promise<void> {
    return this.write(record, false);
  }

  /**
   * Writes of one record happen in call order, each with the content of its call, so a caller
   * need not wait for one write to finish before the next change (start does not wait for its
   * record before following the exit), and remove() waits for them.
   */
  private write(record: ContainerRecord, durable: boolean): Promise<void> {
    const text = JSON.stringify(record, null, 2) + '\n';
    const path = join(this.dir(record.id), 'config.v2.json');
    const previous = this.writes.get(record.id) ?? Promise.resolve();
    const done = previous
      .catch(() => undefined)
      .then(() => writeFileAtomic(path, text, { mode: 0o600, durable }));
    this.writes.set(record.id, done);
    const forget = (): void => {
      if (this.writes.get(record.id) === done) this.writes.delete(record.id);
    };
    done.then(forget, forget);
    return done;
  }

  async rename(record: ContainerRecord, name: string): Promise<void> {
    const holder = this.byName.get(name);
    if (holder !== undefined && holder !== record.id) {
      throw conflict(
        `Conflict. The container name "/${name}" is already in use by container "${holder}". You have to remove (or rename) that container to be able to reuse that name.`,
      );
    }
    this.byName.delete(record.name);
    record.name = name;
    this.byName.set(name, record.id);
    await this.save(record);
  }

  /**
   * Remove the record: from then on the container's directory is a leftover that open() removes
   * after a crash, and the caller removes it (removeDirectory()) once nothing is mounted in it.
   */
  async remove(record: ContainerRecord): Promise<void> {
    await this.writes.get(record.id)?.catch(() => undefined);
    rmSync(join(this.dir(record.id), 'config.v2.json'), { force: true });
    this.byId.delete(record.id);
    if (this.byName.get(record.name) === record.id) this.byName.delete(record.name);
  }

  /** The directory of a container whose record is gone (remove()). */
  removeDirectory(id: string): Promise<void> {
    return rm(this.dir(id), { recursive: true, force: true });
  }

  /** By full id, name (with or without "/"), or unique id prefix — like Docker. */
  get(reference: string): ContainerRecord {
    const found = this.find(reference);
    if (!found) throw notFound(`No such container: ${reference}`);
    return found;
  }

  find(reference: string): ContainerRecord | undefined {
    const exact = this.byId.get(reference);
    if (exact) return exact;
    const byName = this.byName.get(reference.replace(/^\//, ''));
    if (byName) return this.byId.get(byName);
    if (!/^[0-9a-f]+$/.test(reference)) return undefined;
    const matches = [...this.byId.keys()].filter((id) => id.startsWith(reference));
    if (matches.length > 1)
      throw notFound(`No such container: ${reference} (ambiguous: ${matches.length} containers match)`);
    return matches[0] === undefined ? undefined : this.byId.get(matches[0]);
  }

  list(): ContainerRecord[] {
    return [...this.byId.values()].sort((a, b) => (a.created < b.created ? 1 : -1));
  }
}

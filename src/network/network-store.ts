/**
 * Network records on disk: `<dataRoot>/networks/<id>/network.json`, written atomically; the
 * directory also holds the network's IPAM allocations. Lookup follows Docker: full ID, then
 * exact name, then a unique ID prefix.
 */
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeJsonAtomic } from '../common/atomic-file.js';
import { invalidArgument, notFound } from '../common/errors.js';
import type { NetworkRecord } from './network-record.js';

export class NetworkStore {
  private readonly networks = new Map<string, NetworkRecord>();

  private constructor(readonly root: string) {}

  static async open(dataRoot: string): Promise<NetworkStore> {
    const store = new NetworkStore(join(dataRoot, 'networks'));
    await mkdir(store.root, { recursive: true, mode: 0o700 });
    for (const id of await readdir(store.root)) {
      try {
        const record = JSON.parse(
          await readFile(join(store.root, id, 'network.json'), 'utf8'),
        ) as NetworkRecord;
        if (record.id === id) store.networks.set(id, record);
      } catch {
        // a network whose creation did not finish: its directory holds no record
      }
    }
    return store;
  }

  dir(id: string): string {
    return join(this.root, id);
  }

  list(): NetworkRecord[] {
    return [...this.networks.values()].sort((a, b) => a.created.localeCompare(b.created));
  }

  find(reference: string): NetworkRecord | undefined {
    if (reference === '') return undefined;
    const byId = this.networks.get(reference);
    if (byId) return byId;
    const byName = this.list().find((n) => n.name === reference);
    if (byName) return byName;
    const byPrefix = this.list().filter((n) => n.id.startsWith(reference));
    if (byPrefix.length > 1)
      throw invalidArgument(
        `network ${reference} is ambiguous (${byPrefix.length} matches found based on ID prefix)`,
      );
    return byPrefix[0];
  }

  get(reference: string): NetworkRecord {
    const network = this.find(reference);
    if (!network) throw notFound(`network ${reference} not found`);
    return network;
  }

  nameTaken(name: string): boolean {
    return this.list().some((n) => n.name === name);
  }

  async save(record: NetworkRecord): Promise<void> {
    await mkdir(this.dir(record.id), { recursive: true, mode: 0o700 });
    await writeJsonAtomic(join(this.dir(record.id), 'network.json'), record);
    this.networks.set(record.id, record);
  }

  async remove(id: string): Promise<void> {
    this.networks.delete(id);
    await rm(this.dir(id), { recursive: true, force: true });
  }
}

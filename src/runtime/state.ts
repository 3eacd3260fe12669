/**
 * Per-container runtime state under the runtime root (`--root`, default /run/berth-runtime):
 * `<root>/<id>/state.json` (written atomically), `exec.fifo` while the container waits for
 * `start`, and `exit.json` once the shim has seen it exit.
 *
 * The calls are synchronous on purpose: these are small files on a local filesystem (tmpfs under
 * /run), and the promise API's thread-pool round trips (several per file) cost more than the I/O
 * on a busy host. State under /run does not outlive a reboot, so writes are atomic (a temporary
 * file renamed over the record) without fsync.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ContainerStatus, NamespaceType, Spec, State } from '../oci/runtime-spec.js';
import { conflict, errnoCode, invalidArgument, notFound } from '../common/errors.js';
import { OCI_RUNTIME_SPEC_VERSION } from '../common/version.js';

export interface ContainerRecord {
  id: string;
  bundle: string;
  rootfs: string;
  pid: number;
  /** Start time of the init process (field 22 of /proc/<pid>/stat), to tell it from a reused pid. */
  pidStartTime: string;
  shimPid: number;
  created: string;
  /** The cgroup path of the container, relative to each hierarchy's root. */
  cgroupPath: string;
  /** The namespace types the container has (new or joined), for exec. */
  namespaces: NamespaceType[];
  config: Spec;
  owner: string;
}

export interface ExitRecord {
  pid: number;
  exitCode: number;
  signal: number;
  finishedAt: string;
}

const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.+-]*$/;

export function validateId(id: string | undefined): string {
  if (id === undefined || id === '') throw invalidArgument('a container id is required');
  if (!ID_PATTERN.test(id) || id.length > 1024) {
    throw invalidArgument(`invalid container id ${JSON.stringify(id)}: use letters, digits, _ . + -`);
  }
  return id;
}

/** The start time of a process, or undefined when it does not exist. */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = fields[0];
    if (state === 'Z' || state === 'X') return undefined;
    return fields[19];
  } catch {
    return undefined;
  }
}

export class StateStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return join(this.root, validateId(id));
  }

  /** Reserve the directory for a new container; fails if the id is taken. */
  async reserve(id: string): Promise<string> {
    const dir = this.dir(id);
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      mkdirSync(dir, { mode: 0o711 });
    } catch (err) {
      if (errnoCode(err) === 'EEXIST') throw conflict(`container with id ${id} already exists`);
      throw err;
    }
    return dir;
  }

  /** Whether the id's directory exists (a container, or a reservation whose create was cut short). */
  reserved(id: string): boolean {
    return existsSync(this.dir(id));
  }

  async save(record: ContainerRecord): Promise<void> {
    const path = join(this.dir(record.id), 'state.json');
    const temp = `${path}.${process.pid}.tmp`;
    try {
      writeFileSync(temp, JSON.stringify(record), { mode: 0o600 });
      renameSync(temp, path);
    } catch (err) {
      rmSync(temp, { force: true });
      throw err;
    }
  }

  async load(id: string): Promise<ContainerRecord> {
    try {
      return JSON.parse(readFileSync(join(this.dir(id), 'state.json'), 'utf8')) as ContainerRecord;
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') throw notFound(`container ${id} does not exist`);
      throw err;
    }
  }

  async exitRecord(id: string): Promise<ExitRecord | undefined> {
    try {
      return JSON.parse(readFileSync(join(this.dir(id), 'exit.json'), 'utf8')) as ExitRecord;
    } catch {
      return undefined;
    }
  }

  async ids(): Promise<string[]> {
    let names: string[] = [];
    try {
      names = readdirSync(this.root);
    } catch {
      // no root yet: no containers
    }
    return names.filter((name) => ID_PATTERN.test(name)).sort();
  }

  async remove(id: string): Promise<void> {
    // A shim that is still finishing may add exit.json while the directory goes: retry briefly.
    for (let attempt = 0; ; attempt++) {
      try {
        rmSync(this.dir(id), { recursive: true, force: true });
        return;
      } catch (err) {
        if (errnoCode(err) !== 'ENOTEMPTY' || attempt >= 20) throw err;
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    }
  }
}

/** Whether the container's init is still the process we started. */
export function initAlive(record: ContainerRecord): boolean {
  return processStartTime(record.pid) === record.pidStartTime;
}

export function toOciState(record: ContainerRecord, status: ContainerStatus): State {
  const state: State = { ociVersion: OCI_RUNTIME_SPEC_VERSION, id: record.id, status, bundle: record.bundle };
  if (status !== 'stopped') state.pid = record.pid;
  else state.pid = 0;
  if (record.config.annotations) state.annotations = record.config.annotations;
  return state;
}

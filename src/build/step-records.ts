/**
 * Records of RUN step containers, written before the runtime creates one and removed after it is
 * deleted. The runtime makes a container's cgroup before it writes its state file, so a berthd
 * killed in between leaves a cgroup (and perhaps a process in it) that no runtime state names;
 * these records name it, so the next start of berthd removes exactly what its own steps left and
 * nothing of another daemon's.
 */
import { mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeError, errnoCode } from '../common/errors.js';
import type { CgroupFactory, Runtime } from '../runtime/runtime.js';

export interface StepRecord {
  /** The step container's runtime ID. */
  id: string;
  /** The spec's linux.cgroupsPath. */
  cgroupsPath: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class StepRecords {
  constructor(readonly dir: string) {}

  /**
   * Note a step container about to be created. Written without fsync: a crash of the machine
   * takes the cgroups with it; only a crash of berthd must find the record.
   */
  async add(record: StepRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    await writeFile(join(this.dir, `${record.id}.json`), JSON.stringify(record));
  }

  async remove(id: string): Promise<void> {
    await rm(join(this.dir, `${id}.json`), { force: true });
  }

  async list(): Promise<StepRecord[]> {
    const records: StepRecord[] = [];
    for (const name of await readdir(this.dir).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      try {
        const record = JSON.parse(await readFile(join(this.dir, name), 'utf8')) as Partial<StepRecord>;
        if (typeof record.id === 'string' && typeof record.cgroupsPath === 'string')
          records.push({ id: record.id, cgroupsPath: record.cgroupsPath });
      } catch (err) {
        // A record cut short by the crash names nothing usable.
        if (errnoCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
      }
    }
    return records;
  }
}

/** Kill what is left in the cgroup and remove it, in every hierarchy. */
async function removeCgroup(cgroups: CgroupFactory, record: StepRecord): Promise<void> {
  const cgroup = await cgroups(record.cgroupsPath, record.id, { systemd: false });
  for (let round = 0; round < 100; round++) {
    const pids = await cgroup.pids().catch(() => [] as number[]);
    if (pids.length === 0) break;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    await sleep(round < 10 ? 2 : 20);
  }
  await cgroup.destroy();
}

/**
 * Remove the leftovers of every recorded step: the runtime's container if its state was written,
 * else the cgroup and the reserved state directory alone. Failures are reported, not thrown.
 */
export async function cleanUpSteps(
  records: StepRecords,
  runtime: Runtime,
  cgroups: CgroupFactory,
  warn: (message: string) => void,
): Promise<void> {
  for (const record of await records.list()) {
    try {
      await runtime.delete(record.id, true).catch(() => undefined);
      await removeCgroup(cgroups, record);
      await runtime.store.remove(record.id);
      await records.remove(record.id);
    } catch (err) {
      warn(`build step ${record.id}: ${describeError(err)}`);
    }
  }
}

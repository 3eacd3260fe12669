/**
 * OCI runtime create + start + wait of /bin/true in a busybox bundle: berth's in-process library
 * (as berthd uses it), the berth-runtime command line, runc, and unshare+chroot as the floor.
 * Also the shim's resident memory while it watches a sleeping container.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { defaultSpec } from '../src/oci/defaults.js';
import { Runtime } from '../src/runtime/runtime.js';
import { defaultRuntimeOptions } from '../src/runtime/default-runtime.js';
import { busyboxEntries } from '../fixtures/busybox.js';
import { materialize } from '../fixtures/tree.js';
import { alternate, pairedRatio, summarize, type Contender } from './lib/measure.js';
import type { Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';

const run = promisify(execFile);
const RUNTIME_BIN = fileURLToPath(new URL('../../bin/berth-runtime.js', import.meta.url));

function spawnQuiet(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${file} ${args.join(' ')} exited ${code}`)),
    );
  });
}

async function makeBundle(dir: string, args: string[], cgroupParent: string): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  await mkdir(rootfs, { recursive: true });
  await materialize(await busyboxEntries(), rootfs);
  const spec = defaultSpec({ terminal: false, args });
  spec.linux!.cgroupsPath = `/${cgroupParent}/${dir.split('/').at(-1)}`;
  await writeFile(join(dir, 'config.json'), JSON.stringify(spec));
  return rootfs;
}

async function vmRssKiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1] ?? NaN);
}

async function runtimeStart(options: ScenarioOptions): Promise<ScenarioResult> {
  const cgroupParent = `berth-bench-${process.pid}`;
  const bundle = join(options.workDir, 'true-bundle');
  const rootfs = await makeBundle(bundle, ['/bin/true'], cgroupParent);
  const root = join(options.workDir, 'state');
  const runcRoot = join(options.workDir, 'runc-state');
  const library = new Runtime(defaultRuntimeOptions(root));
  let counter = 0;

  const contenders: Contender[] = [
    {
      name: 'berth-library',
      run: async () => {
        const id = `lib${counter++}`;
        const { shim } = await library.create(id, {
          bundle,
          foreground: true,
          stdio: ['ignore', 'ignore', 'ignore'],
        });
        await library.start(id);
        await shim.exited;
        await library.delete(id, true);
      },
    },
    {
      name: 'berth-runtime-cli',
      run: () =>
        spawnQuiet(process.execPath, [
          RUNTIME_BIN,
          '--root',
          root,
          'run',
          '--bundle',
          bundle,
          `cli${counter++}`,
        ]),
    },
    {
      name: 'runc',
      run: () => spawnQuiet('runc', ['--root', runcRoot, 'run', '--bundle', bundle, `runc${counter++}`]),
    },
    {
      name: 'floor (unshare + chroot)',
      run: () =>
        spawnQuiet('unshare', [
          '--fork',
          '--pid',
          '--mount',
          '--uts',
          '--ipc',
          '--net',
          'chroot',
          rootfs,
          '/bin/true',
        ]),
    },
  ];
  const rounds = options.quick ? 1 : 30;
  const samples = await alternate(
    options.quick ? contenders.slice(0, 2) : contenders,
    rounds,
    options.quick ? 0 : 3,
  );
  const byName = Object.fromEntries(samples.map((s) => [s.name, s]));
  const ratios: Record<string, number> = {};
  const lib = byName['berth-library'];
  const floor = byName['floor (unshare + chroot)'];
  const runc = byName['runc'];
  const cli = byName['berth-runtime-cli'];
  if (lib && floor) ratios['berth-library / floor'] = pairedRatio(lib, floor);
  if (lib && runc) ratios['berth-library / runc'] = pairedRatio(lib, runc);
  if (cli && runc) ratios['berth-runtime-cli / runc'] = pairedRatio(cli, runc);

  // The shim's resident memory while it watches a sleeping container.
  const sleeper = join(options.workDir, 'sleep-bundle');
  await makeBundle(sleeper, ['sleep', '1000'], cgroupParent);
  const { record } = await library.create('sleeper', {
    bundle: sleeper,
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  await library.start('sleeper');
  await new Promise((resolve) => setTimeout(resolve, 200));
  const shimRss = await vmRssKiB(record.shimPid);
  await library.delete('sleeper', true);
  await run('rmdir', [`/sys/fs/cgroup/memory/${cgroupParent}`]).catch(() => undefined);

  const met =
    options.quick || ratios['berth-library / floor'] === undefined
      ? undefined
      : (ratios['berth-library / floor'] ?? Infinity) <= 2 &&
        (ratios['berth-library / runc'] ?? Infinity) <= 1 / 3 &&
        shimRss < 1024;
  return {
    name: 'OCI runtime create + start + wait (/bin/true)',
    goal: 'library within 2x of unshare+chroot and at least 3x faster than runc; shim RSS under 1 MiB',
    met,
    contenders: samples.map(summarize),
    ratios,
    figures: { 'shim VmRSS KiB': shimRss },
  };
}

export const runtimeStartScenario: Scenario = { name: 'runtime-start', run: runtimeStart };

/**
 * OCI runtime create + start + wait of /bin/true in a busybox bundle: berth's in-process library
 * (as berthd uses it), the berth-runtime command line, runc, crun (when it works on this
 * machine's cgroup layout), and unshare+chroot as the floor.
 * Also the shim's resident memory while it watches a sleeping container.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { defaultSpec } from '../src/oci/defaults.js';
import { Runtime } from '../src/runtime/runtime.js';
import { defaultRuntimeOptions } from '../src/runtime/default-runtime.js';
import { busyboxEntries } from '../fixtures/busybox.js';
import { materialize } from '../fixtures/tree.js';
import { alternate, pairedRatio, summarize, type Contender } from './lib/measure.js';
import type { ChartBar, Scenario, ScenarioOptions, ScenarioResult } from './lib/scenario.js';
import { RUNTIME_BIN } from './lib/paths.js';

const run = promisify(execFile);

function spawnQuiet(file: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${file} ${args.join(' ')} exited ${code}`)),
    );
  });
}

async function makeBundle(
  dir: string,
  args: string[],
  cgroupParent: string,
  ociVersion?: string,
): Promise<string> {
  const rootfs = join(dir, 'rootfs');
  await mkdir(rootfs, { recursive: true });
  await materialize(await busyboxEntries(), rootfs);
  const spec = defaultSpec({ terminal: false, args });
  if (ociVersion) spec.ociVersion = ociVersion;
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
  const notes: string[] = [];
  if (!options.quick) {
    // A full run reports the others when the berth-runtime command line is broken (--quick fails).
    const cliProbe = await run(process.execPath, [
      RUNTIME_BIN,
      '--root',
      root,
      'run',
      '--bundle',
      bundle,
      'cliprobe',
    ]).then(
      () => '',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    if (cliProbe !== '') {
      contenders.splice(
        contenders.findIndex((c) => c.name === 'berth-runtime-cli'),
        1,
      );
      notes.push(
        `berth-runtime-cli is not measured: \`berth-runtime run\` failed: ${cliProbe.slice(0, 300)}`,
      );
    }
    // crun refuses some cgroup layouts (this machine's hybrid v1 + v2 one): try it once first.
    const crunRoot = join(options.workDir, 'crun-state');
    // crun 1.8 rejects ociVersion 1.2.0 ("unknown version specified"): the same bundle, 1.0.2.
    const crunBundle = join(options.workDir, 'true-bundle-crun');
    await makeBundle(crunBundle, ['/bin/true'], cgroupParent, '1.0.2');
    const probe = await run('crun', [
      '--root',
      crunRoot,
      'run',
      '--bundle',
      crunBundle,
      `crunprobe${process.pid}`,
    ]).then(
      () => '',
      (err: unknown) => (err instanceof Error ? err.message : String(err)),
    );
    if (probe === '') {
      contenders.push({
        name: 'crun',
        run: () =>
          spawnQuiet('crun', ['--root', crunRoot, 'run', '--bundle', crunBundle, `crun${counter++}`]),
      });
    } else {
      notes.push(
        `crun is not measured: it fails on this machine: ${probe.split('\n').slice(0, 3).join(' ').slice(0, 300)}`,
      );
    }
  }
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
  const crun = byName['crun'];
  if (lib && crun) ratios['berth-library / crun'] = pairedRatio(lib, crun);
  const chart: ChartBar[] = [];
  if (ratios['berth-library / runc'] !== undefined)
    chart.push({
      label: 'runtime: berth-library / runc',
      value: ratios['berth-library / runc'],
      goal: 1 / 3,
      better: 'lower',
    });
  if (ratios['berth-library / floor'] !== undefined)
    chart.push({
      label: 'runtime: berth-library / unshare+chroot',
      value: ratios['berth-library / floor'],
      goal: 2,
      better: 'lower',
    });
  if (ratios['berth-runtime-cli / runc'] !== undefined)
    chart.push({
      label: 'runtime: berth-runtime CLI / runc',
      value: ratios['berth-runtime-cli / runc'],
      better: 'lower',
    });

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
    notes,
    chart,
  };
}

export const runtimeStartScenario: Scenario = { name: 'runtime-start', run: runtimeStart };

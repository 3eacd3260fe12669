/** The runtime wired to berth's own drivers: cgroupfs (v1 or v2) and the seccomp compiler. */
import { statSync } from 'node:fs';
import type { Spec } from '../oci/runtime-spec.js';
import { unavailable } from '../common/errors.js';
import {
  cgroupManager,
  detectCgroupLayout,
  type CgroupLayout,
  type CgroupManager,
} from '../linux/cgroups/index.js';
import { compileSeccomp } from '../linux/seccomp/compile.js';
import type { CgroupFactory, CgroupHandle, RuntimeOptions, SeccompCompiler } from './runtime.js';
import { shimPath } from './shim-process.js';

function handle(manager: CgroupManager): CgroupHandle {
  return {
    path: manager.path,
    create: () => manager.create(),
    apply: (resources) => (resources ? manager.apply(resources) : Promise.resolve()),
    entry: manager.entry,
    freeze: () => manager.freeze(),
    thaw: () => manager.thaw(),
    frozen: async () => (await manager.state()) === 'frozen',
    pids: () => manager.pids(),
    stats: () => manager.stats(),
    oomKillCount: () => manager.oomKillCount(),
    update: (resources) => manager.update(resources),
    destroy: () => manager.destroy(),
  };
}

let layout: Promise<CgroupLayout> | undefined;

/**
 * `--systemd-cgroup` asks for cgroups systemd knows of. berth names them systemd's way
 * (slice:prefix:name, docs/cgroups.md) but cannot hand them to a systemd that is not there: like
 * runc, it refuses instead of quietly falling back to plain cgroupfs paths. `marker` is where
 * systemd says it runs (sd_booted(3)).
 */
export function requireSystemd(marker = '/run/systemd/system'): void {
  let running = false;
  try {
    running = statSync(marker).isDirectory();
  } catch {
    // not there: not booted with systemd
  }
  if (!running)
    throw unavailable(
      `--systemd-cgroup: systemd is not running on this host (${marker} does not exist), so it cannot manage the container's cgroup; leave the flag out to use cgroupfs`,
    );
}

export const cgroupfsFactory: CgroupFactory = async (cgroupsPath, id, options) => {
  if (options.systemd) requireSystemd();
  layout ??= detectCgroupLayout();
  const manager = await cgroupManager(cgroupsPath, id, {
    systemd: options.systemd,
    layout: await layout,
    shimPath: shimPath(),
  });
  return handle(manager);
};

/** Compiled programs are cached by profile text: berthd starts many containers with the same profile. */
const compiled = new Map<string, { program: Uint8Array; flags: number }>();

export const seccompCompiler: SeccompCompiler = (spec: Spec) => {
  const profile = spec.linux?.seccomp;
  if (!profile) return undefined;
  const key = JSON.stringify(profile);
  let result = compiled.get(key);
  if (!result) {
    const { program, flags } = compileSeccomp(profile);
    result = { program, flags };
    if (compiled.size > 32) compiled.clear();
    compiled.set(key, result);
  }
  return result;
};

/** `warmShim`: keep a shim started ahead of need; off for one-shot processes (the CLI). */
export function defaultRuntimeOptions(root: string, systemdCgroup = false, warmShim = true): RuntimeOptions {
  return { root, cgroups: cgroupfsFactory, seccomp: seccompCompiler, systemdCgroup, warmShim };
}

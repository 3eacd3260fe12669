/**
 * The same bundles under runc (Debian's package) and berth-runtime: what the container observes
 * must be the same. Differences are bugs unless docs/runtime.md lists them as deliberate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createSandbox, type Sandbox } from '../helpers/sandbox.js';
import { makeBundle, runtime, type Bundle } from '../helpers/bundle.js';
import { execProgram } from '../helpers/exec.js';

/** What the container reports about itself, one section per topic. */
const OBSERVE = [
  'echo "## status"; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters):" /proc/self/status',
  'echo "## mounts"; while read -r _ _ _ _ point opts _; do echo "$point ${opts%%,*}"; done < /proc/self/mountinfo | sort',
  'echo "## hostname"; hostname',
  'echo "## id"; id',
  'echo "## rlimits"; ulimit -a',
  'echo "## cgroup"; cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>&1',
  'echo "## syscalls"',
  'mount -t tmpfs none /mnt 2>&1; echo "mount=$?"',
  'mknod /tmp/blockdev b 8 0 2>&1; echo "mknod-block=$?"',
  'hostname other 2>&1; echo "sethostname=$?"',
  'nice -n -5 true 2>&1; echo "nice=$?"',
  'mkdir /tmp/newdir 2>&1; echo "mkdir=$?"',
  'touch /tmp/f && chmod 4755 /tmp/f 2>&1; echo "chmod-setuid=$?"',
  'chown 1000 /tmp/f 2>&1; echo "chown=$?"',
  'unshare -m true 2>&1; echo "unshare=$?"',
  // Leave the shared rootfs as it was for the other runtime's run.
  'rmdir /tmp/newdir 2>/dev/null; rm -f /tmp/f /tmp/blockdev',
].join('\n');

/**
 * Deliberate differences (docs/runtime.md): berth makes the tmpfs at /sys/fs/cgroup read-only when
 * the mount asks for `ro`; runc leaves that tmpfs writable and makes only the hierarchies read-only.
 */
function normalize(section: string, text: string): string {
  if (section !== 'mounts') return text;
  return text.replace(/^\/sys\/fs\/cgroup r[ow]$/m, '/sys/fs/cgroup (tmpfs)');
}

async function observe(
  sandbox: Sandbox,
  bundle: Bundle,
  engine: 'runc' | 'berth',
  id: string,
): Promise<Map<string, string>> {
  let stdout: string;
  if (engine === 'runc') {
    const result = await execProgram(
      'runc',
      ['--root', join(sandbox.runRoot, 'runc'), 'run', '--bundle', bundle.dir, id],
      {
        timeoutMs: 30_000,
      },
    );
    assert.equal(result.code, 0, `runc: ${result.stderr}`);
    stdout = result.stdout;
  } else {
    const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, id]);
    assert.equal(result.code, 0, `berth-runtime: ${result.stderr}`);
    stdout = result.stdout;
  }
  const sections = new Map<string, string>();
  for (const part of stdout.split(/^## /m).filter(Boolean)) {
    const newline = part.indexOf('\n');
    sections.set(part.slice(0, newline), part.slice(newline + 1));
  }
  return sections;
}

async function compare(
  t: Parameters<typeof createSandbox>[0],
  edit: (bundle: Bundle, sandbox: Sandbox) => Promise<void> | void,
): Promise<void> {
  const sandbox = await createSandbox(t);
  const bundle = await makeBundle(sandbox, ['sh', '-c', OBSERVE]);
  bundle.spec.root = { path: 'rootfs', readonly: false };
  await mkdir(join(bundle.rootfs, 'mnt'), { recursive: true });
  await edit(bundle, sandbox);
  await bundle.write();
  const fromRunc = await observe(sandbox, bundle, 'runc', 'diff-runc');
  const fromBerth = await observe(sandbox, bundle, 'berth', 'diff-berth');
  assert.deepEqual([...fromBerth.keys()], [...fromRunc.keys()]);
  for (const [section, expected] of fromRunc) {
    assert.equal(
      normalize(section, fromBerth.get(section) ?? ''),
      normalize(section, expected),
      `section "${section}" differs from runc`,
    );
  }
}

test('differential: default bundle', async (t) => {
  await compare(t, () => undefined);
});

test('differential: read-only root', async (t) => {
  await compare(t, (bundle) => {
    bundle.spec.root = { path: 'rootfs', readonly: true };
  });
});

test('differential: user namespace with mappings', async (t) => {
  await compare(t, async (bundle) => {
    for (let dir = bundle.dir; dir !== '/' && dir !== '/tmp'; dir = dirname(dir)) await chmod(dir, 0o755);
    bundle.spec.linux!.namespaces!.push({ type: 'user' });
    bundle.spec.linux!.uidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
    bundle.spec.linux!.gidMappings = [{ containerID: 0, hostID: 300000, size: 65536 }];
    bundle.spec.mounts = bundle.spec.mounts!.filter((m) => m.destination !== '/sys/fs/cgroup');
  });
});

test('differential: extra bind and tmpfs mounts', async (t) => {
  await compare(t, async (bundle, sandbox) => {
    const data = join(sandbox.root, 'shared-data');
    await mkdir(data);
    await writeFile(join(data, 'file'), 'x');
    bundle.spec.mounts!.push(
      { destination: '/data-ro', type: 'bind', source: data, options: ['rbind', 'ro'] },
      { destination: '/data-rw', type: 'bind', source: data, options: ['bind', 'nosuid', 'nodev'] },
      { destination: '/scratch', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'size=2m'] },
    );
  });
});

test('differential: dropped capabilities', async (t) => {
  await compare(t, (bundle) => {
    const caps = ['CAP_CHOWN', 'CAP_KILL', 'CAP_SETUID', 'CAP_SETGID'];
    bundle.spec.process!.capabilities = { bounding: caps, effective: caps, permitted: caps };
  });
});

test('differential: custom seccomp profile with argument filters', async (t) => {
  await compare(t, (bundle) => {
    bundle.spec.linux!.seccomp = {
      defaultAction: 'SCMP_ACT_ALLOW',
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls: [
        { names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 },
        {
          names: ['fchmodat', 'chmod', 'fchmod'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 1,
          args: [{ index: 2, value: 0o4000, valueTwo: 0o4000, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        {
          names: ['chmod', 'fchmod'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 1,
          args: [{ index: 1, value: 0o4000, valueTwo: 0o4000, op: 'SCMP_CMP_MASKED_EQ' }],
        },
        {
          names: ['setpriority'],
          action: 'SCMP_ACT_ERRNO',
          errnoRet: 22,
          args: [{ index: 2, value: 0, op: 'SCMP_CMP_LT' }],
        },
      ],
    };
  });
});

test('differential: memory and pids limits', async (t) => {
  await compare(t, (bundle) => {
    bundle.spec.linux!.resources = {
      ...bundle.spec.linux!.resources,
      memory: { limit: 96 * 1024 * 1024 },
      pids: { limit: 40 },
    };
  });
});

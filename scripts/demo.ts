// The README's demo: run a container from the built-in busybox image with berth-runtime.
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureFixture } from '../fixtures/index.js';
import { busyboxEntries } from '../fixtures/busybox.js';
import { materialize } from '../fixtures/tree.js';
import { defaultSpec } from '../src/oci/defaults.js';

const busybox = await ensureFixture('busybox');
process.stdout.write(`busybox image: ${busybox.ociLayout} (${busybox.manifestDigest})\n`);

// berthd and `berth run` (which pull and unpack images) are not there yet, so the demo unpacks the
// busybox root filesystem into an OCI bundle and runs it with the OCI runtime directly.
const dir = await mkdtemp(join(tmpdir(), 'berth-demo-'));
try {
  const bundle = join(dir, 'bundle');
  await mkdir(join(bundle, 'rootfs'), { recursive: true });
  await materialize(await busyboxEntries(), join(bundle, 'rootfs'));
  const spec = defaultSpec({
    terminal: false,
    args: [
      'sh',
      '-c',
      'echo "hello from a berth container: pid $$, hostname $(hostname), $(id)"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status',
    ],
  });
  await writeFile(join(bundle, 'config.json'), JSON.stringify(spec, null, 2));
  const runtime = fileURLToPath(new URL('../../bin/berth-runtime.js', import.meta.url));
  const args = [runtime, '--root', join(dir, 'state'), 'run', '--bundle', bundle, 'berth-demo'];
  process.stdout.write(`$ berth-runtime run --bundle ${bundle} berth-demo\n`);
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  process.exitCode = result.status ?? 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}

// The README's demo: start berthd on temporary roots, load the built-in busybox image and run a
// container from it with berth (the docker CLI works the same way: DOCKER_HOST=unix://<socket>).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureFixture } from '../fixtures/index.js';

const bin = (name: string): string => fileURLToPath(new URL(`../../bin/${name}.js`, import.meta.url));
const busybox = await ensureFixture('busybox');
const dir = await mkdtemp(join(tmpdir(), 'berth-demo-'));
const socket = join(dir, 'berth.sock');
const daemon = spawn(
  process.execPath,
  [
    bin('berthd'),
    '--data-root',
    join(dir, 'data'),
    '--exec-root',
    join(dir, 'run'),
    '-H',
    `unix://${socket}`,
  ],
  { stdio: 'ignore' },
);
try {
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 50));
  const berth = (args: string[]): number => {
    process.stdout.write(`$ berth ${args.join(' ')}\n`);
    const result = spawnSync(process.execPath, [bin('berth'), ...args], {
      stdio: 'inherit',
      env: { ...process.env, BERTH_HOST: `unix://${socket}` },
    });
    return result.status ?? 1;
  };
  berth(['load', '-i', busybox.dockerArchive]);
  process.exitCode = berth([
    'run',
    '--rm',
    'busybox',
    'sh',
    '-c',
    'echo "hello from a berth container: pid $$, hostname $(hostname), $(id)"; grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status',
  ]);
  berth(['images']);
} finally {
  daemon.kill('SIGTERM');
  await new Promise((resolve) => daemon.once('exit', resolve));
  await rm(dir, { recursive: true, force: true });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireSystemd } from '../../../src/runtime/default-runtime.js';

test('--systemd-cgroup needs a running systemd: its /run/systemd/system directory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'berth-systemd-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const marker = join(dir, 'system');
  assert.throws(
    () => requireSystemd(marker),
    (err: Error & { kind?: string }) =>
      err.kind === 'unavailable' &&
      err.message ===
        `--systemd-cgroup: systemd is not running on this host (${marker} does not exist), so it cannot manage the container's cgroup; leave the flag out to use cgroupfs`,
  );
  await mkdir(marker);
  requireSystemd(marker);
});

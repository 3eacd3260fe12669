/** The daemon's PID file in exec-root: refuses to start while another berthd holds it. */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { conflict, errnoCode } from '../common/errors.js';

async function isBerthd(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if (errnoCode(err) !== 'EPERM') return false;
  }
  // A recycled pid belongs to some other program: only a berthd counts.
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
  return cmdline.includes('berthd');
}

export async function writePidFile(path: string): Promise<void> {
  const existing = Number.parseInt(await readFile(path, 'utf8').catch(() => ''), 10);
  if (
    Number.isSafeInteger(existing) &&
    existing > 0 &&
    existing !== process.pid &&
    (await isBerthd(existing))
  ) {
    throw conflict(
      `pid file found, ensure berthd is not running or delete ${path} (berthd ${existing} holds it)`,
    );
  }
  await writeFile(path, `${process.pid}`, { mode: 0o644 });
}

/** Removes the file if it still names this process. */
export async function removePidFile(path: string): Promise<void> {
  const content = await readFile(path, 'utf8').catch(() => '');
  if (content.trim() === String(process.pid)) await rm(path, { force: true });
}

/**
 * Private /16 subnets for test daemons that run side by side: each test takes one 10.X.0.0/16
 * (X from 100 to 249) with an exclusive marker file holding its process id, skips subnets the
 * host already routes, and frees it after the test. Markers of dead processes are reused.
 */
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { TestContext } from 'node:test';

const MARKERS = '/tmp/berth-test-subnets';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function routedSecondOctets(): Promise<Set<number>> {
  const routes = await readFile('/proc/net/route', 'utf8').catch(() => '');
  const used = new Set<number>();
  for (const line of routes.split('\n').slice(1)) {
    const hex = line.split('\t')[1];
    if (!hex || hex.length !== 8) continue;
    // /proc/net/route prints the destination little-endian.
    const first = parseInt(hex.slice(6, 8), 16);
    const second = parseInt(hex.slice(4, 6), 16);
    if (first === 10) used.add(second);
  }
  return used;
}

/** A 10.X.0.0/16 for this test only. */
export async function testSubnet(t: TestContext): Promise<string> {
  await mkdir(MARKERS, { recursive: true });
  const routed = await routedSecondOctets();
  const start = 100 + Math.floor(Math.random() * 150);
  for (let i = 0; i < 150; i++) {
    const octet = 100 + ((start - 100 + i) % 150);
    if (routed.has(octet)) continue;
    const marker = join(MARKERS, String(octet));
    const owner = Number(await readFile(marker, 'utf8').catch(() => 'NaN'));
    if (Number.isInteger(owner) && !alive(owner)) await rm(marker, { force: true });
    try {
      const handle = await open(marker, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
    } catch {
      continue;
    }
    t.after(() => rm(marker, { force: true }));
    return `10.${octet}.0.0/16`;
  }
  throw new Error('no free 10.X.0.0/16 subnet for the test');
}

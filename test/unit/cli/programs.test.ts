import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const bin = (name: string): string => fileURLToPath(new URL(`../../../../bin/${name}.js`, import.meta.url));

test('each program answers --version from its bundle', () => {
  assert.match(
    execFileSync(process.execPath, [bin('berth'), '--version'], { encoding: 'utf8' }),
    /^berth version \d/,
  );
  assert.match(
    execFileSync(process.execPath, [bin('berthd'), '--version'], { encoding: 'utf8' }),
    /^berthd version \d/,
  );
  assert.match(
    execFileSync(process.execPath, [bin('berth-runtime'), '--version'], { encoding: 'utf8' }),
    /^berth-runtime version \d.*\nspec: 1\.2\.0/,
  );
});

test('an unknown berth command fails like docker: exit 1 and one line, no stack trace', () => {
  const result = spawnSync(process.execPath, [bin('berth'), 'frobnicate'], { encoding: 'utf8' });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /unknown command: berth frobnicate/);
  assert.doesNotMatch(result.stderr, /at .*\.js:\d+/);
});

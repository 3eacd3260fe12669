// Runs the test suites with node's test runner: `unit`, `integration`, or both (default).
// Unit tests need no root; integration tests need root and the packages .ci/run installs.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const suites = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
const wanted = suites.length > 0 ? suites : ['unit', 'integration'];

function testFiles(dir) {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...testFiles(path));
    else if (name.endsWith('.test.js')) files.push(path);
  }
  return files;
}

let status = 0;
for (const suite of wanted) {
  const files = testFiles(join('dist', 'test', suite));
  if (files.length === 0) {
    console.error(`no ${suite} tests found under dist/test/${suite} (run npm run build first)`);
    process.exit(1);
  }
  // Integration files run two at a time (the machines have two cores); each test uses its own
  // sandbox and names, so files do not collide.
  const concurrency = suite === 'unit' ? 4 : 2;
  const result = spawnSync(
    process.execPath,
    ['--test', `--test-concurrency=${concurrency}`, '--enable-source-maps', ...files],
    { stdio: 'inherit' },
  );
  if (result.status !== 0) status = result.status ?? 1;
}
process.exit(status);

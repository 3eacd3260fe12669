// Runs the test suites with node's test runner: `unit`, `integration`, or both (default) in one
// run, so there is one summary. Unit tests need no root; integration tests need root and the
// packages scripts/setup.sh installs.
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

const files = [];
for (const suite of wanted) {
  const found = testFiles(join('dist', 'test', suite));
  if (found.length === 0) {
    console.error(`no ${suite} tests found under dist/test/${suite} (run npm run build first)`);
    process.exit(1);
  }
  files.push(...found);
}
// Two files at a time (the machines have two cores); each test uses its own sandbox and names,
// so files do not collide.
const result = spawnSync(
  process.execPath,
  ['--test', '--test-concurrency=2', '--enable-source-maps', ...files],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);

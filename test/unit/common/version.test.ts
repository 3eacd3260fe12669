import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { BERTH_VERSION } from '../../../src/common/version.js';

test('BERTH_VERSION matches package.json', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  assert.equal(BERTH_VERSION, pkg.version);
});

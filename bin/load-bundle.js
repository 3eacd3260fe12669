/* global require, __dirname, module */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS, for the code cache (bin/package.json) */
'use strict';
// Runs dist/bundle/<name>.cjs, compiled with a V8 code cache kept beside it, so that start-up
// skips parsing the whole bundle (docs/cli.md, "Start-up"). A run that finds no usable cache
// (first run, rebuilt bundle, other Node.js) writes one as it exits, holding the functions it
// compiled; each command (first word) has its own, since commands compile different parts. A run
// that failed may have stopped early (a usage error, no daemon): its cache is marked partial, and
// the next run that succeeds writes it again with everything it compiled.
const fs = require('node:fs');
const path = require('node:path');
const { Script } = require('node:vm');
const { createRequire } = require('node:module');

module.exports = function loadBundle(name) {
  const file = path.join(__dirname, '..', 'dist', 'bundle', `${name}.cjs`);
  const command = process.argv.slice(2).find((arg) => /^[a-z][a-z-]{0,19}$/.test(arg)) ?? 'none';
  const cacheFile = `${file}.${command}.cache`;
  const source = fs.readFileSync(file, 'utf8');
  // V8 checks only the source's length: the key ties the cache to this very file and Node.js.
  const stat = fs.statSync(file);
  const key = Buffer.from(`${stat.size} ${stat.mtimeMs} ${process.version} ${process.arch}\n`);
  let cachedData;
  let partial = false;
  try {
    const data = fs.readFileSync(cacheFile);
    // The key, then one byte: 'p' for a partial cache, 'c' for a complete one.
    if (data.subarray(0, key.length).equals(key)) {
      partial = data[key.length] === 0x70;
      cachedData = data.subarray(key.length + 1);
    }
  } catch {
    // No cache yet.
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
  });
  if (cachedData === undefined || script.cachedDataRejected || partial) {
    process.once('exit', (code) => {
      if (code !== 0 && cachedData !== undefined && !script.cachedDataRejected) return;
      const temp = `${cacheFile}.${process.pid}`;
      try {
        const mark = Buffer.from(code === 0 ? 'c' : 'p');
        fs.writeFileSync(temp, Buffer.concat([key, mark, script.createCachedData()]));
        fs.renameSync(temp, cacheFile);
      } catch {
        // A read-only installation runs without a cache.
        fs.rmSync(temp, { force: true });
      }
    });
  }
  const bundle = { exports: {} };
  script.runInThisContext()(bundle.exports, createRequire(file), bundle, file, path.dirname(file));
};

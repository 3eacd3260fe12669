/* global require, __dirname, module */
/* eslint-disable @typescript-eslint/no-require-imports -- CommonJS, for the code cache (bin/package.json) */
'use strict';
// Runs dist/bundle/<name>.cjs, compiled with a V8 code cache kept beside it, so that start-up
// skips parsing the whole bundle (docs/cli.md, "Start-up"). A run that finds no usable cache
// (first run, rebuilt bundle, other Node.js) writes one as it exits, holding the functions it
// compiled; each command (first word) has its own, since commands compile different parts.
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
  try {
    const data = fs.readFileSync(cacheFile);
    if (data.subarray(0, key.length).equals(key)) cachedData = data.subarray(key.length);
  } catch {
    // No cache yet.
  }
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: file,
    cachedData,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    process.once('exit', () => {
      const temp = `${cacheFile}.${process.pid}`;
      try {
        fs.writeFileSync(temp, Buffer.concat([key, script.createCachedData()]));
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

// Bundles each command-line program into one file so start-up loads a single module.
// Usage: node scripts/bundle.mjs [--outdir <dir>]   (default dist/bundle)
import { build } from 'esbuild';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

const at = process.argv.indexOf('--outdir');
const outdir = at > 0 && process.argv[at + 1] ? process.argv[at + 1] : 'dist/bundle';

const common = {
  outdir,
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
};

await build({
  ...common,
  entryPoints: {
    berthd: 'src/bin/berthd.ts',
    // Layer unpacking runs in worker threads: worker-pool.ts loads ./apply-worker.js beside itself.
    'apply-worker': 'src/archive/apply-worker.ts',
  },
  format: 'esm',
  banner: {
    js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);",
  },
});

// The short-lived programs are CommonJS scripts, not ES modules: bin/load-bundle.js compiles them
// with vm.Script, which takes V8's code cache (Node 20 has none for ES modules). Dynamic imports
// become require() calls, import.meta.url the bundle's own URL.
await build({
  ...common,
  entryPoints: { berth: 'src/bin/berth.ts', 'berth-runtime': 'src/bin/berth-runtime.ts' },
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__berthModuleUrl' },
  banner: { js: "const __berthModuleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// Code caches made for an earlier bundle are worthless (bin/load-bundle.js also checks), and the
// ES module bundles of earlier builds are unused.
for (const name of await readdir(outdir))
  if (/^(berth|berth-runtime)(\.cjs\..+\.cache|\.js|\.js\.map)$/.test(name))
    await rm(join(outdir, name), { force: true });

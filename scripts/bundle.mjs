// Bundles each command-line program into one file so start-up loads a single module.
// Usage: node scripts/bundle.mjs [--outdir <dir>]   (default dist/bundle)
import { build } from 'esbuild';
import { readdir, readFile, rm } from 'node:fs/promises';
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
// become require() calls, import.meta.url the bundle's own URL, made when first asked for (its
// URL machinery costs half a millisecond at every start otherwise).
await build({
  ...common,
  entryPoints: { berth: 'src/bin/berth.ts', 'berth-runtime': 'src/bin/berth-runtime.ts' },
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  supported: { 'dynamic-import': false },
  define: { 'import.meta.url': '__berthModule.url' },
  banner: {
    js: "const __berthModule = { get url() { return require('node:url').pathToFileURL(__filename).href; } };",
  },
});
// One byte outside ASCII (esbuild escapes strings, not regular expression literals) makes V8 hold a
// whole bundle as a two-byte string: slower to read, scan and compile at every start.
for (const name of ['berth.cjs', 'berth-runtime.cjs']) {
  const text = await readFile(join(outdir, name));
  const at = text.findIndex((byte) => byte > 0x7f);
  if (at >= 0) {
    const line = text.subarray(0, at).toString('latin1').split('\n').length;
    throw new Error(`${join(outdir, name)}:${line}: a character outside ASCII; escape it in the source`);
  }
}
// Code caches made for an earlier bundle are worthless (bin/load-bundle.js also checks), and the
// ES module bundles of earlier builds are unused.
for (const name of await readdir(outdir))
  if (/^(berth|berth-runtime)(\.cjs\..+\.cache|\.js|\.js\.map)$/.test(name))
    await rm(join(outdir, name), { force: true });

// Bundles each command-line program into one file so start-up loads a single module.
import { build } from 'esbuild';

await build({
  entryPoints: {
    berth: 'src/bin/berth.ts',
    berthd: 'src/bin/berthd.ts',
    'berth-runtime': 'src/bin/berth-runtime.ts',
    // Layer unpacking runs in worker threads: worker-pool.ts loads ./apply-worker.js beside itself.
    'apply-worker': 'src/archive/apply-worker.ts',
  },
  outdir: 'dist/bundle',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  logLevel: 'warning',
  banner: {
    js: "import { createRequire as __berthRequire } from 'node:module'; const require = __berthRequire(import.meta.url);",
  },
});

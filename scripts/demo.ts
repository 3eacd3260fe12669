// The README's demo: run a container from the built-in busybox image.
import { ensureFixture } from '../fixtures/index.js';

const busybox = await ensureFixture('busybox');
process.stdout.write(`busybox image built: ${busybox.ociLayout} (${busybox.manifestDigest})\n`);
process.stdout.write(
  'berth cannot run it yet: the runtime (berth-runtime, berth-shim) is the next piece of work.\n' +
    'What exists today is listed in the README under "Status".\n',
);

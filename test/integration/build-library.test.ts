/**
 * The builder as a library on a sandboxed data root: busybox from the fixture, real RUN
 * containers, the overlay snapshotter, the cache.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createSandbox } from '../helpers/sandbox.js';
import { ensureFixture } from '../../fixtures/index.js';
import { ImageService } from '../../src/image/image-service.js';
import { openSnapshotter } from '../../src/snapshot/open.js';
import { Runtime } from '../../src/runtime/runtime.js';
import { defaultRuntimeOptions } from '../../src/runtime/default-runtime.js';
import { BuildCache } from '../../src/build/cache.js';
import { Builder, type BuildRequest } from '../../src/build/builder.js';
import { applyDockerignore } from '../../src/build/context.js';
import { mountAll, unmount } from '../../src/snapshot/mount.js';

async function setup(t: TestContext) {
  const sandbox = await createSandbox(t);
  const snapshotter = await openSnapshotter(sandbox.dataRoot, 'overlayfs');
  const images = await ImageService.open({ dataRoot: sandbox.dataRoot, snapshotter });
  const busybox = await ensureFixture('busybox');
  await images.load(createReadStream(busybox.dockerArchive));
  const runtime = new Runtime(defaultRuntimeOptions(join(sandbox.runRoot, 'runtime')));
  const cache = await BuildCache.open(sandbox.dataRoot);
  const builder = new Builder({
    images,
    snapshotter,
    runtime,
    cache,
    tempRoot: join(sandbox.dataRoot, 'build-tmp'),
  });
  const context = join(sandbox.root, 'context');
  await mkdir(context, { recursive: true });
  const build = async (dockerfile: string, extra: Partial<BuildRequest> = {}) => {
    let output = '';
    await applyDockerignore(context);
    const result = await builder.build({
      contextDir: context,
      dockerfile,
      cgroupParent: sandbox.cgroupParent,
      output: (text) => (output += text),
      ...extra,
    });
    return { ...result, output };
  };
  /** Read a file of an image through a read-only view of its snapshot. */
  const readImageFile = async (id: string, path: string): Promise<string | undefined> => {
    const details = await images.inspect(id);
    const top = details.chainIds.at(-1) as string;
    const key = `test-view-${Math.random().toString(16).slice(2)}`;
    const dir = join(sandbox.root, key);
    await mkdir(dir);
    await mountAll(await snapshotter.view(key, top), dir);
    try {
      return await readFile(join(dir, path), 'utf8').catch(() => undefined);
    } finally {
      await unmount(dir);
      await snapshotter.remove(key);
    }
  };
  return { sandbox, images, build, context, readImageFile };
}

test('RUN, COPY, ENV, CMD: image config, history and files; a rebuild is fully cached', async (t) => {
  const { images, build, context, readImageFile } = await setup(t);
  await writeFile(join(context, 'hello.txt'), 'hello from the context\n');
  const dockerfile = [
    'FROM busybox',
    'ENV GREETING=hi',
    'WORKDIR /app',
    'COPY hello.txt ./',
    'RUN echo "$GREETING $(cat hello.txt)" > out.txt && echo running',
    'CMD ["cat", "/app/out.txt"]',
  ].join('\n');
  const first = await build(dockerfile, { tags: ['built:1'] });
  assert.match(first.output, /^Step 1\/6 : FROM busybox\n ---> [0-9a-f]{12}\n/);
  assert.match(first.output, / ---> Running in [0-9a-f]{12}\nrunning\nRemoving intermediate container/);
  assert.match(first.output, /Successfully built [0-9a-f]{12}\nSuccessfully tagged built:1\n$/);
  assert.doesNotMatch(first.output, /Using cache/);
  const details = await images.inspect('built:1');
  assert.equal(details.id, first.id);
  assert.deepEqual(details.runConfig.cmd, ['cat', '/app/out.txt']);
  assert.equal(details.runConfig.workingDir, '/app');
  assert.ok(details.runConfig.env.includes('GREETING=hi'));
  const history = details.imageConfig.history ?? [];
  const mine = history.slice(-5);
  assert.equal(mine[0]?.created_by, '/bin/sh -c #(nop)  ENV GREETING=hi');
  assert.equal(mine[0]?.empty_layer, true);
  assert.match(mine[2]?.created_by ?? '', /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \.\/ $/);
  assert.equal(mine[3]?.created_by, '/bin/sh -c echo "$GREETING $(cat hello.txt)" > out.txt && echo running');
  assert.equal(mine[3]?.empty_layer, undefined);
  assert.equal(await readImageFile(first.id, 'app/out.txt'), 'hi hello from the context\n');

  const second = await build(dockerfile, { tags: ['built:2'] });
  assert.equal(second.id, first.id, 'a fully cached rebuild gives the same image');
  assert.equal(second.output.match(/---> Using cache/g)?.length, 5);
  assert.doesNotMatch(second.output, /Running in/);

  // Touching the file without changing it keeps the cache; changing it rebuilds from the COPY on.
  await writeFile(join(context, 'hello.txt'), 'hello from the context\n');
  const touched = await build(dockerfile);
  assert.equal(touched.id, first.id);
  await writeFile(join(context, 'hello.txt'), 'changed\n');
  const changed = await build(dockerfile);
  assert.notEqual(changed.id, first.id);
  assert.equal(changed.output.match(/---> Using cache/g)?.length, 2, 'ENV and WORKDIR come from the cache');
  assert.match(changed.output, /Running in/);
  assert.equal(await readImageFile(changed.id, 'app/out.txt'), 'hi changed\n');

  const uncached = await build(dockerfile, { noCache: true });
  assert.doesNotMatch(uncached.output, /Using cache/);
});

test('a failing RUN reports its exit code and the build fails', async (t) => {
  const { build } = await setup(t);
  await assert.rejects(build('FROM busybox\nRUN echo before; exit 3\n'), (err: Error & { code?: number }) => {
    assert.equal(err.message, "The command '/bin/sh -c echo before; exit 3' returned a non-zero code: 3");
    assert.equal(err.code, 3);
    return true;
  });
});

test('multi-stage: --target builds only the stages it needs; COPY --from; stages in parallel', async (t) => {
  const { build, readImageFile } = await setup(t);
  const dockerfile = [
    'FROM busybox AS one',
    'RUN echo one > /one.txt',
    'FROM busybox AS two',
    'RUN echo two > /two.txt',
    'FROM busybox AS unused',
    'RUN exit 1',
    'FROM scratch AS final',
    'COPY --from=one /one.txt /',
    'COPY --from=two /two.txt /',
  ].join('\n');
  const result = await build(dockerfile, { target: 'final' });
  assert.doesNotMatch(result.output, /exit 1/);
  assert.match(
    result.output,
    /Step 1\/7 : FROM busybox AS one[\s\S]*Step 3\/7 : FROM busybox AS two[\s\S]*Step 5\/7 : FROM scratch AS final/,
  );
  assert.equal(await readImageFile(result.id, 'one.txt'), 'one\n');
  assert.equal(await readImageFile(result.id, 'two.txt'), 'two\n');
  const onlyTwo = await build(dockerfile, { target: 'two' });
  assert.doesNotMatch(onlyTwo.output, /FROM busybox AS one/);
  await assert.rejects(build(dockerfile, { target: 'nope' }), /failed to reach build target nope/);
});

test('cache mounts persist between builds and stay out of the image; ARG and build args', async (t) => {
  const { build, readImageFile } = await setup(t);
  const dockerfile = [
    'FROM busybox',
    'ARG STAMP=default',
    'RUN --mount=type=cache,target=/cache echo "$STAMP" >> /cache/log && cat /cache/log > /seen',
  ].join('\n');
  const first = await build(dockerfile, { buildArgs: { STAMP: 'a' } });
  assert.equal(await readImageFile(first.id, 'seen'), 'a\n');
  assert.equal(await readImageFile(first.id, 'cache/log'), undefined, 'the cache mount is not in the layer');
  assert.match(first.output, /Step 2\/3 : ARG STAMP=default/);
  const second = await build(dockerfile, { buildArgs: { STAMP: 'b', UNUSED: 'x' } });
  assert.equal(await readImageFile(second.id, 'seen'), 'a\nb\n');
  assert.match(second.output, /\[Warning\] One or more build-args \[UNUSED\] were not consumed/);
});

test('.dockerignore keeps files out of COPY; --chown names come from the image', async (t) => {
  const { build, context, readImageFile, images } = await setup(t);
  await mkdir(join(context, 'src'), { recursive: true });
  await writeFile(join(context, 'src', 'keep.txt'), 'keep\n');
  await writeFile(join(context, 'src', 'drop.log'), 'drop\n');
  await writeFile(join(context, 'secret.env'), 'x\n');
  await writeFile(join(context, '.dockerignore'), '**/*.log\nsecret.env\n');
  const result = await build(
    "FROM busybox\nCOPY --chown=user:user . /ctx/\nRUN ls -ln /ctx/src | awk 'NR>1{print $3, $9}' > /listing && ls /ctx > /top\n",
  );
  assert.equal(await readImageFile(result.id, 'listing'), '1000 keep.txt\n');
  assert.equal(await readImageFile(result.id, 'top'), 'src\n');
  await assert.rejects(
    build('FROM busybox\nCOPY secret.env /\n'),
    /Dockerfile:2:6: COPY failed: file not found in build context or excluded by \.dockerignore/,
  );
  void images;
});

/**
 * What the coverage-guided fuzzer (test/fuzz/) found, kept: every committed corpus input goes
 * through its target once (each finding is in the corpus), and each fixed finding has a case of
 * its own stating the behaviour now expected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { openLayerStream } from '../../../src/archive/layer-format.js';
import { readTar } from '../../../src/archive/tar-reader.js';
import { parseDockerfile } from '../../../src/build/dockerfile/parser.js';
import { processWord } from '../../../src/build/dockerfile/shell-lex.js';
import { BerthError } from '../../../src/common/errors.js';
import { referencedDescriptors } from '../../../src/content/references.js';
import { checkCreateBody } from '../../../src/engine/create-body.js';
import { parseReference } from '../../../src/image/reference.js';
import { parseManifestDocument, refuseForeignLayers } from '../../../src/image/registry/manifest.js';
import { parseImageConfig } from '../../../src/image/store/blobs.js';
import { execute } from '../../fuzz/engine.js';
import { padded, paxRecord, tarHeader } from '../../fuzz/tar-mutate.js';
import { loadTarget, TARGET_NAMES } from '../../fuzz/targets/index.js';

/** Relative to the repository root, where the test runner runs. */
const CORPUS = 'test/fuzz/corpus';

const refused = (run: () => unknown, message: RegExp): void =>
  assert.throws(run, (err: unknown) => err instanceof BerthError && message.test(err.message));

test('every committed corpus input keeps its target contract', async () => {
  let inputs = 0;
  for (const name of TARGET_NAMES) {
    const target = await loadTarget(name);
    const dir = join(CORPUS, name);
    for (const file of readdirSync(dir).sort()) {
      const finding = await execute(target, readFileSync(join(dir, file)));
      assert.equal(finding, undefined, `${name}/${file}: ${finding?.message ?? ''}\n${finding?.stack ?? ''}`);
      inputs++;
    }
  }
  assert.ok(inputs >= TARGET_NAMES.length * 3, `only ${inputs} corpus inputs`);
});

test('reference: the name limit is on the normalised name, so what parses can be written back', () => {
  refused(() => parseReference('a'.repeat(250)), /longer than 255 characters/);
  // docker.io/library/ + 237 characters is 255.
  assert.equal(parseReference('b'.repeat(237)).path, `library/${'b'.repeat(237)}`);
  refused(() => parseReference('b'.repeat(238)), /longer than 255 characters/);
  assert.equal(parseReference(`127.0.0.1:5000/${'c'.repeat(240)}`).domain, '127.0.0.1:5000');
});

// Bounded wait: with the old directive pattern this input took hours (quadratic backtracking).
test(
  'Dockerfile directives: a directive with half a million spaces is read at once',
  { timeout: 120_000 },
  () => {
    const text = `# syntax=docker${' '.repeat(500_000)}/dockerfile:1  \nFROM busybox\n`;
    const parsed = parseDockerfile(text);
    assert.equal(parsed.directives.syntax, `docker${' '.repeat(500_000)}/dockerfile:1`);
    assert.equal(parsed.instructions[0]?.keyword, 'FROM');
  },
);

test('Dockerfile variables: deep ${a:-${b:-...}} nesting is refused before it overflows the stack', () => {
  const nested = (depth: number): string => `${'${A:-'.repeat(depth)}x${'}'.repeat(depth)}`;
  assert.equal(
    processWord(nested(100), () => undefined),
    'x',
  );
  refused(() => processWord(nested(101), () => undefined), /nested more than 100 deep/);
  // Ten thousand levels overflowed the call stack (a RangeError, a 500) before the bound.
  refused(() => processWord(nested(10_000), () => undefined), /nested more than 100 deep/);
});

test('create bodies: nested fields of the wrong type are a 400 naming the field', () => {
  const body = (hostConfig: unknown): unknown => ({ Image: 'b', Cmd: ['x'], HostConfig: hostConfig });
  refused(
    () => checkCreateBody(body({ LogConfig: { Config: { 'max-size': 5 } } })),
    /cannot unmarshal object into Go struct field LogConfig\.HostConfig\.LogConfig\.Config of type map\[string\]string/,
  );
  refused(
    () => checkCreateBody(body({ PortBindings: { '8/tcp': { a: [] } } })),
    /HostConfig\.PortBindings of type \[\]PortBinding/,
  );
  refused(
    () => checkCreateBody(body({ PortBindings: { '8/tcp': [{ HostPort: 2 }] } })),
    /Go struct field PortBinding\.HostConfig\.PortBindings\.HostPort of type string/,
  );
  refused(
    () => checkCreateBody(body({ Mounts: [{ Type: 'bind', Source: '/a', Target: {} }] })),
    /Go struct field Mount\.HostConfig\.Mounts\.Target of type string/,
  );
  refused(
    () => checkCreateBody(body({ Mounts: [{ Type: 'bind', Source: 7 }] })),
    /Mounts\.Source of type string/,
  );
  refused(() => checkCreateBody(body({ ConsoleSize: 0 })), /HostConfig\.ConsoleSize of type \[\]uint/);
  refused(
    () => checkCreateBody(body({ Ulimits: [{ Name: 'nofile', Soft: '1' }] })),
    /Ulimit\.HostConfig\.Ulimits\.Soft/,
  );
  refused(
    () => checkCreateBody({ Image: 'b', Healthcheck: { Test: 'true' } }),
    /HealthConfig\.Healthcheck\.Test of type \[\]string/,
  );
});

test('create bodies: a null element of a struct list is the zero struct, as Go decodes it', () => {
  const checked = checkCreateBody({
    Image: 'b',
    HostConfig: { PortBindings: { '3/udp': [null] }, Mounts: [null], Ulimits: null },
  });
  assert.deepEqual(checked.HostConfig?.PortBindings, { '3/udp': [{}] });
  assert.deepEqual(checked.HostConfig?.Mounts, [{}]);
});

test('create bodies: a null string, number or boolean inside a nested struct is its zero value', () => {
  const checked = checkCreateBody({
    Image: 'b',
    User: null,
    HostConfig: {
      NetworkMode: null,
      Mounts: [{ Type: 'bind', Source: '/a', Target: null, ReadOnly: null }],
      Ulimits: [{ Name: 'nofile', Soft: null, Hard: 1 }],
    },
  });
  // A null Target crashed the mount parser with a TypeError.
  assert.deepEqual(checked.HostConfig?.Mounts, [{ Type: 'bind', Source: '/a', Target: '', ReadOnly: false }]);
  assert.deepEqual(checked.HostConfig?.Ulimits, [{ Name: 'nofile', Soft: 0, Hard: 1 }]);
  // The body's and HostConfig's own fields keep null: the engine reads it as absent.
  assert.equal(checked.User, null);
  assert.equal(checked.HostConfig?.NetworkMode, null);
});

test('GC: a manifest that starts with whitespace still keeps the blobs it refers to', () => {
  const digest = `sha256:${'c'.repeat(64)}`;
  const index = JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: 1 }],
  });
  for (const text of [index, ` ${index}`, `\n\t\r\n${index}\n`])
    assert.deepEqual(
      referencedDescriptors(Buffer.from(text)).map((d) => d.digest),
      [digest],
      JSON.stringify(text.slice(0, 5)),
    );
  assert.deepEqual(referencedDescriptors(Buffer.from('   ')), []);
  assert.deepEqual(referencedDescriptors(Buffer.from([0x1f, 0x8b, 0x08])), []);
});

test('manifests: "urls": null is no URLs; urls of another type are refused', () => {
  const manifest = (urls: unknown): Buffer =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          size: 2,
          digest: `sha256:${'a'.repeat(64)}`,
        },
        layers: [
          {
            mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
            size: 1,
            digest: `sha256:${'b'.repeat(64)}`,
            urls,
          },
        ],
      }),
    );
  const parsed = parseManifestDocument(manifest(null), undefined, 'manifest x');
  assert.equal(parsed.kind, 'manifest');
  // It was a TypeError (a 500 for the pull).
  if (parsed.kind === 'manifest') refuseForeignLayers(parsed.manifest, 'image x');
  refused(
    () => parseManifestDocument(manifest('https://x'), undefined, 'manifest x'),
    /urls that are not a list of strings/,
  );
  refused(
    () => parseManifestDocument(manifest([1]), undefined, 'manifest x'),
    /urls that are not a list of strings/,
  );
});

test('image configs: run settings of the wrong type are refused when the config is read', () => {
  const config = (run: unknown): Buffer =>
    Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: run,
        rootfs: { type: 'layers', diff_ids: [] },
      }),
    );
  for (const run of [{ Env: ['', {}] }, { Env: { '': null } }, { Cmd: {} }, { Entrypoint: { '': [''] } }])
    refused(
      () => parseImageConfig(config(run), 'image config x'),
      /image config x has a config\.\w+ of the wrong type/,
    );
  // Nulls are Go's zero values; a config without run settings is fine.
  assert.deepEqual(parseImageConfig(config({ Env: null, Cmd: ['sh'], Labels: null }), 'c').config?.Cmd, [
    'sh',
  ]);
  assert.equal(parseImageConfig(config(null), 'c').config, null);
});

test('tar: pax records piling up across consecutive headers are refused, not held', async () => {
  // A global header and two per-entry ones of 400 KiB each: each alone is well within the 1 MiB a
  // pax header may have, together they are not.
  const parts: Buffer[] = [0, 1, 2].map((i) => {
    const record = paxRecord(`SCHILY.xattr.user.k${i}`, 'a'.repeat(400 * 1024));
    return Buffer.concat([tarHeader(`PaxHeaders/${i}`, i === 0 ? 'g' : 'x', record.length), padded(record)]);
  });
  parts.push(tarHeader('file', '0', 0), Buffer.alloc(1024));
  const layer = await openLayerStream(
    (async function* () {
      yield gzipSync(Buffer.concat(parts));
    })(),
  );
  await assert.rejects(
    async () => {
      for await (const entry of readTar(layer.source)) void entry;
    },
    (err: unknown) => err instanceof BerthError && /pax headers of more than 1048576 bytes/.test(err.message),
  );
  await layer.source.close();
});

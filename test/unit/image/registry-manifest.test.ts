import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { parseManifestDocument, refuseForeignLayers } from '../../../src/image/registry/manifest.js';
import { MEDIA_TYPE, type ImageManifest } from '../../../src/oci/image-spec.js';

const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const manifest = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  schemaVersion: 2,
  config: { mediaType: MEDIA_TYPE.ociConfig, digest: digest('a'), size: 10 },
  layers: [{ mediaType: MEDIA_TYPE.ociLayerGzip, digest: digest('b'), size: 20 }],
  ...extra,
});
const invalid =
  (fragment: string) =>
  (err: unknown): boolean =>
    err instanceof BerthError && err.kind === 'invalid-argument' && err.message.includes(fragment);

test('manifests and indexes are told apart by mediaType, Content-Type or shape', () => {
  assert.equal(parseManifestDocument(json(manifest()), undefined, 'm').mediaType, MEDIA_TYPE.ociManifest);
  assert.equal(
    parseManifestDocument(json(manifest()), `${MEDIA_TYPE.dockerManifest}; charset=utf-8`, 'm').mediaType,
    MEDIA_TYPE.dockerManifest,
  );
  const index = parseManifestDocument(json({ schemaVersion: 2, manifests: [] }), 'application/json', 'i');
  assert.equal(index.kind, 'index');
  assert.equal(index.mediaType, MEDIA_TYPE.ociIndex);
  const list = parseManifestDocument(
    json({ schemaVersion: 2, mediaType: MEDIA_TYPE.dockerManifestList, manifests: [] }),
    undefined,
    'l',
  );
  assert.equal(list.kind, 'index');
});

test('schema 1, bad JSON, bad descriptors and unknown types are refused', () => {
  assert.throws(
    () => parseManifestDocument(json({ schemaVersion: 1 }), undefined, 'old'),
    invalid('old is a Docker image manifest schema 1'),
  );
  assert.throws(
    () =>
      parseManifestDocument(
        json(manifest()),
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
        'old',
      ),
    invalid('schema 1'),
  );
  assert.throws(() => parseManifestDocument(Buffer.from('{'), undefined, 'm'), invalid('not valid JSON'));
  assert.throws(
    () => parseManifestDocument(json({ schemaVersion: 3 }), undefined, 'm'),
    invalid('schemaVersion 3'),
  );
  assert.throws(
    () =>
      parseManifestDocument(
        json(manifest({ layers: [{ mediaType: 'x', digest: 'sha256:12', size: 1 }] })),
        undefined,
        'm',
      ),
    invalid('m layers[0] digest'),
  );
  assert.throws(
    () =>
      parseManifestDocument(
        json(manifest({ config: { mediaType: 'x', digest: digest('c'), size: -1 } })),
        undefined,
        'm',
      ),
    invalid('m config has an invalid size'),
  );
  assert.throws(
    () =>
      parseManifestDocument(json(manifest({ mediaType: 'application/vnd.unknown+json' })), undefined, 'm'),
    invalid('unsupported media type'),
  );
});

test('foreign and non-distributable layers are refused, naming the layer', () => {
  const withLayer = (layer: Record<string, unknown>): ImageManifest =>
    manifest({
      layers: [{ mediaType: MEDIA_TYPE.ociLayerGzip, digest: digest('b'), size: 1 }, layer],
    }) as unknown as ImageManifest;
  refuseForeignLayers(manifest() as unknown as ImageManifest, 'image x');
  for (const layer of [
    { mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: digest('d'), size: 1 },
    {
      mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
      digest: digest('d'),
      size: 1,
    },
    { mediaType: MEDIA_TYPE.ociLayerGzip, digest: digest('d'), size: 1, urls: ['https://example.invalid/x'] },
  ]) {
    assert.throws(
      () => refuseForeignLayers(withLayer(layer), 'image x'),
      invalid(`image x has a foreign (non-distributable) layer ${digest('d')}`),
    );
  }
});

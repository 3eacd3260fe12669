/**
 * Manifests and indexes from a registry: parseManifestDocument (with and without a Content-Type),
 * platform selection on indexes, the foreign-layer check; and the garbage collector's view of the
 * same bytes (referencedDescriptors), which must never throw and must see every blob a document
 * berth accepted refers to (else GC would delete a pulled image's layers).
 */
import { referencedDescriptors } from '../../../src/content/references.js';
import { parseManifestDocument, refuseForeignLayers } from '../../../src/image/registry/manifest.js';
import { hostPlatform, parsePlatform, selectManifest } from '../../../src/image/registry/platform.js';
import { MEDIA_TYPE, type Descriptor } from '../../../src/oci/image-spec.js';
import { mutateJson } from '../json-mutate.js';
import { invariant, type FuzzTarget } from '../target.js';

const KEYS = [
  'schemaVersion',
  'mediaType',
  'config',
  'layers',
  'manifests',
  'subject',
  'digest',
  'size',
  'urls',
  'annotations',
  'platform',
  'os',
  'architecture',
  'variant',
  'os.features',
  'artifactType',
  ...Object.values(MEDIA_TYPE),
  'application/vnd.docker.distribution.manifest.v1+json',
  'application/vnd.oci.image.layer.nondistributable.v1.tar',
  'linux',
  'amd64',
  'arm',
  'v7',
];

function checkGcSees(data: Buffer, wanted: Descriptor[]): void {
  const seen = new Set(referencedDescriptors(data).map((d) => d.digest));
  for (const descriptor of wanted)
    invariant(
      seen.has(descriptor.digest),
      () => `GC does not see ${descriptor.digest}, which the accepted document refers to`,
    );
}

export const target: FuzzTarget = {
  name: 'manifest',
  description: 'registry manifests and indexes: parse, select a platform, GC references',
  maxLength: 64 * 1024,
  dictionary: [
    ...KEYS.map((key) => `"${key}"`),
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    ' ',
    '\n',
    'sha256:',
    'a'.repeat(64),
  ],
  mutate: (input, rng) => mutateJson(input, rng, KEYS),
  run(input) {
    // GC reads every blob in the store: whatever the bytes, it must not throw.
    referencedDescriptors(input);
    for (const contentType of [undefined, MEDIA_TYPE.dockerManifestList]) {
      const document = parseManifestDocument(input, contentType, 'manifest');
      if (document.kind === 'index') {
        checkGcSees(input, document.index.manifests);
        for (const wanted of [hostPlatform(), parsePlatform('linux/arm/v7')]) {
          try {
            selectManifest(document.index.manifests, wanted);
          } catch (err) {
            if (!(err instanceof Error && err.name === 'BerthError')) throw err;
          }
        }
      } else {
        checkGcSees(input, [document.manifest.config, ...document.manifest.layers]);
        refuseForeignLayers(document.manifest, 'image');
      }
    }
  },
};

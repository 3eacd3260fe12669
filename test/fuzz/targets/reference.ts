/**
 * Image references (`docker pull <ref>`, `FROM <ref>`, `tag`): parseReference either rejects with
 * a BerthError or gives a reference whose fully qualified and familiar forms parse back to it.
 *
 * Two exceptions, shared with Docker (distribution/reference familiarizeName): a Docker Hub path
 * whose first component looks like a registry host (`docker.io/u.o/x`) has the familiar form
 * `u.o/x`, which names the registry `u.o`; and `docker.io/<64 hex digits>` has a familiar form
 * that reads as an image ID. Hub names can be neither, so both stay as Docker has them.
 */
import {
  DEFAULT_DOMAIN,
  familiarReference,
  formatReference,
  parseReference,
  type ImageReference,
} from '../../../src/image/reference.js';
import { canonicalJson, invariant, type FuzzTarget } from '../target.js';

function familiarIsAmbiguous(ref: ImageReference): boolean {
  const first = ref.path.split('/')[0] ?? '';
  return (
    ref.domain === DEFAULT_DOMAIN &&
    (/[.:]/.test(first) || first === 'localhost' || /^library\/[a-f0-9]{64}$/.test(ref.path))
  );
}

export const target: FuzzTarget = {
  name: 'reference',
  description: 'image references: parse, then format and familiar form parse back the same',
  maxLength: 1024,
  dictionary: [
    ':',
    '@',
    '/',
    '.',
    '-',
    '_',
    '__',
    'sha256:',
    'sha512:',
    'a'.repeat(64),
    'docker.io/',
    'index.docker.io/',
    'library/',
    'localhost',
    'localhost:5000/',
    '127.0.0.1:5000/',
    '[::1]:5000/',
    ':latest',
    'Upper',
  ],
  run(input) {
    const text = input.toString('utf8');
    for (const defaultTag of [true, false]) {
      const ref = parseReference(text, { defaultTag });
      const forms = [formatReference(ref), ...(familiarIsAmbiguous(ref) ? [] : [familiarReference(ref)])];
      for (const form of forms) {
        let again: unknown;
        try {
          again = parseReference(form, { defaultTag });
        } catch (err) {
          invariant(
            false,
            () =>
              `${JSON.stringify(text)} parsed, but its form ${JSON.stringify(form)} does not: ${String(err)}`,
          );
        }
        invariant(
          canonicalJson(again) === canonicalJson(ref),
          () => `${JSON.stringify(form)} parses to ${canonicalJson(again)}, not ${canonicalJson(ref)}`,
        );
      }
    }
  },
};

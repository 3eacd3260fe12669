/**
 * Image configs from a registry or an archive: parseImageConfig (what the image store accepts),
 * then what berth does with an accepted config: `inspect`'s run config, `history`, and merging it
 * into a container's Config at create (and the command it gives). Rejections are BerthErrors.
 */
import { mergeImageConfig, processArgs } from '../../../src/engine/container-config.js';
import { parseImageConfig } from '../../../src/image/store/blobs.js';
import { historyOf, runConfigOf } from '../../../src/image/store/image-config.js';
import { mutateJson } from '../json-mutate.js';
import type { FuzzTarget } from '../target.js';

const KEYS = [
  'architecture',
  'os',
  'variant',
  'created',
  'author',
  'config',
  'rootfs',
  'type',
  'layers',
  'diff_ids',
  'history',
  'created_by',
  'empty_layer',
  'comment',
  'Entrypoint',
  'Cmd',
  'Env',
  'User',
  'WorkingDir',
  'ExposedPorts',
  'Volumes',
  'Labels',
  'Healthcheck',
  'Test',
  'Interval',
  'Retries',
  'StopSignal',
  'Shell',
  'OnBuild',
  'ArgsEscaped',
];

export const target: FuzzTarget = {
  name: 'image-config',
  description: 'image configs: parseImageConfig, run config, history, merge into a container',
  maxLength: 64 * 1024,
  dictionary: [
    ...KEYS.map((key) => `"${key}"`),
    '{',
    '}',
    '[',
    ']',
    ':',
    ',',
    'null',
    'sha256:',
    'a'.repeat(64),
  ],
  mutate: (input, rng) => mutateJson(input, rng, KEYS),
  run(input) {
    const config = parseImageConfig(input, 'image config');
    runConfigOf(config);
    historyOf(`sha256:${'f'.repeat(64)}`, config, [100, 200], ['a:b']);
    const merged = mergeImageConfig({ Image: 'fuzz', Env: ['X=1'], Labels: { a: 'b' } }, config.config);
    processArgs(merged);
  },
};

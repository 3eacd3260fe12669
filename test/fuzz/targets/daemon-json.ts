/**
 * daemon.json (berthd's configuration file): parseConfigFile documents a plain Error with the line
 * and column for text that is not a JSON object; every object then goes through buildConfig,
 * which must reject with a BerthError naming the key or give a configuration.
 */
import { buildConfig, DIRECTIVES, parseConfigFile } from '../../../src/daemon/config.js';
import { mutateJson } from '../json-mutate.js';
import { isBerthError, type FuzzTarget } from '../target.js';

/** parseConfigFile's own rejections: "invalid JSON at line L, column C: ..." and "expected a JSON object, got ...". */
class ConfigTextError extends Error {}

const KEYS = DIRECTIVES.map((directive) => directive.key);

export const target: FuzzTarget = {
  name: 'daemon-json',
  description: 'daemon.json: parseConfigFile (JSON errors with a position) and buildConfig',
  maxLength: 64 * 1024,
  dictionary: [
    ...KEYS,
    '{',
    '}',
    '[',
    ']',
    '"',
    ':',
    ',',
    '\\u0000',
    '\\',
    'true',
    'null',
    '"unix:///run/b.sock"',
    '"tcp://127.0.0.1:2375"',
    '"10.0.0.0/8"',
    '"nofile=1024:2048"',
  ],
  mutate: (input, rng) => mutateJson(input, rng, KEYS),
  run(input) {
    let values: Record<string, unknown>;
    try {
      values = parseConfigFile(input.toString('utf8'));
    } catch (err) {
      // Only the two documented messages count as rejections; a stack overflow or TypeError does not.
      if (
        err instanceof Error &&
        err.constructor === Error &&
        /^(invalid JSON at line \d+, column \d+: |expected a JSON object, got )/.test(err.message)
      )
        throw new ConfigTextError(err.message);
      throw err;
    }
    return buildConfig(new Map(), { path: 'daemon.json', values });
  },
  isExpected: (err) => err instanceof ConfigTextError || isBerthError(err),
};

/**
 * Hostile input, fuzzed: thousands of mutations of valid inputs (a seeded PRNG, so every failure
 * is reproducible from the seed and iteration printed with it) fed to the parsers that take
 * user input. Each input must end in a result or a BerthError (parseConfigFile documents a plain
 * Error for malformed JSON); a TypeError, RangeError or anything else is a crash. Each parser gets
 * a bounded number of iterations and a time budget, so the file stays well under 20 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BerthError } from '../../../src/common/errors.js';
import { parseReference } from '../../../src/image/reference.js';
import { buildConfig, parseConfigFile } from '../../../src/daemon/config.js';
import { parseDockerfile } from '../../../src/build/dockerfile/parser.js';
import { parseBind } from '../../../src/engine/binds.js';
import { prng } from '../../helpers/prng.js';

const SEED = Number(process.env.BERTH_FUZZ_SEED ?? 0x5eed);
const ITERATIONS = 4000;
const BUDGET_MS = 3000;

const INTERESTING = [
  ':',
  '@',
  '/',
  '//',
  '..',
  '../',
  '\0',
  '\n',
  '\\',
  '"',
  '{',
  '}',
  '[',
  ']',
  'sha256:',
  'a'.repeat(300),
  '\u{1F600}',
  '\uFEFF',
  '-',
  '$',
  '${',
  '<<EOF',
  ' ',
  '\t',
  '0',
  '-1',
  '1e309',
  'null',
  '__proto__',
];

/** One random mutation of `input`: flip, insert, delete, duplicate or splice a token. */
function mutate(input: string, random: () => number): string {
  const at = Math.floor(random() * (input.length + 1));
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  switch (Math.floor(random() * 6)) {
    case 0:
      return input.slice(0, at) + String.fromCharCode(Math.floor(random() * 128)) + input.slice(at + 1);
    case 1:
      return input.slice(0, at) + pick(INTERESTING) + input.slice(at);
    case 2:
      return input.slice(0, at) + input.slice(at + 1 + Math.floor(random() * 8));
    case 3:
      return (
        input.slice(0, at) + input.slice(at, at + 16).repeat(2 + Math.floor(random() * 3)) + input.slice(at)
      );
    case 4:
      return input.slice(0, at) + String.fromCharCode(Math.floor(random() * 0xffff)) + input.slice(at);
    default:
      return input.slice(at) + input.slice(0, at);
  }
}

interface Crash {
  input: string;
  error: unknown;
}

/** Feeds mutations of the corpus to `parse`; returns the crashes (not the BerthErrors). */
function fuzz(
  name: string,
  corpus: string[],
  parse: (input: string) => unknown,
  allowed: (err: unknown) => boolean = (err) => err instanceof BerthError,
): { runs: number; crashes: Crash[] } {
  const random = prng(SEED ^ name.length);
  const crashes: Crash[] = [];
  const started = Date.now();
  let runs = 0;
  for (; runs < ITERATIONS && Date.now() - started < BUDGET_MS; runs++) {
    let input = corpus[runs % corpus.length] ?? '';
    const rounds = 1 + Math.floor(random() * 4);
    for (let i = 0; i < rounds; i++) input = mutate(input, random);
    try {
      parse(input);
    } catch (err) {
      if (!allowed(err)) crashes.push({ input, error: err });
    }
  }
  return { runs, crashes };
}

function assertNoCrash(result: { runs: number; crashes: Crash[] }): void {
  assert.ok(result.runs >= 100, `only ${result.runs} inputs in the time budget`);
  const shown = result.crashes
    .slice(0, 5)
    .map(
      ({ input, error }) =>
        `${JSON.stringify(input)}: ${error instanceof Error ? error.stack : String(error)}`,
    );
  assert.equal(result.crashes.length, 0, `seed ${SEED}:\n${shown.join('\n')}`);
}

test('image references: only BerthErrors', () => {
  assertNoCrash(
    fuzz(
      'reference',
      [
        'busybox',
        'docker.io/library/busybox:latest',
        '127.0.0.1:5000/a/b/c:v1',
        `busybox@sha256:${'a'.repeat(64)}`,
        'localhost/x:tag@sha256:' + 'b'.repeat(64),
        '[::1]:5000/img',
      ],
      (input) => parseReference(input),
    ),
  );
});

test('daemon.json: malformed JSON is an Error with a message, every other problem a BerthError', () => {
  const corpus = [
    '{"debug": true, "log-level": "info"}',
    '{"default-ulimits": {"nofile": {"Name": "nofile", "Hard": 64000, "Soft": 64000}}}',
    '{"insecure-registries": ["127.0.0.1:5000"], "registry-mirrors": ["http://127.0.0.1:1"]}',
    '{"default-address-pools": [{"base": "10.10.0.0/16", "size": 24}], "bip": "10.9.0.1/24"}',
    '{"runtimes": {"runc": {"path": "/usr/bin/runc", "runtimeArgs": ["--debug"]}}, "data-root": "/x"}',
    '{"hosts": ["unix:///run/b.sock"], "tlsverify": true, "max-concurrent-downloads": 3}',
  ];
  const malformed = (err: unknown): boolean =>
    err instanceof BerthError ||
    (err instanceof Error &&
      !(err instanceof TypeError) &&
      !(err instanceof RangeError) &&
      err.message !== '');
  assertNoCrash(fuzz('daemon-json-text', corpus, (input) => parseConfigFile(input), malformed));
  // Whatever parses as an object goes through the configuration builder: BerthErrors only.
  assertNoCrash(
    fuzz('daemon-json', corpus, (input) => {
      let values: Record<string, unknown>;
      try {
        values = parseConfigFile(input);
      } catch {
        return undefined;
      }
      return buildConfig(new Map(), { path: 'daemon.json', values });
    }),
  );
});

test('Dockerfiles: only BerthErrors', () => {
  assertNoCrash(
    fuzz(
      'dockerfile',
      [
        'FROM busybox\nRUN echo hi\nCOPY a b\nCMD ["sh"]\n',
        '# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox AS build\nRUN <<EOF\necho a\nEOF\n',
        'ARG V=1\nFROM busybox:${V}\nENV A=b C="d e"\nLABEL x=y\nEXPOSE 80/tcp\nHEALTHCHECK CMD true\n',
        'FROM scratch\nADD --chown=1:1 x /\nONBUILD RUN true\nSHELL ["/bin/sh","-c"]\nUSER 1000:1000\n',
        'FROM busybox\nRUN --mount=type=cache,target=/c \\\n  echo a \\\n  b\nWORKDIR /w\nVOLUME ["/v"]\n',
      ],
      (input) => parseDockerfile(input),
    ),
  );
});

test('-v bind and volume specifications: only BerthErrors', () => {
  assertNoCrash(
    fuzz(
      'binds',
      ['/host:/ctr', '/host:/ctr:ro', 'vol:/data:rw,nocopy', '/data', '/a:/b:rslave,z', 'name:/x:cached'],
      (input) => parseBind(input),
    ),
  );
});

test('Dockerfile inputs the fuzzer found crashing the parser', () => {
  // A line that is only the escape character, at the end or followed by an indented line.
  for (const input of ['\\', 'FROM a\n\\', ' \\\n  b\n']) {
    try {
      parseDockerfile(input);
    } catch (err) {
      assert.ok(err instanceof BerthError, `${JSON.stringify(input)}: ${String(err)}`);
    }
  }
});

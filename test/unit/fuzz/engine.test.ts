/**
 * The coverage-guided fuzzer's own parts (test/fuzz/): coverage feedback reaches code random
 * inputs do not, findings are classified and minimised, mutators stay in bounds, and the
 * supervisor turns a hanging input or a heap blow-up into a finding that carries the input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { looksLikeTarHeader } from '../../../src/archive/tar-reader.js';
import { tarArchive } from '../../../src/archive/tar-writer.js';
import { CoverageTracker } from '../../fuzz/coverage.js';
import { execute, fuzz, minimize } from '../../fuzz/engine.js';
import { mutateJson } from '../../fuzz/json-mutate.js';
import { mutateBytes } from '../../fuzz/mutate.js';
import { Rng } from '../../fuzz/rng.js';
import { runWorker } from '../../fuzz/supervisor.js';
import { mutateTar } from '../../fuzz/tar-mutate.js';
import { kinds, magic } from './toy-targets.js';

const TOY_MODULE = new URL('./toy-targets.js', import.meta.url).href;

test('coverage feedback leads the fuzzer to a magic value that random mutation misses', async () => {
  const options = { seeds: [Buffer.from('seed')], seed: 1, deadline: Date.now() + 120_000, maxRuns: 20_000 };
  // Block coverage only instruments functions compiled after it started: coverage first.
  const coverage = new CoverageTracker((url) => url === TOY_MODULE);
  coverage.start();
  try {
    const result = await fuzz(magic, { ...options, coverage });
    const [finding] = result.findings;
    assert.ok(finding, `no finding in ${result.runs} runs`);
    assert.equal(finding.kind, 'crash');
    assert.match(finding.message, /TypeError: magic reached/);
    // Minimised: nothing but the magic bytes is left.
    assert.equal(finding.input.toString('latin1'), 'FUZZ');
    // Each nested branch reached was a new feature, kept in the corpus on the way.
    assert.ok(result.corpus >= 4, `corpus of ${result.corpus}`);
  } finally {
    coverage.stop();
  }

  const blind = await fuzz(magic, options);
  assert.deepEqual(blind.findings, [], 'found without coverage feedback');
  assert.equal(blind.runs, 20_000);
});

test('only the rejections a target allows are not findings', async () => {
  assert.equal(await execute(kinds, Buffer.from('ok')), undefined);
  assert.equal(await execute(kinds, Buffer.from('B')), undefined);
  assert.equal((await execute(kinds, Buffer.from('T')))?.kind, 'crash');
  assert.match((await execute(kinds, Buffer.from('R')))?.message ?? '', /^RangeError: range/);
  assert.equal((await execute(kinds, Buffer.from('I')))?.kind, 'invariant');
});

test('minimising keeps the signature and drops the rest', async () => {
  const finding = await execute(kinds, Buffer.from('xxxxxxTxxxxxxxxxxxxx'));
  assert.ok(finding);
  const minimized = await minimize(kinds, finding, Date.now() + 60_000);
  assert.equal(minimized.input.toString(), 'T');
});

test('keepGoing collects one finding per distinct signature', async () => {
  const result = await fuzz(kinds, {
    seeds: [Buffer.from('T'), Buffer.from('R'), Buffer.from('TT'), Buffer.from('I')],
    seed: 2,
    deadline: Date.now() + 60_000,
    maxRuns: 50,
    keepGoing: true,
  });
  assert.deepEqual(result.findings.map((f) => f.kind).sort(), ['crash', 'crash', 'invariant']);
});

test('byte mutations stay within the maximum length and repeat for the same seed', () => {
  const run = (seed: number): string[] => {
    const rng = new Rng(seed);
    const corpus = [Buffer.from('{"a":[1,2,3]}'), Buffer.from('other input')];
    const context = { rng, dictionary: [Buffer.from('TOKEN')], corpus, maxLength: 100 };
    const outputs: string[] = [];
    let input = corpus[0] as Buffer;
    for (let i = 0; i < 5000; i++) {
      input = mutateBytes(input, context);
      assert.ok(input.length <= 100, `${input.length} bytes`);
      outputs.push(input.toString('hex'));
    }
    return outputs;
  };
  const first = run(7);
  assert.deepEqual(run(7), first);
  assert.notDeepEqual(run(8), first);
  assert.ok(new Set(first).size > 1000, 'mutations vary');
});

test('JSON mutations give JSON, keep __proto__ as a plain key, and skip what is not JSON', () => {
  const rng = new Rng(3);
  assert.equal(mutateJson(Buffer.from('{"a": '), rng, []), undefined);
  let sawProto = false;
  for (let i = 0; i < 2000; i++) {
    const out = mutateJson(Buffer.from('{"Env":["A=b"],"HostConfig":{"Memory":1}}'), rng, [
      '__proto__',
      'Cmd',
    ]);
    assert.ok(out);
    const parsed = JSON.parse(out.toString()) as unknown;
    if (parsed !== null && typeof parsed === 'object' && Object.hasOwn(parsed, '__proto__')) sawProto = true;
  }
  assert.ok(sawProto, 'a __proto__ key was added as an own property');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});

test('tar mutations keep header checksums valid so the reader gets past them', () => {
  const rng = new Rng(4);
  const tar = tarArchive([
    { path: 'a', type: 'file', mode: 0o644, content: Buffer.from('hello') },
    { path: 'd/', type: 'directory', mode: 0o755 },
  ]);
  let valid = 0;
  for (let i = 0; i < 500; i++) {
    const out = mutateTar(tar, rng);
    if (out === undefined || out.length < 512 || out[0] === 0x1f) continue;
    if (looksLikeTarHeader(out.subarray(0, 512))) valid++;
  }
  // Checksums are fixed nine times in ten; truncation and zeroed magic account for the rest.
  assert.ok(valid > 300, `${valid} of 500 mutated archives start with a valid header`);
});

test('the supervisor reports a hanging input, a heap blow-up and a dead worker, each with its input', async () => {
  const base = {
    module: TOY_MODULE,
    mode: 'replay' as const,
    seed: 1,
    deadline: Date.now(),
    keepGoing: false,
    coverageRoot: TOY_MODULE,
  };
  const quiet = (): void => undefined;
  const hung = await runWorker(
    { ...base, target: 'hang', exportName: 'hang', inputs: [Buffer.from('ok'), Buffer.from('xHx')] },
    { timeoutMs: 500, memoryMb: 256 },
    quiet,
  );
  assert.equal(hung.findings.length, 1);
  assert.equal(hung.findings[0]?.kind, 'hang');
  assert.equal(hung.findings[0]?.input.toString(), 'xHx');

  const blown = await runWorker(
    { ...base, target: 'hog', exportName: 'hog', inputs: [Buffer.from('ok'), Buffer.from('M')] },
    { timeoutMs: 60_000, memoryMb: 64 },
    quiet,
  );
  assert.equal(blown.findings.length, 1);
  assert.equal(blown.findings[0]?.kind, 'oom');
  assert.equal(blown.findings[0]?.input.toString(), 'M');

  const killed = await runWorker(
    { ...base, target: 'suicide', exportName: 'suicide', inputs: [Buffer.from('ok'), Buffer.from('xK')] },
    { timeoutMs: 60_000, memoryMb: 256 },
    quiet,
  );
  assert.equal(killed.findings.length, 1);
  assert.equal(killed.findings[0]?.kind, 'crash');
  assert.match(killed.findings[0]?.message ?? '', /the worker died \(SIGKILL\)/);
  assert.equal(killed.findings[0]?.input.toString(), 'xK');

  const clean = await runWorker(
    { ...base, target: 'hang', exportName: 'hang', inputs: [Buffer.from('fine')] },
    { timeoutMs: 60_000, memoryMb: 256 },
    quiet,
  );
  assert.deepEqual(clean.findings, []);
  assert.equal(clean.stats.runs, 1);
});

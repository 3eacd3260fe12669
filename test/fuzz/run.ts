/**
 * The fuzzer's command line:
 *
 *   node dist/test/fuzz/run.js [--seconds N] [--target NAME]... [--jobs N] [--seed N] [--runs N]
 *                              [--timeout-ms N] [--memory-mb N] [--corpus DIR] [--work-dir DIR]
 *                              [--keep-going]
 *   node dist/test/fuzz/run.js --target NAME --replay [FILE...]
 *   node dist/test/fuzz/run.js --list
 *
 * `--seconds` is the wall-clock budget of the whole run, shared by the targets (`--jobs` of them
 * at a time). Each target runs in a worker process seeded from the committed corpus
 * (test/fuzz/corpus/<target>/) and the inputs earlier runs kept (<work-dir>/corpus/<target>/);
 * inputs reaching new coverage are added to the latter. A finding (an exception the target's
 * contract does not allow, a failed invariant, an input running longer than --timeout-ms, a heap
 * above --memory-mb) is minimised, written to <work-dir>/findings/<target>/ and makes the exit
 * status 1; the target stops there unless --keep-going (one finding per distinct signature; a
 * hang or memory blow-up still ends that target). `--replay` runs inputs once each without
 * mutation (the corpus by default).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inputName, type Finding } from './engine.js';
import { loadTarget, TARGET_NAMES, targetModule } from './targets/index.js';
import { runWorker } from './supervisor.js';
import type { WorkerRequest } from './worker.js';

interface Options {
  seconds: number;
  targets: string[];
  jobs: number;
  seed: number;
  runs?: number;
  timeoutMs: number;
  memoryMb: number;
  corpusDir: string;
  workDir: string;
  replay: boolean;
  keepGoing: boolean;
  files: string[];
  list: boolean;
}

class UsageError extends Error {}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    seconds: 60,
    targets: [],
    jobs: 1,
    seed: Math.floor(Math.random() * 2 ** 31),
    timeoutMs: 5000,
    memoryMb: 2048,
    corpusDir: 'test/fuzz/corpus',
    workDir: '.cache/fuzz',
    replay: false,
    keepGoing: false,
    files: [],
    list: false,
  };
  const number = (flag: string, text: string | undefined): number => {
    const value = Number(text);
    if (text === undefined || !Number.isFinite(value) || value < 0)
      throw new UsageError(`${flag} needs a non-negative number, got ${JSON.stringify(text ?? '')}`);
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = (): string | undefined => argv[++i];
    switch (arg) {
      case '--seconds':
        options.seconds = number(arg, value());
        break;
      case '--target':
        options.targets.push(value() ?? '');
        break;
      case '--jobs':
        options.jobs = Math.max(1, Math.floor(number(arg, value())));
        break;
      case '--seed':
        options.seed = Math.floor(number(arg, value()));
        break;
      case '--runs':
        options.runs = Math.floor(number(arg, value()));
        break;
      case '--timeout-ms':
        options.timeoutMs = number(arg, value());
        break;
      case '--memory-mb':
        options.memoryMb = number(arg, value());
        break;
      case '--corpus':
        options.corpusDir = value() ?? '';
        break;
      case '--work-dir':
        options.workDir = value() ?? '';
        break;
      case '--replay':
        options.replay = true;
        break;
      case '--keep-going':
        options.keepGoing = true;
        break;
      case '--list':
        options.list = true;
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
        options.files.push(arg);
    }
  }
  for (const name of options.targets)
    if (!(TARGET_NAMES as readonly string[]).includes(name))
      throw new UsageError(`unknown target ${JSON.stringify(name)} (known: ${TARGET_NAMES.join(', ')})`);
  if (options.targets.length === 0) options.targets = [...TARGET_NAMES];
  if (options.files.length > 0 && (!options.replay || options.targets.length !== 1))
    throw new UsageError('input files are replayed through one target: --target NAME --replay FILE...');
  return options;
}

function readInputs(dir: string): Buffer[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .sort()
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isFile())
    .map((path) => readFileSync(path));
}

function saveFinding(options: Options, target: string, finding: Finding): string {
  const dir = resolve(options.workDir, 'findings', target);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `${finding.kind}-${inputName(finding.input)}`);
  writeFileSync(file, finding.input);
  writeFileSync(
    `${file}.txt`,
    [
      `target: ${target}`,
      `kind: ${finding.kind}`,
      `input: ${JSON.stringify(finding.input.toString('latin1'))}`,
      `message: ${finding.message}`,
      '',
      finding.stack ?? '',
      '',
      `replay: node dist/test/fuzz/run.js --target ${target} --replay ${file}`,
      '',
    ].join('\n'),
  );
  return file;
}

async function runTarget(name: string, seconds: number, options: Options): Promise<boolean> {
  const log = (line: string): void => console.log(line);
  const committed = join(options.corpusDir, name);
  const kept = resolve(options.workDir, 'corpus', name);
  const inputs =
    options.files.length > 0
      ? options.files.map((file) => readFileSync(file))
      : [...readInputs(committed), ...readInputs(kept)];
  const request: Omit<WorkerRequest, 'slot'> = {
    target: name,
    module: targetModule(name),
    mode: options.replay ? 'replay' : 'fuzz',
    inputs: inputs.map((input) => new Uint8Array(input)),
    seed: options.seed,
    deadline: Date.now() + seconds * 1000,
    keepGoing: options.keepGoing,
    ...(options.runs !== undefined ? { maxRuns: options.runs } : {}),
    coverageRoot: new URL('../../src/', import.meta.url).href,
    newInputDir: kept,
  };
  const { stats, findings } = await runWorker(request, options, log);
  const confirmed: Finding[] = [];
  for (const finding of findings) {
    // A hang is confirmed by running the input alone in a fresh worker, so a stall of the machine is not a finding.
    if (finding.kind === 'hang') {
      const again = await runWorker(
        { ...request, mode: 'replay', inputs: [new Uint8Array(finding.input)], deadline: Date.now() },
        options,
        log,
      );
      if (again.findings.length === 0) {
        log(`${name}: an input exceeded ${options.timeoutMs} ms once but not when run again; not a finding`);
        continue;
      }
    }
    confirmed.push(finding);
  }
  const rate = Math.round(stats.runs / Math.max(1, stats.elapsedMs / 1000));
  log(
    `${name}: ${stats.runs} runs in ${(stats.elapsedMs / 1000).toFixed(1)} s (${rate}/s), ` +
      `${inputs.length} seeds, corpus ${stats.corpus}, ${stats.features} features, ${confirmed.length} findings`,
  );
  for (const finding of confirmed) {
    const file = saveFinding(options, name, finding);
    log(
      `${name}: FINDING (${finding.kind}) ${finding.message}\n` +
        `  input ${JSON.stringify(finding.input.toString('latin1').slice(0, 300))}\n  saved to ${file}`,
    );
  }
  return confirmed.length === 0;
}

async function main(): Promise<number> {
  const options = parseArgs(process.argv.slice(2));
  if (options.list) {
    for (const name of TARGET_NAMES)
      console.log(`${name.padEnd(14)} ${(await loadTarget(name)).description}`);
    return 0;
  }
  if (!existsSync(options.corpusDir))
    throw new UsageError(`no corpus at ${options.corpusDir} (run from the repository root or pass --corpus)`);
  const queue = [...options.targets];
  const perTarget = options.replay
    ? 0
    : (options.seconds * Math.min(options.jobs, queue.length)) / queue.length;
  console.log(
    options.replay
      ? `replaying ${options.files.length > 0 ? 'the given inputs' : 'the corpus'} through ${queue.join(', ')}`
      : `fuzzing ${queue.join(', ')}: ${perTarget.toFixed(1)} s each, seed ${options.seed}`,
  );
  let clean = true;
  const lane = async (): Promise<void> => {
    for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
      if (!(await runTarget(name, perTarget, options))) clean = false;
    }
  };
  await Promise.all(Array.from({ length: Math.min(options.jobs, options.targets.length) }, lane));
  return clean ? 0 : 1;
}

main().then(
  (status) => process.exit(status),
  (err: unknown) => {
    console.error(err instanceof UsageError ? `run.js: ${err.message}` : err);
    process.exit(2);
  },
);

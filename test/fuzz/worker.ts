/**
 * One target in a process of its own (forked by supervisor.ts): fuzz it (coverage-guided) or
 * replay inputs through it. A process, not a worker thread, because some failures are fatal to
 * the whole V8 instance (a heap out of memory, an array grown past V8's limit) and must not take
 * the supervisor with them; its main thread also has the stack berthd's parsers run on. The
 * request comes as the first IPC message; progress and findings go back the same way, and each
 * input is written to the input slot file before it runs.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CoverageTracker } from './coverage.js';
import { execute, fuzz, inputName, minimize, type Finding, type FuzzStats } from './engine.js';
import { InputSlotWriter } from './input-slot.js';
import type { FuzzTarget } from './target.js';

export interface WorkerRequest {
  /** The target's name, for messages. */
  target: string;
  /** URL of the module exporting the target (targets/index.ts targetModule). */
  module: string;
  /** The export holding the target (default `target`). */
  exportName?: string;
  mode: 'fuzz' | 'replay';
  /** The input slot file (input-slot.ts). */
  slot: string;
  /** Fuzz: seed inputs; replay: the inputs to run. */
  inputs: Uint8Array[];
  seed: number;
  deadline: number;
  keepGoing: boolean;
  maxRuns?: number;
  /** URL prefix of the scripts whose coverage counts. */
  coverageRoot: string;
  /** Where inputs with new coverage are written (fuzz mode). */
  newInputDir?: string;
}

/** A finding as posted: the input as plain bytes. */
export type PostedFinding = Omit<Finding, 'input'> & { input: Uint8Array };

export type WorkerMessage =
  | { type: 'stats'; stats: FuzzStats }
  | { type: 'finding'; finding: PostedFinding }
  | { type: 'done'; result: FuzzStats };

const send = process.send?.bind(process);
if (send === undefined) throw new Error('worker.js runs as a child process of supervisor.ts');
const post = (message: WorkerMessage): void => void send(message);

const request = await new Promise<WorkerRequest>((resolve) =>
  process.once('message', (message) => resolve(message as WorkerRequest)),
);
const slot = new InputSlotWriter(request.slot);
// Block coverage is only collected for functions compiled after it started: start it before the
// target's modules load.
const coverage =
  request.mode === 'fuzz' ? new CoverageTracker((url) => url.startsWith(request.coverageRoot)) : undefined;
coverage?.start();
const exports = (await import(request.module)) as Record<string, FuzzTarget | undefined>;
const target = exports[request.exportName ?? 'target'];
if (target === undefined)
  throw new Error(`${request.module} has no export ${request.exportName ?? 'target'}`);
const publish = (input: Buffer): void => slot.write(input);
const postFinding = (finding: Finding): void =>
  post({ type: 'finding', finding: { ...finding, input: new Uint8Array(finding.input) } });
const inputs = request.inputs.map((bytes) => Buffer.from(bytes));

let result: FuzzStats;
if (request.mode === 'replay') {
  const started = Date.now();
  let runs = 0;
  for (const input of inputs) {
    publish(input);
    runs++;
    const finding = await execute(target, input);
    if (finding) {
      postFinding(await minimize(target, finding, Date.now() + 5000, publish));
      if (!request.keepGoing) break;
    }
  }
  result = { runs, corpus: inputs.length, features: 0, elapsedMs: Date.now() - started };
} else {
  const saveDir = request.newInputDir;
  if (saveDir !== undefined) mkdirSync(saveDir, { recursive: true });
  const { findings: _posted, ...stats } = await fuzz(target, {
    seeds: inputs,
    seed: request.seed,
    deadline: request.deadline,
    keepGoing: request.keepGoing,
    onFinding: postFinding,
    ...(request.maxRuns !== undefined ? { maxRuns: request.maxRuns } : {}),
    coverage,
    onInput: publish,
    ...(saveDir !== undefined
      ? { onNewInput: (input: Buffer) => writeFileSync(join(saveDir, inputName(input)), input) }
      : {}),
    onStats: (progress) => post({ type: 'stats', stats: progress }),
  });
  result = stats;
  coverage?.stop();
}
slot.close();
// The IPC channel goes once the last message is out, and the process ends with it.
send({ type: 'done', result } satisfies WorkerMessage, undefined, {}, () => process.disconnect());

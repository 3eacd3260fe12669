/**
 * Runs one fuzz worker process (worker.ts) to its end and watches it: an input that runs longer
 * than the timeout (the worker stops writing new inputs to the slot) or a worker that dies (a
 * heap out of memory, a fatal V8 error, an uncaught error) becomes a finding carrying the input
 * from the slot file and the end of the worker's stderr.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Finding, FuzzStats } from './engine.js';
import { InputSlotReader } from './input-slot.js';
import type { WorkerMessage, WorkerRequest } from './worker.js';

export interface Limits {
  /** One input may run this long. */
  timeoutMs: number;
  /** The worker's heap limit. */
  memoryMb: number;
}

export interface Outcome {
  stats: FuzzStats;
  findings: Finding[];
}

/** Of a dead worker's stderr, this much is kept for the finding's message. */
const STDERR_KEPT = 16 * 1024;

/** Runs one worker to its end, watching it for hangs and deaths. */
export function runWorker(
  request: Omit<WorkerRequest, 'slot'>,
  limits: Limits,
  log: (line: string) => void,
): Promise<Outcome> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-fuzz-'));
  const slotPath = join(dir, 'input');
  const slot = new InputSlotReader(slotPath);
  const child = fork(new URL('./worker.js', import.meta.url), [], {
    execArgv: [`--max-old-space-size=${limits.memoryMb}`],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    serialization: 'advanced',
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-STDERR_KEPT);
  });
  child.send({ ...request, slot: slotPath } satisfies WorkerRequest);
  const started = Date.now();
  let stats: FuzzStats = { runs: 0, corpus: 0, features: 0, elapsedMs: 0 };
  const findings: Finding[] = [];
  return new Promise<Outcome>((resolvePromise, reject) => {
    let settled = false;
    let lastSequence = 0;
    let lastChange = Date.now();
    /** Ends the worker; `last` is what the watchdog saw (a hang, a death). */
    const settle = (outcome: FuzzStats | Error, last?: Finding): void => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      if (outcome instanceof Error) reject(outcome);
      else resolvePromise({ stats: outcome, findings: last ? [...findings, last] : findings });
    };
    const elapsed = (): FuzzStats => ({ ...stats, elapsedMs: Date.now() - started });
    const watchdog = setInterval(() => {
      const sequence = slot.sequence();
      if (sequence !== lastSequence) {
        lastSequence = sequence;
        lastChange = Date.now();
      } else if (sequence > 0 && Date.now() - lastChange > limits.timeoutMs) {
        settle(elapsed(), {
          kind: 'hang',
          input: slot.read(),
          message: `one input ran for more than ${limits.timeoutMs} ms`,
        });
      }
      // Loading, minimising and the last input all finish well within a minute past the deadline.
      if (Date.now() > request.deadline + 60_000)
        settle(new Error(`the ${request.target} worker did not finish a minute after its deadline`));
    }, 100);
    child.on('message', (message: WorkerMessage) => {
      if (message.type === 'stats') {
        stats = message.stats;
        const rate = Math.round(stats.runs / Math.max(1, stats.elapsedMs / 1000));
        log(
          `${request.target}: ${stats.runs} runs (${rate}/s), corpus ${stats.corpus}, ${stats.features} features`,
        );
      } else if (message.type === 'finding') {
        const finding = { ...message.finding, input: Buffer.from(message.finding.input) };
        findings.push(finding);
        log(`${request.target}: finding (${finding.kind}) ${finding.message.slice(0, 200)}`);
      } else settle(message.result);
    });
    child.on('exit', (code, signal) => {
      // A clean exit comes after 'done'; anything else is the input's doing (or the worker's).
      if (settled) return;
      if (slot.sequence() === 0) {
        settle(new Error(`the ${request.target} worker failed before its first input:\n${stderr}`));
        return;
      }
      const oom = /heap out of memory|Allocation failed/.test(stderr);
      // V8 prints "# Fatal error in ..., line ..." and then the reason.
      const fatal = [...stderr.matchAll(/^#\s*(Fatal .*)$/gm)].at(-1)?.[1];
      const thrown = /^(\w*Error: .*)$/m.exec(stderr)?.[1];
      settle(elapsed(), {
        kind: oom ? 'oom' : 'crash',
        input: slot.read(),
        message: oom
          ? `one input took the heap past ${limits.memoryMb} MB`
          : `the worker died (${signal ?? `status ${code}`}): ${fatal ?? thrown ?? 'no message'}`,
        stack: stderr,
      });
    });
  });
}

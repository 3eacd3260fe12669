/**
 * Streaming zstd decompression through the reference decoder, the `zstd` program (Debian's zstd,
 * libzstd's own front end). A pure-JavaScript decoder was used before; the fuzzer found a 264-byte
 * frame that kept it busy for 87 s (it checked neither a block's output bound nor match lengths),
 * which no size limit can stop. The reference decoder rejects such data at once, and enforces the
 * default window limit (`--memory`, 128 MiB), so a frame header cannot make it allocate gigabytes.
 */
import { spawn } from 'node:child_process';
import type { Writable } from 'node:stream';
import { invalidArgument, unavailable } from '../common/errors.js';

/** zstd's default decoder limit (ZSTD_WINDOWLOG_LIMIT_DEFAULT = 27). */
export const MAX_ZSTD_WINDOW = 1 << 27;

/** What the decoder refused, in one message without the program's and the input's names. */
function refusal(stderr: string): Error {
  const window = /Window size larger than maximum : (\d+) > (\d+)/.exec(stderr);
  if (window)
    return invalidArgument(
      `layer zstd frame needs a ${window[1]}-byte window, more than the ${window[2]}-byte limit`,
    );
  if (/premature end/.test(stderr))
    return invalidArgument('layer is not valid zstd data: the stream is truncated');
  const reasons = stderr
    .split('\n')
    .map((line) =>
      line
        .replace(/^zstd: /, '')
        .replace(/^\/\*stdin\*\\ ?: ?/, '')
        .replace(/^(Decoding|Read) error \(\d+\) : /, '')
        .trim(),
    )
    .filter((line) => line !== '');
  return invalidArgument(`layer is not valid zstd data: ${reasons.join('; ') || 'the decoder failed'}`);
}

/** Write `chunk`, waiting while the pipe is full; false once the decoder stopped reading. */
function write(stdin: Writable, chunk: Uint8Array): Promise<boolean> {
  return new Promise((resolve) => {
    if (stdin.destroyed || !stdin.writable) return resolve(false);
    const onClose = (): void => resolve(false);
    stdin.once('close', onClose);
    stdin.write(chunk, (err) => {
      stdin.off('close', onClose);
      resolve(err == null);
    });
  });
}

/** Decompress a zstd stream chunk by chunk. */
export async function* zstdDecompress(source: AsyncIterable<Uint8Array>): AsyncGenerator<Buffer> {
  const child = spawn('zstd', ['-d', '-c', '-q', `--memory=${MAX_ZSTD_WINDOW}`], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: {},
  });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (text: string) => {
    if (stderr.length < 4096) stderr += text;
  });
  child.stdin.on('error', () => undefined); // EPIPE when the decoder stops on bad data
  let startError: Error | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.once('error', (err) => {
      startError = err;
      resolve(null);
    });
    child.once('close', (code) => resolve(code));
  });

  let inputError: unknown;
  const feed = (async () => {
    try {
      for await (const chunk of source) if (!(await write(child.stdin, chunk))) return;
    } catch (err) {
      inputError = err;
      child.kill('SIGKILL');
    } finally {
      child.stdin.end();
    }
  })();

  let finished = false;
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const code = await exited;
    if (inputError !== undefined) throw inputError;
    if (startError !== undefined)
      throw unavailable(`zstd layers need the zstd program (Debian package zstd): ${startError.message}`);
    if (code !== 0) throw refusal(stderr);
    await feed; // done: the decoder succeeds only after reading its input to the end
    finished = true;
  } finally {
    if (!finished) {
      // The consumer stopped early or the data was refused: the decoder must not outlive us. The
      // feeder ends by itself at the source's next chunk, when its write fails.
      child.kill('SIGKILL');
      child.stdout.destroy();
      await exited;
    }
  }
}

/** Helpers shared by berth's commands. */
import type { CliContext } from '../context.js';
import { CommandError } from '../errors.js';

/** The 12-character short form of an ID, without an algorithm prefix. */
export function shortId(id: string): string {
  const colon = id.indexOf(':');
  return (colon === -1 ? id : id.slice(colon + 1)).slice(0, 12);
}

/** IDs shown truncated unless --no-trunc; image IDs keep "sha256:" only untruncated. */
export const displayId = (id: string, noTrunc: boolean): string => (noTrunc ? id : shortId(id));

/**
 * Runs an operation for each argument at once (docker runs them in parallel), prints the ones that
 * succeeded in argument order, then fails with every error, one per line, as docker does.
 */
export async function forEachArg(
  ctx: CliContext,
  names: string[],
  operation: (name: string) => Promise<string | undefined>,
): Promise<number> {
  const results = await Promise.allSettled(names.map((name) => operation(name)));
  const errors: string[] = [];
  for (const result of results) {
    if (result.status === 'fulfilled') {
      if (result.value !== undefined) ctx.out(`${result.value}\n`);
    } else errors.push(result.reason instanceof Error ? result.reason.message : String(result.reason));
  }
  if (errors.length > 0) throw new CommandError(errors.join('\n'));
  return 0;
}

/** docker's prompt: prints the question and reads one answer line from stdin; yes is y or Y. */
export async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  ctx.out(`${question} [y/N] `);
  const stdin = ctx.streams.stdin;
  const line = await new Promise<string>((resolve) => {
    let text = '';
    const onData = (chunk: Buffer | string): void => {
      text += chunk.toString();
      const newline = text.indexOf('\n');
      if (newline !== -1) finish(text.slice(0, newline));
    };
    const finish = (answer: string): void => {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.pause();
      resolve(answer);
    };
    const onEnd = (): void => finish(text);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
  const answer = line.trim();
  return answer === 'y' || answer === 'Y';
}

/** sortorder.NaturalLess as a comparator: digit runs compare as numbers and sort before other characters. */
export function naturalCompare(a: string, b: string): number {
  const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const c1 = a[i];
    const c2 = b[j];
    const d1 = isDigit(c1);
    const d2 = isDigit(c2);
    if (d1 !== d2) return d1 ? -1 : 1;
    if (!d1) {
      if (c1 !== c2) return (c1 ?? '') < (c2 ?? '') ? -1 : 1;
      i++;
      j++;
      continue;
    }
    while (a[i] === '0') i++;
    while (b[j] === '0') j++;
    const start1 = i;
    const start2 = j;
    while (isDigit(a[i])) i++;
    while (isDigit(b[j])) j++;
    if (i - start1 !== j - start2) return i - start1 - (j - start2);
    const n1 = a.slice(start1, i);
    const n2 = b.slice(start2, j);
    if (n1 !== n2) return n1 < n2 ? -1 : 1;
    if (start1 !== start2) return start1 - start2;
  }
  return a.length - i - (b.length - j);
}

/** A query value docker sends for a set boolean flag. */
export const one = (flag: boolean): string | undefined => (flag ? '1' : undefined);

/** Reads all of a stream. */
export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(parts);
}

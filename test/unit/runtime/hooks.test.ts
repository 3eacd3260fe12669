/**
 * The hooks berth-runtime runs itself (prestart, createRuntime, poststart, poststop): argv[0] from
 * args, exactly the hook's env, the state on stdin, the timeout, and a message with the output.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HookError, hookEnv, outputLine, runHooks } from '../../../src/runtime/hooks.js';
import type { State } from '../../../src/oci/runtime-spec.js';

const STATE: State = {
  ociVersion: '1.2.0',
  id: 'c1',
  status: 'creating',
  pid: 4242,
  bundle: '/b',
  annotations: { a: 'b' },
};

async function scratch(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'berth-hooks-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a hook gets argv[0] from args, exactly its env and the state JSON on stdin', async (t) => {
  const dir = await scratch(t);
  const script = [
    `cat > ${dir}/state`,
    `tr '\\0' ' ' < /proc/$$/cmdline > ${dir}/argv`,
    `tr '\\0' '\\n' < /proc/$$/environ > ${dir}/env`,
  ].join('; ');
  await runHooks(
    'prestart',
    [{ path: '/bin/sh', args: ['not-sh', '-c', script, 'x', 'y'], env: ['ONE=1', 'TWO=a=b', 'EMPTY='] }],
    STATE,
  );
  assert.deepEqual(JSON.parse(await readFile(join(dir, 'state'), 'utf8')), STATE);
  assert.equal(await readFile(join(dir, 'argv'), 'utf8'), `not-sh -c ${script} x y `);
  assert.equal(await readFile(join(dir, 'env'), 'utf8'), 'ONE=1\nTWO=a=b\nEMPTY=\n', 'exactly its env');
});

test('without args the path is argv[0]; hooks run in order and stop at the first failure', async (t) => {
  const dir = await scratch(t);
  await runHooks('createRuntime', [{ path: '/bin/true' }], STATE);
  await assert.rejects(
    runHooks(
      'createRuntime',
      [
        { path: '/bin/sh', args: ['sh', '-c', `echo 1 >> ${dir}/order`] },
        { path: '/bin/sh', args: ['sh', '-c', 'exit 2'] },
        { path: '/bin/sh', args: ['sh', '-c', `echo 3 >> ${dir}/order`] },
      ],
      STATE,
    ),
    /createRuntime hook \/bin\/sh exited with 2$/,
  );
  assert.equal(await readFile(join(dir, 'order'), 'utf8'), '1\n');
});

test('a failure names the hook and carries the end of its stdout and stderr on one line', async () => {
  await assert.rejects(
    runHooks('prestart', [{ path: '/bin/sh', args: ['sh', '-c', 'echo out; echo err >&2; exit 7'] }], STATE),
    (err: unknown) =>
      err instanceof HookError && err.message === 'prestart hook /bin/sh exited with 7: out err',
  );
  await assert.rejects(
    runHooks(
      'prestart',
      [{ path: '/bin/sh', args: ['sh', '-c', 'head -c 5000 /dev/zero | tr "\\0" x; exit 1'] }],
      STATE,
    ),
    (err: unknown) => err instanceof HookError && err.message.endsWith(`exited with 1: ${'x'.repeat(400)}`),
  );
  await assert.rejects(
    runHooks('prestart', [{ path: '/bin/sh', args: ['sh', '-c', 'kill -9 $$'] }], STATE),
    /prestart hook \/bin\/sh was killed by signal SIGKILL$/,
  );
  await assert.rejects(
    runHooks('poststop', [{ path: '/nonexistent/hook' }], STATE),
    /poststop hook \/nonexistent\/hook could not run: .*ENOENT/,
  );
});

test('a hook that outlives its timeout is killed and fails', async () => {
  await assert.rejects(
    runHooks('createRuntime', [{ path: '/bin/sleep', args: ['sleep', '60'], timeout: 1 }], STATE),
    /createRuntime hook \/bin\/sleep timed out after 1 s$/,
  );
});

test('hookEnv and outputLine', () => {
  assert.deepEqual(hookEnv(['A=1', 'B=x=y', 'C=', 'D']), { A: '1', B: 'x=y', C: '', D: '' });
  assert.deepEqual(hookEnv(undefined), {});
  assert.equal(outputLine(Buffer.from('\n line one\nline\ttwo\r\n\u0007')), 'line one line two');
});

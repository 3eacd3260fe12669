/**
 * berth-mount's line protocol with raw input the client would never send: unknown requests, wrong
 * arity, malformed escapes, unknown flags, relative targets, oversized lines. These are refused
 * before anything reaches the kernel; the program answers each line once and keeps serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BINARY =
  process.env.BERTH_MOUNT ?? fileURLToPath(new URL('../../../../native/build/berth-mount', import.meta.url));
const skip = existsSync(BINARY) ? false : `${BINARY} is not built (make -C native)`;

function serve(input: string): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(BINARY, [], { input, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

test('one answer per line; bad requests are refused and serving goes on', { skip }, () => {
  const requests: [string, RegExp][] = [
    ['frobnicate a b', /^error EINVAL unknown request frobnicate with 2 arguments$/],
    ['umount /x', /^error EINVAL unknown request umount with 1 arguments$/],
    ['mount a b c d e', /^error EINVAL unknown request mount with 5 arguments$/],
    ['umount  /x -', /^error EINVAL malformed request/],
    ['umount /x - ', /^error EINVAL malformed request/],
    ['a b c d e f g h i', /^error EINVAL malformed request: at most 8 fields/],
    ['umount /x\\9 -', /^error EINVAL malformed request/],
    ['umount /x\\000y -', /^error EINVAL malformed request/],
    ['umount /x\\40 -', /^error EINVAL malformed request/],
    ['umount /x frobnicate', /^error EINVAL unknown umount flag frobnicate$/],
    ['mount /a /b - bind,frob - -', /^error EINVAL unknown mount flag frob$/],
    ['mount /a relative - bind - -', /^error EINVAL the target must be an absolute path$/],
    ['umount relative -', /^error EINVAL the target must be an absolute path$/],
    ['umount /x\t-', /^error EINVAL request contains a control character$/],
    [`umount /${'x'.repeat(30000)} -`, /^error EINVAL request too long$/],
  ];
  const { status, stdout, stderr } = serve(requests.map(([line]) => `${line}\n`).join(''));
  assert.equal(status, 0, stderr);
  const answers = stdout.split('\n');
  assert.equal(answers.pop(), '');
  assert.equal(answers.length, requests.length, stdout);
  requests.forEach(([line, expected], i) => assert.match(answers[i] ?? '', expected, line.slice(0, 80)));
});

test('a last line without its newline is still answered; EOF ends the program', { skip }, () => {
  const { status, stdout } = serve('frob\numount relative -');
  assert.equal(status, 0);
  assert.equal(stdout.split('\n').length, 3);
});

test('berth-mount takes no arguments', { skip }, () => {
  const result = spawnSync(BINARY, ['-x'], { timeout: 30_000 });
  assert.equal(result.status, 2);
  assert.match(result.stderr.toString(), /usage: berth-mount/);
});

/**
 * berth-netlink's line protocol with raw input the client would never send: unknown operations,
 * wrong arity, malformed and oversized lines, bad arguments. These are refused before anything
 * reaches the kernel; the program must answer each batch with one line and keep serving.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const BINARY =
  process.env.BERTH_NETLINK ??
  fileURLToPath(new URL('../../../../native/build/berth-netlink', import.meta.url));
const skip = existsSync(BINARY) ? false : `${BINARY} is not built (make -C native)`;
// Even an operation that changes nothing (link-delete of a missing link) needs CAP_NET_ADMIN:
// tests that need a successful operation before a failing one need root.
const skipUnlessRoot = skip || (process.getuid?.() === 0 ? false : 'needs root for a successful operation');

function serve(
  input: string | Buffer,
  args: string[] = [],
): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(BINARY, args, { input, timeout: 30_000, maxBuffer: 16 * 1024 * 1024 });
  return { status: result.status, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

test(
  'one answer per batch; bad batches are errors naming the operation, and serving goes on',
  { skip },
  () => {
    const batches = [
      'frobnicate a b',
      'up',
      'up a b',
      'veth a b /x',
      'up  lo',
      ' up lo',
      'up lo ',
      'a b c d e f g h i',
      'mtu lo 0',
      'mtu lo 1500x',
      'mtu lo 99999999999999999999',
      'up a234567890123456',
      'up a/b',
      'addr lo 10.0.0.1',
      'addr lo 10.0.0.1/33',
      'addr lo fd00::1/129',
      'route default - lo',
      'route 10.0.0.0/8 fd00::1 lo',
      'bridge b0 1500 02:00:00:00:00',
      'sysctl ../../etc/passwd 1',
      'sysctl net..ipv4 1',
      'sysctl net//ipv4 1',
      'netns-create relative',
      'enter relative',
      'netns-delete relative',
      'netns-prepare now',
    ];
    const { status, stdout, stderr } = serve(batches.map((b) => `${b}\n\n`).join(''));
    assert.equal(status, 0, stderr);
    assert.deepEqual(stdout.split('\n').slice(0, -1), [
      'error 1 unknown operation frobnicate',
      'error 1 up takes 1 arguments, got 0',
      'error 1 up takes 1 arguments, got 2',
      'error 1 veth takes 4 or 5 arguments, got 3',
      'error 1 malformed operation: fields are separated by single spaces, at most 8',
      'error 1 malformed operation: fields are separated by single spaces, at most 8',
      'error 1 malformed operation: fields are separated by single spaces, at most 8',
      'error 1 malformed operation: fields are separated by single spaces, at most 8',
      'error 1 mtu lo 0: invalid mtu 0',
      'error 1 mtu lo 1500x: invalid mtu 1500x',
      'error 1 mtu lo 99999999999999999999: invalid mtu 99999999999999999999',
      'error 1 up a234567890123456: invalid interface name a234567890123456',
      'error 1 up a/b: invalid interface name a/b',
      'error 1 addr lo 10.0.0.1: invalid cidr 10.0.0.1',
      'error 1 addr lo 10.0.0.1/33: invalid prefix length in 10.0.0.1/33',
      'error 1 addr lo fd00::1/129: invalid prefix length in fd00::1/129',
      'error 1 route default - lo: a default route needs a gateway (0.0.0.0/0 or ::/0 for a device route)',
      'error 1 route 10.0.0.0/8 fd00::1 lo: gateway fd00::1 is not in the family of 10.0.0.0/8',
      'error 1 bridge b0 1500 02:00:00:00:00: invalid mac address 02:00:00:00:00',
      'error 1 sysctl ../../etc/passwd 1: invalid sysctl name ../../etc/passwd',
      'error 1 sysctl net..ipv4 1: invalid sysctl name net..ipv4',
      'error 1 sysctl net//ipv4 1: invalid sysctl name net//ipv4',
      'error 1 netns-create relative: path relative is not absolute',
      'error 1 enter relative: path relative is not absolute',
      'error 1 netns-delete relative: path relative is not absolute',
      'error 1 netns-prepare takes 0 arguments, got 1',
    ]);
  },
);

test(
  'the failing operation is counted within its batch; later lines of the batch are skipped',
  { skip: skipUnlessRoot },
  () => {
    const { stdout } = serve(
      'link-delete bnlmissing0\nlink-delete bnlmissing1\nnope\nfrobnicate\n\nlink-delete bnlmissing0\n\n',
    );
    assert.equal(stdout, 'error 3 unknown operation nope\nok\n');
  },
);

test('an empty batch is ok; EOF ends the program and drops an unfinished batch', { skip }, () => {
  const { status, stdout } = serve('\n\nnope\n');
  assert.equal(status, 0);
  assert.equal(stdout, 'ok\nok\n');
});

test(
  'oversized lines and batches and control characters fail the batch at that line',
  { skip: skipUnlessRoot },
  () => {
    const long = 'up ' + 'x'.repeat(9000);
    const many = Array.from({ length: 257 }, () => 'link-delete bnlmissing0').join('\n');
    // netns-delete of a missing path succeeds; 16 lines of 4,000 bytes fit in 64 KiB, 17 do not.
    const missing = '/berth-netlink-missing' + `/${'p'.repeat(199)}`.repeat(20);
    const big = Array.from({ length: 17 }, () => `netns-delete ${missing}`).join('\n');
    const input = Buffer.concat([
      Buffer.from(`link-delete bnlmissing0\n${long}\nnope\n\n`),
      Buffer.from(`${many}\n\n`),
      Buffer.from(`${big}\n\n`),
      Buffer.from('up lo\tx\n\n'),
      Buffer.from('up l\x00o\n\n'),
      Buffer.from('up l\ro\n\n'),
      Buffer.from('link-delete bnlmissing0\n\n'),
    ]);
    const { status, stdout } = serve(input);
    assert.equal(status, 0);
    assert.deepEqual(stdout.split('\n').slice(0, -1), [
      'error 2 line too long',
      'error 257 batch too large',
      'error 17 batch too large',
      'error 1 line contains a control character',
      'error 1 line contains a control character',
      'error 1 line contains a control character',
      'ok',
    ]);
  },
);

test(
  '-c runs one batch (ended by EOF or an empty line): exit 0, or 1 with the error on stderr',
  { skip },
  () => {
    const failed = serve('nope\nfrobnicate', ['-c']);
    assert.equal(failed.status, 1);
    assert.equal(failed.stdout, '');
    assert.equal(failed.stderr, 'error 1 unknown operation nope\n');
    const empty = serve('\nnope\n', ['-c']);
    assert.equal(empty.status, 0);
    assert.equal(empty.stdout + empty.stderr, '');
    assert.equal(serve('', ['-c']).status, 0);
    const usage = serve('', ['-x']);
    assert.equal(usage.status, 2);
    assert.match(usage.stderr, /usage: berth-netlink \[-c\]/);
  },
);

test('-c with a successful operation before the failing one', { skip: skipUnlessRoot }, () => {
  const ok = serve('link-delete bnlmissing0', ['-c']);
  assert.equal(ok.status, 0);
  assert.equal(ok.stdout + ok.stderr, '');
  const failed = serve('link-delete bnlmissing0\nnope\n\nfrobnicate\n', ['-c']);
  assert.equal(failed.status, 1);
  assert.equal(failed.stderr, 'error 2 unknown operation nope\n');
});

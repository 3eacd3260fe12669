/**
 * The Netlink client's process handling against a stand-in coprocess that speaks the protocol of
 * docs/netlink.md: answers in order, errors, a crash (restart, in-flight batches reject), garbage
 * on stdout, close. The real program is exercised in the integration test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BerthError } from '../../../src/common/errors.js';
import { Netlink, NetlinkError } from '../../../src/network/netlink.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-netlink-client-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/* Batches: `up die` exits 7 after writing "boom" on stderr without answering; `up garbage`
 * answers nonsense; `down <x>` fails with No such device; everything else is ok. Every started
 * process appends its pid to the starts file. */
const FAKE = `#!${process.execPath}
const fs = require('node:fs');
fs.appendFileSync(${JSON.stringify(join(dir, 'starts'))}, process.pid + '\\n');
let buffer = '';
let batch = [];
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {
  buffer += chunk;
  let newline;
  while ((newline = buffer.indexOf('\\n')) >= 0) {
    const line = buffer.slice(0, newline);
    buffer = buffer.slice(newline + 1);
    if (line !== '') { batch.push(line); continue; }
    const ops = batch;
    batch = [];
    if (ops[0] === 'up die') { process.stderr.write('boom\\n'); process.exit(7); }
    if (ops[0] === 'up garbage') { process.stdout.write('what\\n'); continue; }
    const failed = ops.findIndex((op) => op.startsWith('down '));
    process.stdout.write(failed < 0 ? 'ok\\n' : 'error ' + (failed + 1) + ' ' + ops[failed] + ': No such device\\n');
  }
});
process.stdin.on('end', () => process.exit(0));
`;
const fake = join(dir, 'fake-netlink');
writeFileSync(fake, FAKE);
chmodSync(fake, 0o755);

const starts = (): number => readFileSync(join(dir, 'starts'), 'utf8').split('\n').filter(Boolean).length;

test('batches are answered in order; a failed operation rejects with its index and message', async (t) => {
  const netlink = Netlink.start(fake);
  t.after(() => netlink.close());
  const results = await Promise.allSettled([
    netlink.run([{ op: 'up', dev: 'a' }]),
    netlink.run([
      { op: 'up', dev: 'a' },
      { op: 'down', dev: 'b' },
    ]),
    netlink.run([{ op: 'up', dev: 'c' }]),
  ]);
  assert.equal(results[0]?.status, 'fulfilled');
  assert.equal(results[2]?.status, 'fulfilled');
  const failed = results[1];
  assert.equal(failed?.status, 'rejected');
  const reason = (failed as PromiseRejectedResult).reason as unknown;
  assert.ok(reason instanceof NetlinkError);
  assert.equal(reason.index, 2);
  assert.deepEqual(reason.op, { op: 'down', dev: 'b' });
  assert.equal(reason.detail, 'down b: No such device');
});

test('invalid operations reject before anything is sent', async (t) => {
  const netlink = Netlink.start(fake);
  t.after(() => netlink.close());
  await assert.rejects(netlink.run([{ op: 'up', dev: 'a b' }]), (err: unknown) => {
    return err instanceof BerthError && err.kind === 'invalid-argument';
  });
  await netlink.run([]); // nothing to do
  await netlink.run([{ op: 'up', dev: 'a' }]);
});

test('a crash rejects the batches in flight, and the next batch starts a new process', async (t) => {
  const netlink = Netlink.start(fake);
  t.after(() => netlink.close());
  await netlink.run([{ op: 'up', dev: 'a' }]);
  const before = starts();
  const [crashed, queued] = await Promise.allSettled([
    netlink.run([{ op: 'up', dev: 'die' }]),
    netlink.run([{ op: 'up', dev: 'b' }]),
  ]);
  for (const result of [crashed, queued]) {
    assert.equal(result?.status, 'rejected');
    const reason = (result as PromiseRejectedResult).reason as unknown;
    assert.ok(reason instanceof BerthError);
    assert.equal(reason.kind, 'unavailable');
    assert.match(reason.message, /berth-netlink exited with 7: boom/);
  }
  await netlink.run([{ op: 'up', dev: 'c' }]);
  assert.equal(starts(), before + 1);
});

test('an answer that is not part of the protocol is an error and the process is replaced', async (t) => {
  const netlink = Netlink.start(fake);
  t.after(() => netlink.close());
  await netlink.run([{ op: 'up', dev: 'a' }]);
  const before = starts();
  await assert.rejects(
    netlink.run([{ op: 'up', dev: 'garbage' }]),
    /berth-netlink said something unexpected: "what"/,
  );
  await netlink.run([{ op: 'up', dev: 'a' }]);
  assert.equal(starts(), before + 1);
});

test('close lets queued batches finish; later batches are refused', async () => {
  const netlink = Netlink.start(fake);
  const queued = netlink.run([{ op: 'up', dev: 'a' }]);
  await netlink.close();
  await queued;
  await assert.rejects(netlink.run([{ op: 'up', dev: 'a' }]), /client is closed/);
});

test('a missing program is reported as unavailable', async (t) => {
  const netlink = Netlink.start(join(dir, 'missing'));
  t.after(() => netlink.close());
  await assert.rejects(netlink.run([{ op: 'up', dev: 'a' }]), (err: unknown) => {
    assert.ok(err instanceof BerthError);
    assert.equal(err.kind, 'unavailable');
    assert.match(err.message, /cannot run berth-netlink .*missing.*ENOENT/);
    return true;
  });
});

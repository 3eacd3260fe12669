/**
 * The C plan decoder against the TypeScript encoder: `berth-shim decode` must list exactly what
 * describePlan() lists, and reject every malformed plan with one precise message, never a crash.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { CREATE, describePlan, encodePlan, OP, ops, type PlanOp } from '../../../src/runtime/plan.js';

const SHIM =
  process.env.BERTH_SHIM ?? fileURLToPath(new URL('../../../../native/build/berth-shim', import.meta.url));

const dir = mkdtempSync(join(tmpdir(), 'berth-plan-decode-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;

interface Decoded {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function decode(bytes: Uint8Array): Decoded {
  const path = join(dir, `plan-${files++}.bin`);
  writeFileSync(path, bytes);
  const result = spawnSync(SHIM, ['decode', path], { encoding: 'utf8', timeout: 10_000 });
  if (result.error) throw result.error;
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

/** Decoding must fail with exactly one line naming the problem. */
function assertRejected(bytes: Uint8Array, message: RegExp): void {
  const result = decode(bytes);
  assert.equal(result.signal, null, `the decoder crashed: ${result.signal}`);
  assert.equal(result.status, 1, `expected a rejection matching ${message}, got: ${result.stdout}`);
  assert.equal(result.stdout, '');
  assert.match(result.stderr, /^berth-shim: decode \S+: [^\n]+\n$/);
  assert.match(result.stderr, message);
}

const exec = ops.exec(['/bin/sh', '-c', 'echo hi'], ['PATH=/bin', 'TERM=xterm']);
const withExec = (...before: PlanOp[]): Buffer => encodePlan([...before, exec]);

/** One of every operation, with the field values the plan builder uses. */
const everyOp: PlanOp[] = [
  ops.joinNs('/proc/1/ns/net', 0x40000000),
  ops.cloneFlags(0x3c020000),
  ops.cgroupJoin('/sys/fs/cgroup/memory/berth/c/tasks'),
  ops.cgroupJoin('/sys/fs/cgroup/pids/berth/c/tasks'),
  ops.cloneIntoCgroup('/sys/fs/cgroup/berth/c'),
  ops.uidMap('0 100000 65536\n'),
  ops.gidMap('0 100000 65536\n'),
  ops.setgroups('deny'),
  ops.consoleSocket('/run/console.sock', 24, 80),
  ops.exitFile('/run/c/exit.json'),
  ops.detach(),
  ops.timeOffsets('monotonic 86400 0\n'),
  ops.logFile('/run/c/shim.log'),
  ops.mkfifo('/run/c/exec.fifo', 0o622),
  ops.unshare(0x02000000),
  ops.mount('', '/', '', 0x4000n | 0x80000n, ''),
  ops.mountInRoot('/rootfs', '/proc', 'proc', 'proc', 0xen, '', CREATE.DIR),
  ops.remount('/rootfs', '/etc/hosts', 1n),
  ops.mknodInRoot('/rootfs', '/dev/null', 0o20666, 1, 3, 0, 0),
  ops.symlinkInRoot('/rootfs', '/dev/fd', '/proc/self/fd'),
  ops.mkdirInRoot('/rootfs', '/run/lock', 0o1777),
  ops.openStartFifo('/run/c/exec.fifo'),
  ops.runtimeHooks(),
  ops.pivotRoot('/rootfs'),
  ops.moveRoot('/rootfs'),
  ops.maskPath('/proc/kcore'),
  ops.readonlyPath('/proc/sys'),
  ops.writeFile('/proc/sys/net/ipv4/ip_forward', '1'),
  ops.sethostname('box'),
  ops.setdomainname('example.org'),
  ops.setrlimit(7, 1024n, 0xffffffffffffffffn),
  ops.setupTerminal(),
  ops.setgroupsIds([]),
  ops.setgroupsIds([10, 20, 4294967294]),
  ops.setgid(1000),
  ops.setuid(1000),
  ops.umask(0o22),
  ops.caps(0x1ffffffffffn, 1n, 1n, 0n, 0n),
  ops.noNewPrivs(),
  ops.chdir('/home/user'),
  ops.personality(8),
  ops.waitStart(),
  ops.preserveFds(2),
  ops.seccomp(1, new Uint8Array(16)),
  ops.hook('startContainer', { path: '/bin/hook', args: ['hook', '-v'], env: ['A=1'], timeout: 5 }, [
    '{"pid":',
    ',"status":"created"}',
  ]),
  exec,
];

/** A filter that hands out a listener fd, and where that fd goes. */
const listenerPlan: PlanOp[] = [
  ops.seccompListener('/run/agent.sock', ['{"pid":', ',"state":{"pid":', '}}']),
  ops.seccomp(8, new Uint8Array(8)),
  exec,
];

/** TERMINAL_PROXY and STDIO_PIPES exclude CONSOLE_SOCKET, so they get a plan of their own. */
const proxyPlan: PlanOp[] = [
  ops.terminalProxy(50, 132),
  ops.stdioPipes(),
  ops.openStdin(),
  ops.logJsonFile('/var/lib/berth/containers/c/c-json.log', 10n << 20n, 3),
  ops.attachSocket('/run/berth/c/attach.sock'),
  ops.setupTerminal(),
  exec,
];

test('every operation decodes to the same listing as describePlan()', () => {
  const covered = new Set([...everyOp, ...proxyPlan, ...listenerPlan].map((op) => op.op));
  assert.deepEqual(
    Object.values(OP).filter((code) => !covered.has(code)),
    [],
    'the test plans cover every opcode',
  );
  for (const plan of [everyOp, proxyPlan, listenerPlan]) {
    const result = decode(encodePlan(plan));
    assert.equal(result.stderr, '');
    assert.equal(result.status, 0);
    assert.equal(result.stdout, describePlan(plan) + '\n');
  }
});

test('strings are listed as JSON strings, with escapes and UTF-8 intact', () => {
  const plan = withExec(ops.sethostname('quote " backslash \\ tab \t newline \n bell \u0007 é 日本 😀'));
  const result = decode(plan);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(
    result.stdout.split('\n')[0],
    '0 SETHOSTNAME "quote \\" backslash \\\\ tab \\t newline \\n bell \\u0007 é 日本 😀"',
  );
});

test('malformed encodings are rejected with a precise message', () => {
  const good = encodePlan([exec]);
  const patch = (offset: number, ...bytes: number[]): Buffer => {
    const copy = Buffer.from(good);
    bytes.forEach((b, i) => (copy[offset + i] = b));
    return copy;
  };
  // Layout of `good`: header 0-11, op header 12-15 (EXEC, 6 fields), field 0 header at 16 (kind, length).
  assertRejected(Buffer.alloc(0), /truncated header: 0 bytes, need 12$/m);
  assertRejected(good.subarray(0, 5), /truncated header: 5 bytes, need 12$/m);
  assertRejected(patch(0, 0x42, 0x53, 0x50, 0x32), /bad magic 42 53 50 32, expected "BSP1"$/m);
  assertRejected(patch(4, 2), /unsupported plan version 2, expected 1$/m);
  assertRejected(patch(8, 0xff, 0xff, 0xff, 0xff), /op count 4294967295 is more than the limit of 4096$/m);
  assertRejected(patch(8, 2), /op 1: truncated op header at byte \d+$/m);
  assertRejected(patch(12, 200), /op 0: unknown opcode 200$/m);
  assertRejected(patch(14, 0xff, 0xff), /op 0 \(EXEC\): field count 65535 is more than the limit of 1024$/m);
  assertRejected(patch(16, 9), /op 0 \(EXEC\): field 0: unknown field kind 9$/m);
  assertRejected(patch(16, 2), /op 0 \(EXEC\): field 0: bytes field, expected number$/m);
  assertRejected(patch(17, 4), /op 0 \(EXEC\): field 0: number field has length 4, expected 8$/m);
  assertRejected(
    patch(17, 0xff, 0xff, 0xff, 0xff),
    /op 0 \(EXEC\): field 0: length 4294967295 goes past the end of the plan \(\d+ bytes left\)$/m,
  );
  assertRejected(good.subarray(0, good.length - 2), /op 0 \(EXEC\): field 5: length 10 goes past the end/);
  assertRejected(good.subarray(0, 18), /op 0 \(EXEC\): field 0: truncated field header at byte 16$/m);
  assertRejected(
    Buffer.concat([good, Buffer.from([0, 0, 0])]),
    /^berth-shim: .*: 3 trailing bytes after the last op$/m,
  );
  const nul = Buffer.from(good);
  nul[nul.length - 3] = 0;
  assertRejected(nul, /op 0 \(EXEC\): field 5: NUL byte in string at offset 7$/m);
  const utf8 = Buffer.from(good);
  utf8[utf8.length - 1] = 0xc3;
  assertRejected(utf8, /op 0 \(EXEC\): field 5: string is not valid UTF-8 at offset 9$/m);
  const oversize = Buffer.alloc(16 * 1024 * 1024 + 1);
  good.copy(oversize);
  assertRejected(oversize, /plan is 16777217 bytes, more than the limit of 16777216$/m);
});

test('field kinds and counts are checked per operation', () => {
  assertRejected(
    withExec({ op: OP.JOIN_NS, fields: [{ s: '/proc/1/ns/net' }, { s: 'net' }] }),
    /op 0 \(JOIN_NS\): field 1: string field, expected number$/m,
  );
  assertRejected(
    withExec({ op: OP.SETHOSTNAME, fields: [{ s: 'a' }, { s: 'b' }] }),
    /op 0 \(SETHOSTNAME\): 2 fields, expected 1$/m,
  );
  assertRejected(withExec({ op: OP.DETACH, fields: [{ n: 1 }] }), /op 0 \(DETACH\): 1 fields, expected 0$/m);
  assertRejected(
    withExec({ op: OP.SECCOMP, fields: [{ n: 0 }, { s: 'not bytes' }] }),
    /op 0 \(SECCOMP\): field 1: string field, expected bytes$/m,
  );
  assertRejected(
    withExec({ op: OP.SETGROUPS_IDS, fields: [{ n: 1 }, { s: 'two' }] }),
    /op 0 \(SETGROUPS_IDS\): field 1: string field, expected number$/m,
  );
  assertRejected(
    encodePlan([{ op: OP.EXEC, fields: [{ n: 1 }] }]),
    /op 0 \(EXEC\): 1 fields, expected at least 2 \(argc, arg0\)$/m,
  );
  assertRejected(
    encodePlan([{ op: OP.EXEC, fields: [{ n: 3 }, { s: '/bin/sh' }, { s: 'PATH=/bin' }] }]),
    /op 0 \(EXEC\): argc 3 does not fit the 2 strings that follow \(need 1\.\.2\)$/m,
  );
  assertRejected(
    encodePlan([{ op: OP.EXEC, fields: [{ n: 1 }, { n: 2 }] }]),
    /op 0 \(EXEC\): field 1: number field, expected string$/m,
  );
  assertRejected(
    withExec({ op: OP.SECCOMP_LISTENER, fields: [{ s: '/run/agent.sock' }] }),
    /op 0 \(SECCOMP_LISTENER\): 1 fields, expected at least 2$/m,
  );
  assertRejected(
    withExec({
      op: OP.HOOK,
      fields: [{ s: 'startContainer' }, { s: '/bin/hook' }, { n: 0 }, { n: 1 }, { n: 0 }],
    }),
    /op 0 \(HOOK\): 5 fields, expected at least 6$/m,
  );
  assertRejected(
    withExec({
      op: OP.HOOK,
      fields: [{ s: 'startContainer' }, { s: '/bin/hook' }, { n: 0 }, { n: 1 }, { n: 0 }, { n: 1 }],
    }),
    /op 0 \(HOOK\): field 5: number field, expected string$/m,
  );
});

test('plans that could not be launched are rejected before anything runs', () => {
  assertRejected(encodePlan([]), /the plan must end with EXEC$/m);
  assertRejected(encodePlan([ops.sethostname('x')]), /the plan must end with EXEC$/m);
  assertRejected(encodePlan([exec, exec]), /op 1 \(EXEC\): may appear only once \(also op 0\)$/m);
  assertRejected(
    withExec(ops.exitFile('/a'), ops.exitFile('/b')),
    /op 1 \(EXIT_FILE\): may appear only once \(also op 0\)$/m,
  );
  assertRejected(withExec(ops.waitStart()), /op 0 \(WAIT_START\): needs an earlier OPEN_START_FIFO$/m);
  assertRejected(
    withExec(ops.runtimeHooks(), ops.runtimeHooks()),
    /op 1 \(RUNTIME_HOOKS\): may appear only once \(also op 0\)$/m,
  );
  // The caller no longer listens on the sync channel once WAIT_START has said `created`.
  assertRejected(
    withExec(ops.openStartFifo('/f'), ops.waitStart(), ops.runtimeHooks()),
    /op 2 \(RUNTIME_HOOKS\): must come before WAIT_START$/m,
  );
  assertRejected(
    withExec(ops.cloneIntoCgroup('/a'), ops.cloneIntoCgroup('/b')),
    /op 1 \(CLONE_INTO_CGROUP\): may appear only once \(also op 0\)$/m,
  );
  assertRejected(withExec(ops.cgroupJoin('tasks')), /op 0 \(CGROUP_JOIN\): path must be absolute$/m);
  assertRejected(withExec(ops.cloneIntoCgroup('')), /op 0 \(CLONE_INTO_CGROUP\): path must be absolute$/m);
  assertRejected(
    withExec(ops.waitStart(), ops.openStartFifo('/f')),
    /op 0 \(WAIT_START\): needs an earlier OPEN_START_FIFO$/m,
  );
  assertRejected(
    withExec(ops.setupTerminal()),
    /op 0 \(SETUP_TERMINAL\): needs CONSOLE_SOCKET or TERMINAL_PROXY$/m,
  );
  assertRejected(
    withExec(ops.consoleSocket('/s', 1, 1), ops.terminalProxy(1, 1)),
    /op 1 \(TERMINAL_PROXY\): conflicts with CONSOLE_SOCKET$/m,
  );
  assertRejected(
    withExec({ op: OP.SETGROUPS, fields: [{ s: 'maybe' }] }),
    /op 0 \(SETGROUPS\): value must be "allow" or "deny"$/m,
  );
  assertRejected(
    withExec(ops.cloneFlags(0x20000000 | 0x100)),
    /op 0 \(CLONE_FLAGS\): flags 0x20000100 include non-namespace flags 0x100$/m,
  );
  assertRejected(withExec(ops.joinNs('/x', 0x3)), /op 0 \(JOIN_NS\): nstype 0x3 is not one namespace flag$/m);
  assertRejected(
    withExec(ops.mountInRoot('/r', '/d', 's', '', 0n, '', 3)),
    /op 0 \(MOUNT_IN_ROOT\): create must be 0, 1 or 2, not 3$/m,
  );
  assertRejected(withExec(ops.setuid(0xffffffff)), /op 0 \(SETUID\): id 4294967295 is out of range$/m);
  assertRejected(
    withExec(ops.seccomp(0, new Uint8Array(12))),
    /op 0 \(SECCOMP\): program is 12 bytes, expected 1 to 4096 instructions of 8 bytes$/m,
  );
  assertRejected(
    withExec(ops.seccomp(8, new Uint8Array(8))),
    /op 0 \(SECCOMP\): NEW_LISTENER needs SECCOMP_LISTENER$/m,
  );
  assertRejected(
    withExec(ops.seccompListener('/run/agent.sock', ['{}']), ops.seccomp(0, new Uint8Array(8))),
    /op 0 \(SECCOMP_LISTENER\): needs a SECCOMP op with NEW_LISTENER$/m,
  );
  assertRejected(
    withExec(
      ops.seccompListener('/run/agent.sock', ['{}']),
      ops.seccomp(8, new Uint8Array(8)),
      ops.seccomp(8, new Uint8Array(8)),
    ),
    /op 2 \(SECCOMP\): only one filter may ask for a listener \(also op 1\)$/m,
  );
  assertRejected(
    withExec(ops.seccompListener('agent.sock', ['{}']), ops.seccomp(8, new Uint8Array(8))),
    /op 0 \(SECCOMP_LISTENER\): path must be absolute and at most 107 bytes \(a unix socket address\)$/m,
  );
  assertRejected(
    withExec(ops.seccompListener(`/${'x'.repeat(107)}`, ['{}']), ops.seccomp(8, new Uint8Array(8))),
    /op 0 \(SECCOMP_LISTENER\): path must be absolute and at most 107 bytes/m,
  );
  const hook = (
    name: string,
    path: string,
    timeout: number,
    args: string[],
    env: string[],
    state: string[],
  ) => withExec(ops.hook(name, { path, args, env, timeout }, state));
  assertRejected(hook('', '/h', 0, ['h'], [], ['{}']), /op 0 \(HOOK\): needs a name and an absolute path$/m);
  assertRejected(hook('x', 'h', 0, ['h'], [], ['{}']), /op 0 \(HOOK\): needs a name and an absolute path$/m);
  assertRejected(
    hook('x', '/h', 2147484, ['h'], [], ['{}']),
    /op 0 \(HOOK\): timeout 2147484 is more than 2147483 seconds$/m,
  );
  assertRejected(
    hook('x', '/h', 0, ['h'], ['A=1'], []),
    /op 0 \(HOOK\): argc 1 and envc 1 do not fit the 2 strings that follow \(need 1 or more arguments and a state\)$/m,
  );
  assertRejected(
    withExec({
      op: OP.HOOK,
      fields: [{ s: 'x' }, { s: '/h' }, { n: 0 }, { n: 0 }, { n: 0 }, { s: '{}' }],
    }),
    /op 0 \(HOOK\): argc 0 and envc 0 do not fit the 1 strings that follow/m,
  );
  assertRejected(withExec(ops.attachSocket('/run/a.sock')), /op 0 \(ATTACH_SOCKET\): needs STDIO_PIPES$/m);
  assertRejected(
    withExec(ops.consoleSocket('/s', 1, 1), ops.stdioPipes()),
    /op 1 \(STDIO_PIPES\): conflicts with CONSOLE_SOCKET$/m,
  );
  assertRejected(
    withExec(ops.stdioPipes(), ops.logJsonFile('/log', 0, 0)),
    /op 1 \(LOG_JSON_FILE\): needs a path and maxFiles from 1 to 1000$/m,
  );
  assertRejected(
    withExec(ops.stdioPipes(), ops.attachSocket(`/run/${'x'.repeat(103)}`)),
    /op 1 \(ATTACH_SOCKET\): path must be 1 to 107 bytes \(a unix socket address\)$/m,
  );
});

test('random corruptions of a valid plan are decoded or rejected, never crash', () => {
  const plan = encodePlan(everyOp);
  let seed = 0x2545f491;
  const random = (limit: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % limit;
  };
  for (let round = 0; round < 150; round++) {
    const copy = Buffer.from(plan);
    for (let flips = 1 + random(4); flips > 0; flips--) copy[random(copy.length)] = random(256);
    const bytes = round % 3 === 0 ? copy.subarray(0, random(copy.length)) : copy;
    const result = decode(bytes);
    assert.equal(result.signal, null, `round ${round}: the decoder crashed`);
    assert.ok(result.status === 0 || result.status === 1, `round ${round}: exit ${result.status}`);
    if (result.status === 1)
      assert.match(result.stderr, /^berth-shim: decode \S+: [^\n]+\n$/, `round ${round}`);
  }
});

test('launch reports a malformed plan on the sync fd before creating anything', async () => {
  const shim = spawn(SHIM, ['launch'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
  (shim.stdio[3] as Writable).end(Buffer.from('BSP2 definitely not a plan'));
  let sync = '';
  (shim.stdio[4] as Readable).setEncoding('utf8').on('data', (chunk: string) => (sync += chunk));
  const code = await new Promise<number | null>((resolve) => shim.on('close', (status) => resolve(status)));
  assert.equal(code, 1);
  assert.equal(sync, 'error 0 PLAN 22 bad magic 42 53 50 32, expected "BSP1"\n');
});

test('launch with an empty plan (a warm shim whose caller went away) exits 0 and says nothing', async () => {
  const shim = spawn(SHIM, ['launch'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
  (shim.stdio[3] as Writable).end();
  let said = '';
  for (const fd of [1, 2, 4])
    (shim.stdio[fd] as Readable).setEncoding('utf8').on('data', (c: string) => (said += c));
  const code = await new Promise<number | null>((resolve) => shim.on('close', (status) => resolve(status)));
  assert.equal(code, 0);
  assert.equal(said, '');
});

test('--version and usage', () => {
  assert.match(
    spawnSync(SHIM, ['--version'], { encoding: 'utf8' }).stdout,
    /^berth-shim version \d+\.\d+\.\d+\n$/,
  );
  const usage = spawnSync(SHIM, ['frobnicate'], { encoding: 'utf8' });
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /usage: berth-shim --version \| launch \| decode FILE/);
});

/**
 * berth-shim holding the container's stdio (STDIO_PIPES, OPEN_STDIN, LOG_JSON_FILE, ATTACH_SOCKET):
 * the json-file log it writes, the attach socket's clients, stdin, resize and the exit frame.
 * Hand-built plans (src/runtime/plan.ts) run a busybox root filesystem; the test speaks the sync
 * protocol of docs/shim-plan.md on fd 4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BUSYBOX_PATH_ENV, busyboxEntries } from '../../fixtures/busybox.js';
import { materialize } from '../../fixtures/tree.js';
import type { TarEntry } from '../../src/archive/tar-writer.js';
import { attach, type AttachSession } from '../../src/runtime/attach.js';
import { readJsonLog, type LogEntry } from '../../src/runtime/json-log.js';
import { CREATE, encodePlan, ops, type PlanOp } from '../../src/runtime/plan.js';
import { createSandbox, isRoot, type Sandbox } from '../helpers/sandbox.js';

const SHIM =
  process.env.BERTH_SHIM ?? fileURLToPath(new URL('../../../native/build/berth-shim', import.meta.url));
const skip = !isRoot() ? 'needs root' : !existsSync(SHIM) ? `${SHIM} is not built (make -C native)` : false;

const NS = { mount: 0x00020000, uts: 0x04000000, ipc: 0x08000000, pid: 0x20000000, net: 0x40000000 };
const MS = { NOSUID: 2n, NODEV: 4n, NOEXEC: 8n, BIND: 0x1000n, REC: 0x4000n, PRIVATE: 0x40000n };
const WAIT_MS = 60_000;

let entries: TarEntry[] | undefined;

async function makeRootfs(sandbox: Sandbox): Promise<string> {
  entries ??= await busyboxEntries();
  const rootfs = join(sandbox.root, 'rootfs');
  await materialize(entries, rootfs);
  return rootfs;
}

/** New namespaces, /proc, a tmpfs /dev with null (and a devpts for a terminal), pivot_root, sh -c script. */
function containerPlan(rootfs: string, script: string, setup: PlanOp[], terminal = false): PlanOp[] {
  return [
    ops.cloneFlags(NS.mount | NS.uts | NS.ipc | NS.pid | NS.net),
    ...setup,
    ops.mount('', '/', '', MS.REC | MS.PRIVATE, ''),
    ops.mount(rootfs, rootfs, '', MS.BIND | MS.REC, ''),
    ops.mountInRoot(rootfs, '/proc', 'proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC, '', CREATE.DIR),
    ops.mountInRoot(rootfs, '/dev', 'tmpfs', 'tmpfs', MS.NOSUID, 'mode=755', CREATE.DIR),
    ops.mountInRoot(rootfs, '/dev/null', '/dev/null', '', MS.BIND, '', CREATE.FILE),
    ...(terminal
      ? [
          ops.mountInRoot(
            rootfs,
            '/dev/pts',
            'devpts',
            'devpts',
            MS.NOSUID | MS.NOEXEC,
            'newinstance,ptmxmode=0666,mode=0620',
            CREATE.DIR,
          ),
          ops.symlinkInRoot(rootfs, '/dev/ptmx', 'pts/ptmx'),
        ]
      : []),
    ops.pivotRoot(rootfs),
    ...(terminal ? [ops.setupTerminal()] : []),
    ops.exec(['/bin/sh', '-c', script], [BUSYBOX_PATH_ENV]),
  ];
}

interface ShimRun {
  code: number | null;
  lines: string[];
  stdout: string;
  stderr: string;
}

interface Started {
  shimPid: number;
  /** init's pid (after `pid N`). */
  pid: () => number;
  done: Promise<ShimRun>;
}

/**
 * Start the shim; `beforeGo` runs at `pid N` (the attach socket exists, nothing runs yet) before
 * the answer `go`. `done` rejects when the shim outlives WAIT_MS (and then kills it).
 */
function startShim(sandbox: Sandbox, plan: PlanOp[], beforeGo?: () => Promise<void>): Started {
  const shim = spawn(SHIM, ['launch'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'] });
  if (shim.pid) sandbox.trackProcess(shim.pid);
  const run: ShimRun = { code: null, lines: [], stdout: '', stderr: '' };
  let pid = 0;
  shim.stdout?.setEncoding('utf8').on('data', (chunk: string) => (run.stdout += chunk));
  shim.stderr?.setEncoding('utf8').on('data', (chunk: string) => (run.stderr += chunk));
  (shim.stdio[3] as Writable).end(encodePlan(plan));
  const sync = shim.stdio[4] as Socket;
  let buffered = '';
  let failure: unknown;
  sync.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      run.lines.push(line);
      const match = /^pid (\d+)$/.exec(line);
      if (!match) continue;
      pid = Number(match[1]);
      sandbox.trackProcess(pid);
      (beforeGo ?? (() => Promise.resolve()))().then(
        () => sync.write('go\n'),
        (err: unknown) => {
          failure = err;
          sync.write('abort\n');
        },
      );
    }
  });
  const done = new Promise<ShimRun>((resolve, reject) => {
    const timer = setTimeout(() => {
      shim.kill('SIGKILL');
      if (pid) process.kill(pid, 'SIGKILL');
      reject(new Error(`berth-shim did not finish within ${WAIT_MS} ms; lines: ${run.lines.join(' | ')}`));
    }, WAIT_MS);
    shim.on('close', (code) => {
      clearTimeout(timer);
      run.code = code;
      if (failure) reject(failure);
      else resolve(run);
    });
  });
  done.catch(() => undefined); // awaited by the test; never an unhandled rejection if it fails first
  return { shimPid: shim.pid ?? 0, pid: () => pid, done };
}

/** Everything a client receives, per stream, and a way to wait for some stdout (a pattern, or a length). */
function collect(session: AttachSession): {
  text: Record<'stdout' | 'stderr', string>;
  until: (want: RegExp | number) => Promise<void>;
} {
  const text = { stdout: '', stderr: '' };
  const met = (want: RegExp | number): boolean =>
    typeof want === 'number' ? text.stdout.length >= want : want.test(text.stdout);
  const waiters: { want: RegExp | number; resolve: () => void }[] = [];
  session.output.on('data', ({ stream, data }: { stream: 'stdout' | 'stderr'; data: Buffer }) => {
    text[stream] += data.toString('latin1');
    for (const waiter of waiters.splice(0)) {
      if (met(waiter.want)) waiter.resolve();
      else waiters.push(waiter);
    }
  });
  const until = (want: RegExp | number): Promise<void> =>
    met(want)
      ? Promise.resolve()
      : new Promise((resolve, reject) => {
          waiters.push({ want, resolve });
          session.output.once('end', () =>
            reject(new Error(`the output ended without ${want}: ${JSON.stringify(text.stdout.slice(-200))}`)),
          );
        });
  return { text, until };
}

const RFC3339_NANO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{0,8}[1-9])?Z$/;

async function logLines(path: string): Promise<string[]> {
  return (await readFile(path, 'utf8')).split('\n').slice(0, -1);
}

async function readAll(path: string): Promise<LogEntry[]> {
  const result: LogEntry[] = [];
  for await (const entry of readJsonLog(path)) result.push(entry);
  return result;
}

const numbers = (from: number, to: number): string =>
  Array.from({ length: to - from + 1 }, (_, i) => `${from + i}\n`).join('');

test(
  'stdout and stderr become json-file lines in Docker format, escaped like Docker',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const log = join(sandbox.root, 'c-json.log');
    const script = [
      'echo out1',
      'echo err1 >&2',
      // tab, quote, HTML characters, backslash, a control character, U+2028, invalid UTF-8, é
      'printf \'tab\\there "q" <&> \\\\ \\001 \\342\\200\\250 \\377 \\303\\251\\n\'',
      "printf 'no-newline'",
    ].join('; ');
    const before = Date.now();
    const run = await startShim(
      sandbox,
      containerPlan(rootfs, script, [ops.stdioPipes(), ops.logJsonFile(log, 0, 1)]),
    ).done;
    const after = Date.now();
    assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
    assert.equal(run.stdout, '', "the container's output is not the shim's");
    const lines = await logLines(log);
    const parsed = lines.map((line) => JSON.parse(line) as { log: string; stream: string; time: string });
    const of = (stream: string): string[] => parsed.filter((e) => e.stream === stream).map((e) => e.log);
    assert.deepEqual(of('stdout'), ['out1\n', 'tab\there "q" <&> \\ \u0001 \u2028 \ufffd é\n', 'no-newline']);
    assert.deepEqual(of('stderr'), ['err1\n']);
    assert.ok(
      lines.includes(
        String.raw`{"log":"tab\u0009here \"q\" \u003c\u0026\u003e \\ \u0001 \u2028 \ufffd é\n","stream":"stdout","time":"` +
          `${parsed[lines.findIndex((l) => l.includes('tab'))]?.time}"}`,
      ),
      `byte-exact Docker line: ${lines.join('\n')}`,
    );
    for (const entry of parsed) {
      assert.deepEqual(Object.keys(entry), ['log', 'stream', 'time']);
      assert.match(entry.time, RFC3339_NANO);
      const ms = Date.parse(entry.time);
      assert.ok(ms >= before - 1 && ms <= after + 1, `${entry.time} within the run`);
    }
    // The reader gives back the same entries.
    assert.deepEqual(
      (await readAll(log)).map((e) => [e.stream, e.log, e.time]),
      parsed.map((e) => [e.stream, e.log, e.time]),
    );
  },
);

test('a 10 MB burst on stdout and stderr loses no line', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const log = join(sandbox.root, 'burst.log');
  const count = 700_000; // ~4.9 MB per stream
  const run = await startShim(
    sandbox,
    containerPlan(rootfs, `seq 1 ${count} >&2 & seq 1 ${count}; wait`, [
      ops.stdioPipes(),
      ops.logJsonFile(log, 0, 1),
    ]),
  ).done;
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  const expected = numbers(1, count);
  const streams = { stdout: [] as string[], stderr: [] as string[] };
  for (const line of await logLines(log)) {
    const entry = JSON.parse(line) as { log: string; stream: 'stdout' | 'stderr' };
    streams[entry.stream].push(entry.log);
  }
  assert.equal(streams.stdout.length, count);
  assert.equal(streams.stderr.length, count);
  assert.ok(streams.stdout.join('') === expected, 'stdout complete and in order');
  assert.ok(streams.stderr.join('') === expected, 'stderr complete and in order');
});

test(
  'rotation keeps at most maxFiles files, each within maxSize, and no line is lost',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const dir = join(sandbox.root, 'logs');
    const log = join(dir, 'c-json.log');
    const maxSize = 64 * 1024;
    const count = 30_000;
    await mkdir(dir);
    const run = await startShim(
      sandbox,
      containerPlan(rootfs, `seq 1 ${count}`, [ops.stdioPipes(), ops.logJsonFile(log, maxSize, 3)]),
    ).done;
    assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
    assert.deepEqual((await readdir(dir)).sort(), ['c-json.log', 'c-json.log.1', 'c-json.log.2']);
    const logs: string[] = [];
    for (const name of ['c-json.log.2', 'c-json.log.1', 'c-json.log']) {
      const size = (await stat(join(dir, name))).size;
      assert.ok(size > 0 && size <= maxSize, `${name} is ${size} bytes`);
      for (const line of await logLines(join(dir, name)))
        logs.push((JSON.parse(line) as { log: string }).log);
    }
    // What is kept is the unbroken end of the output.
    const first = Number(logs[0]);
    assert.ok(first > 1, 'older files were rotated away');
    assert.equal(logs.join(''), numbers(first, count));
    assert.equal((await readAll(log)).map((e) => e.log).join(''), numbers(first, count));
  },
);

test('lines longer than 16 KiB are split into entries of 16 KiB', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const log = join(sandbox.root, 'long.log');
  const run = await startShim(
    sandbox,
    containerPlan(rootfs, "yes a | head -n 40000 | tr -d '\\n'; echo; echo short", [
      ops.stdioPipes(),
      ops.logJsonFile(log, 0, 1),
    ]),
  ).done;
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  const logs = (await readAll(log)).map((e) => e.log);
  assert.deepEqual(logs, [
    'a'.repeat(16384),
    'a'.repeat(16384),
    'a'.repeat(40000 - 2 * 16384) + '\n',
    'short\n',
  ]);
});

test(
  'attach clients share the output, send stdin, come and go; close-stdin ends cat; the exit frame has the code',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const socketPath = join(sandbox.root, 'attach.sock');
    const log = join(sandbox.root, 'attach.log');
    let a: AttachSession | undefined;
    let b: AttachSession | undefined;
    let socketMode = 0;
    const started = startShim(
      sandbox,
      containerPlan(rootfs, 'echo hello-attach; cat; echo cat-ended >&2; exit 3', [
        ops.stdioPipes(),
        ops.openStdin(),
        ops.logJsonFile(log, 0, 1),
        ops.attachSocket(socketPath),
      ]),
      async () => {
        socketMode = (await stat(socketPath)).mode & 0o777;
        a = await attach(socketPath);
        b = await attach(socketPath);
      },
    );
    // Resolved at `pid N`, before `go`.
    for (let i = 0; i < 600 && !(a && b); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(a && b, 'both clients attached');
    assert.equal(socketMode, 0o600);
    const outA = collect(a);
    const outB = collect(b);
    await Promise.all([outA.until(/^hello-attach\n$/m), outB.until(/^hello-attach\n$/m)]);
    await a.write('ping\n');
    await Promise.all([outA.until(/^ping$/m), outB.until(/^ping$/m)]);
    // b goes away (as berthd killed with SIGKILL would); c comes later and sees only what follows.
    b.close();
    const c = await attach(socketPath);
    const outC = collect(c);
    await a.write('pong\n');
    await Promise.all([outA.until(/^pong$/m), outC.until(/^pong$/m)]);
    await a.closeStdin();
    const [exitA, exitB, exitC] = await Promise.all([a.exit, b.exit, c.exit]);
    const run = await started.done;
    assert.equal(run.code, 3, run.stderr);
    assert.equal(exitA, 3);
    assert.equal(exitB, undefined, 'a client that left gets no exit frame');
    assert.equal(exitC, 3);
    assert.equal(outA.text.stdout, 'hello-attach\nping\npong\n');
    assert.equal(outA.text.stderr, 'cat-ended\n');
    assert.equal(outB.text.stdout, 'hello-attach\nping\n');
    assert.equal(outC.text.stdout, 'pong\n');
    assert.equal(existsSync(socketPath), false, 'the socket is removed when the shim exits');
    assert.deepEqual(
      (await readAll(log)).map((e) => e.log),
      ['hello-attach\n', 'ping\n', 'pong\n', 'cat-ended\n'],
    );
  },
);

test(
  'a client that never reads is dropped and holds up neither the container nor other clients',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const socketPath = join(sandbox.root, 'attach.sock');
    const log = join(sandbox.root, 'slow.log');
    const shimLog = join(sandbox.root, 'shim.log');
    // cat echoes what the reading client sends, chunk by chunk: the container runs as fast as
    // that client reads, and 4 MiB go past the client that never reads.
    const chunks = Array.from({ length: 64 }, (_, i) =>
      Array.from({ length: 4096 }, (_, j) => `${i}:${String(j).padStart(12, '.')}\n`).join(''),
    );
    let stalled: AttachSession | undefined;
    let reader: AttachSession | undefined;
    const started = startShim(
      sandbox,
      containerPlan(rootfs, 'cat', [
        ops.logFile(shimLog),
        ops.stdioPipes(),
        ops.openStdin(),
        ops.logJsonFile(log, 0, 1),
        ops.attachSocket(socketPath),
      ]),
      async () => {
        stalled = await attach(socketPath); // its output is not consumed until the end
        reader = await attach(socketPath);
      },
    );
    for (let i = 0; i < 600 && !(stalled && reader); i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(stalled && reader);
    const out = collect(reader);
    let sent = '';
    for (const chunk of chunks) {
      sent += chunk;
      await reader.write(chunk);
      await out.until(sent.length);
    }
    await reader.closeStdin();
    const run = await started.done;
    assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
    assert.equal(await reader.exit, 0);
    assert.ok(out.text.stdout === sent, 'the reading client got everything');
    let late = '';
    for await (const chunk of stalled.output as AsyncIterable<{ data: Buffer }>)
      late += chunk.data.toString();
    assert.equal(await stalled.exit, undefined, 'the stalled client was dropped before the exit frame');
    assert.ok(late.length < sent.length && sent.startsWith(late), 'it got an unbroken prefix');
    assert.match(await readFile(shimLog, 'utf8'), /attach client dropped: it fell more than 1 MiB behind/);
    assert.ok((await readAll(log)).map((e) => e.log).join('') === sent, 'the log lost nothing');
  },
);

test('a terminal: resize reaches the pty, stdin is echoed, close-stdin is EOF', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const socketPath = join(sandbox.root, 'attach.sock');
  const log = join(sandbox.root, 'tty.log');
  let client: AttachSession | undefined;
  const started = startShim(
    sandbox,
    containerPlan(
      rootfs,
      'stty size; echo ready; read x; stty size; cat; echo cat-done',
      [
        ops.terminalProxy(24, 80),
        ops.stdioPipes(),
        ops.openStdin(),
        ops.logJsonFile(log, 0, 1),
        ops.attachSocket(socketPath),
      ],
      true,
    ),
    async () => {
      client = await attach(socketPath);
    },
  );
  for (let i = 0; i < 600 && !client; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(client);
  const out = collect(client);
  await out.until(/^ready\r$/m);
  await client.resize(40, 120);
  await client.write('go\n');
  await out.until(/^40 120\r$/m);
  await client.write('typed\n');
  await out.until(/^typed\r\n(.|\n)*typed\r$/m); // the pty's echo, then cat's
  await client.closeStdin();
  const exit = await client.exit;
  const run = await started.done;
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  assert.equal(exit, 0);
  const text = out.text.stdout.replace(/\r/g, '');
  assert.match(text, /^24 80\n/);
  assert.match(text, /^cat-done$/m);
  assert.equal(out.text.stderr, '', 'a terminal has one output stream');
  const logged = await readAll(log);
  assert.ok(logged.every((e) => e.stream === 'stdout'));
  assert.equal(logged.map((e) => e.log).join(''), out.text.stdout);
});

test('the monitor stays under 1 MiB resident with the log and two clients attached', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const socketPath = join(sandbox.root, 'attach.sock');
  const log = join(sandbox.root, 'rss.log');
  const clients: AttachSession[] = [];
  const started = startShim(
    sandbox,
    containerPlan(rootfs, 'seq 1 100000; echo all-written; exec sleep 600', [
      ops.stdioPipes(),
      ops.openStdin(),
      ops.logJsonFile(log, 1 << 20, 2),
      ops.attachSocket(socketPath),
    ]),
    async () => {
      clients.push(await attach(socketPath), await attach(socketPath));
    },
  );
  for (let i = 0; i < 600 && clients.length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(clients.length, 2);
  const outs = clients.map(collect);
  await Promise.all(outs.map((out) => out.until(/^all-written$/m)));
  const status = await readFile(`/proc/${started.shimPid}/status`, 'utf8');
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  t.diagnostic(`berth-shim VmRSS with the log and two clients: ${rssKiB} kB`);
  process.kill(started.pid(), 'SIGKILL');
  const exits = await Promise.all(clients.map((client) => client.exit));
  const run = await started.done;
  assert.equal(run.code, 137);
  assert.deepEqual(exits, [137, 137]);
  assert.ok(rssKiB > 0 && rssKiB < 1024, `VmRSS ${rssKiB} kB`);
});

test('an attach socket that cannot be created is reported against its operation', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const plan = containerPlan(rootfs, 'echo never', [
    ops.stdioPipes(),
    ops.attachSocket(join(sandbox.root, 'missing-dir', 'attach.sock')),
  ]);
  const run = await startShim(sandbox, plan).done;
  assert.equal(run.code, 1);
  assert.equal(run.lines.length, 1, run.lines.join('\n'));
  assert.match(
    run.lines[0] ?? '',
    /^error 2 ATTACH_SOCKET 2 listening on attach socket \S+missing-dir\/attach\.sock: No such file or directory$/,
  );
});

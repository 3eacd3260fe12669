/**
 * berth-shim against the real kernel: hand-built plans (src/runtime/plan.ts) run a busybox root
 * filesystem in new namespaces, and the test checks what the container sees and what the host
 * keeps. Each test speaks the sync protocol of docs/shim-plan.md on fd 4.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, readlink, stat, symlink, writeFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { BUSYBOX_PATH_ENV, busyboxEntries } from '../../fixtures/busybox.js';
import { materialize } from '../../fixtures/tree.js';
import type { TarEntry } from '../../src/archive/tar-writer.js';
import { CREATE, encodePlan, ops, type PlanOp } from '../../src/runtime/plan.js';
import { execOk } from '../helpers/exec.js';
import { createSandbox, isRoot, listMounts, type Sandbox } from '../helpers/sandbox.js';

const SHIM =
  process.env.BERTH_SHIM ?? fileURLToPath(new URL('../../../native/build/berth-shim', import.meta.url));
const skip = !isRoot() ? 'needs root' : !existsSync(SHIM) ? `${SHIM} is not built (make -C native)` : false;

const NS = {
  mount: 0x00020000,
  uts: 0x04000000,
  ipc: 0x08000000,
  user: 0x10000000,
  pid: 0x20000000,
  net: 0x40000000,
  time: 0x00000080,
};
const MS = { RDONLY: 1n, NOSUID: 2n, NODEV: 4n, NOEXEC: 8n, BIND: 0x1000n, REC: 0x4000n, PRIVATE: 0x40000n };
const ALL_NS = NS.mount | NS.uts | NS.ipc | NS.pid | NS.net;
const WAIT_MS = 30_000;

let entries: TarEntry[] | undefined;

/** A busybox root filesystem in the sandbox. */
async function makeRootfs(sandbox: Sandbox): Promise<string> {
  entries ??= await busyboxEntries();
  const rootfs = join(sandbox.root, 'rootfs');
  await materialize(entries, rootfs);
  return rootfs;
}

interface PlanParts {
  clone?: number;
  /** Shim set-up ops (opcode < 100). */
  setup?: PlanOp[];
  /** Container ops before pivot_root (host paths still visible). */
  beforePivot?: PlanOp[];
  /** Container ops after pivot_root. */
  afterPivot?: PlanOp[];
}

/** The usual shape: namespaces, a private mount tree, /proc, a tmpfs /dev with null, pivot_root, sh -c script. */
function containerPlan(rootfs: string, script: string | string[], parts: PlanParts = {}): PlanOp[] {
  const args = typeof script === 'string' ? ['/bin/sh', '-c', script] : script;
  return [
    ops.cloneFlags(parts.clone ?? ALL_NS),
    ...(parts.setup ?? []),
    ops.mount('', '/', '', MS.REC | MS.PRIVATE, ''),
    ops.mount(rootfs, rootfs, '', MS.BIND | MS.REC, ''),
    ops.mountInRoot(rootfs, '/proc', 'proc', 'proc', MS.NOSUID | MS.NODEV | MS.NOEXEC, '', CREATE.DIR),
    ops.mountInRoot(rootfs, '/dev', 'tmpfs', 'tmpfs', MS.NOSUID, 'mode=755', CREATE.DIR),
    ops.mountInRoot(rootfs, '/dev/null', '/dev/null', '', MS.BIND, '', CREATE.FILE),
    ...(parts.beforePivot ?? []),
    ops.pivotRoot(rootfs),
    ...(parts.afterPivot ?? []),
    ops.exec(args, [BUSYBOX_PATH_ENV]),
  ];
}

interface ShimResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Every line the shim wrote on fd 4. */
  lines: string[];
  stdout: string;
  stderr: string;
  /** The container's init pid from `pid N`. */
  pid: number;
  /** The shim's pid. */
  shimPid: number;
  /** What arrived on the extra fds (5, 6, ...). */
  extra: string[];
}

interface RunOptions {
  /** The answer to `pid N`. */
  answer?: 'go' | 'abort';
  /** Called at `created` (the process waits at WAIT_START, or is about to exec). */
  onCreated?: (pid: number, shim: ChildProcess) => Promise<void>;
  /** Called when the shim closes fd 4 (after `created`: the process has exec'd or waits at WAIT_START). */
  onSyncEnd?: (pid: number, shim: ChildProcess) => Promise<void>;
  /** More fds for the shim, from 5 on (PRESERVE_FDS). */
  extraFds?: number;
}

/** Start `berth-shim launch` with a plan on fd 3 and speak the sync protocol on fd 4. */
async function runShim(sandbox: Sandbox, plan: PlanOp[], options: RunOptions = {}): Promise<ShimResult> {
  const stdio = Array.from({ length: 5 + (options.extraFds ?? 0) }, () => 'pipe' as const);
  const shim = spawn(SHIM, ['launch'], { stdio });
  if (shim.pid) sandbox.trackProcess(shim.pid);
  const result: ShimResult = {
    code: null,
    signal: null,
    lines: [],
    stdout: '',
    stderr: '',
    pid: 0,
    shimPid: shim.pid ?? 0,
    extra: [],
  };
  const callbacks: Promise<void>[] = [];
  shim.stdout?.setEncoding('utf8').on('data', (chunk: string) => (result.stdout += chunk));
  shim.stderr?.setEncoding('utf8').on('data', (chunk: string) => (result.stderr += chunk));
  for (let i = 0; i < (options.extraFds ?? 0); i++) {
    result.extra.push('');
    (shim.stdio[5 + i] as Readable)
      .setEncoding('utf8')
      .on('data', (chunk: string) => (result.extra[i] += chunk));
  }
  (shim.stdio[3] as Writable).end(encodePlan(plan));
  const sync = shim.stdio[4] as Socket;
  let buffered = '';
  sync.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let newline: number;
    while ((newline = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      result.lines.push(line);
      const pid = /^pid (\d+)$/.exec(line);
      if (pid) {
        result.pid = Number(pid[1]);
        sandbox.trackProcess(result.pid);
        sync.write(`${options.answer ?? 'go'}\n`);
      }
      if (line === 'created' && options.onCreated) callbacks.push(options.onCreated(result.pid, shim));
    }
  });
  sync.on('end', () => {
    if (options.onSyncEnd) callbacks.push(options.onSyncEnd(result.pid, shim));
  });
  const closed = new Promise<void>((resolve) =>
    shim.on('close', (code, signal) => {
      result.code = code;
      result.signal = signal;
      resolve();
    }),
  );
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      shim.kill('SIGKILL');
      if (result.pid) process.kill(result.pid, 'SIGKILL');
      reject(
        new Error(
          `berth-shim did not finish within ${WAIT_MS} ms; lines so far: ${result.lines.join(' | ')}`,
        ),
      );
    }, WAIT_MS);
  });
  try {
    await Promise.race([closed, deadline]);
    await Promise.race([Promise.all(callbacks), deadline]);
  } finally {
    clearTimeout(timer);
  }
  return result;
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function mountsUnder(path: string): Promise<string[]> {
  return (await listMounts()).map((m) => m.mountPoint).filter((p) => p === path || p.startsWith(path + '/'));
}

interface ExitRecord {
  pid: number;
  exitCode: number;
  signal: number;
  finishedAt: string;
}

const readExit = async (path: string): Promise<ExitRecord> =>
  JSON.parse(await readFile(path, 'utf8')) as ExitRecord;

test(
  'init is pid 1 in new pid, mount, uts, ipc and net namespaces, pivoted into the rootfs with /proc',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const exitFile = join(sandbox.root, 'exit.json');
    const script = [
      'echo pid=$$',
      'echo host=$(hostname)',
      'for ns in pid mnt uts ipc net; do echo ns-$ns=$(readlink /proc/self/ns/$ns); done',
      `test -e ${sandbox.root} && echo sees-host-path`,
      'test -x /bin/busybox && echo has-busybox',
      'echo proc=$(grep -c " /proc " /proc/self/mountinfo)',
    ].join('; ');
    const run = await runShim(
      sandbox,
      containerPlan(rootfs, script, {
        setup: [ops.exitFile(exitFile)],
        afterPivot: [ops.sethostname('berth-box')],
      }),
    );
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(run.lines, [`pid ${run.pid}`, 'created']);
    const out = run.stdout;
    assert.match(out, /^pid=1$/m);
    assert.match(out, /^host=berth-box$/m);
    assert.match(out, /^has-busybox$/m);
    assert.match(out, /^proc=1$/m);
    assert.doesNotMatch(out, /sees-host-path/);
    for (const ns of ['pid', 'mnt', 'uts', 'ipc', 'net']) {
      const inside = new RegExp(`^ns-${ns}=(.*)$`, 'm').exec(out)?.[1];
      assert.ok(inside?.startsWith(`${ns}:[`), `${ns} namespace seen inside: ${inside}`);
      assert.notEqual(inside, await readlink(`/proc/self/ns/${ns}`), `${ns} namespace must be new`);
    }
    const exit = await readExit(exitFile);
    assert.equal(exit.pid, run.pid);
    assert.equal(exit.exitCode, 0);
    assert.equal(exit.signal, 0);
    assert.match(exit.finishedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$/);
    assert.equal(alive(run.pid), false);
    assert.deepEqual(await mountsUnder(sandbox.root), []);
  },
);

test('MOUNT_IN_ROOT resolves symlinks inside the rootfs and never touches the host', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  await mkdir(join(rootfs, 'mnt'));
  await symlink('/etc', join(rootfs, 'mnt', 'etc-link'));
  await symlink('../../../../../../../../etc', join(rootfs, 'mnt', 'up'));
  const marker = join(sandbox.root, 'marker.txt');
  await writeFile(marker, 'bound-from-the-host\n');
  const madeName = `berth-made-${sandbox.id}`;
  const hostPasswd = await readFile('/etc/passwd', 'utf8');
  const run = await runShim(
    sandbox,
    containerPlan(rootfs, `cat /etc/passwd; grep -c " /etc/${madeName} " /proc/self/mountinfo`, {
      beforePivot: [
        ops.mountInRoot(rootfs, `/mnt/etc-link/${madeName}/sub`, 'tmpfs', 'tmpfs', 0n, '', CREATE.DIR),
        ops.mountInRoot(rootfs, `/mnt/etc-link/${madeName}`, 'tmpfs', 'tmpfs', 0n, '', CREATE.DIR),
        ops.mountInRoot(rootfs, '/mnt/up/passwd', marker, '', MS.BIND, '', CREATE.FILE),
      ],
    }),
  );
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  assert.match(run.stdout, /^bound-from-the-host$/m, 'the bind landed on the rootfs /etc/passwd');
  assert.match(run.stdout, /^1$/m, `a mount on /etc/${madeName} inside the container`);
  assert.equal(existsSync(`/etc/${madeName}`), false, 'nothing was created in the host /etc');
  assert.ok((await stat(join(rootfs, 'etc', madeName, 'sub'))).isDirectory(), 'created inside the rootfs');
  assert.equal(await readFile('/etc/passwd', 'utf8'), hostPasswd);
});

test('MASK_PATH hides files and directories, READONLY_PATH makes a path read-only', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  await mkdir(join(rootfs, 'secret-dir'));
  await writeFile(join(rootfs, 'secret-dir', 'file'), 'secret\n');
  await writeFile(join(rootfs, 'secret-file'), 'secret\n');
  await mkdir(join(rootfs, 'data'));
  const script = [
    'echo dir-entries=$(ls -A /secret-dir | wc -l)',
    'echo file-bytes=$(cat /secret-file | wc -c)',
    'touch /secret-dir/new 2>&1',
    'touch /data/new 2>&1',
    'touch /tmp/new && echo tmp-writable',
  ].join('; ');
  const run = await runShim(
    sandbox,
    containerPlan(rootfs, script, {
      afterPivot: [
        ops.maskPath('/secret-dir'),
        ops.maskPath('/secret-file'),
        ops.maskPath('/not-there'),
        ops.readonlyPath('/data'),
        ops.readonlyPath('/not-there-either'),
      ],
    }),
  );
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  assert.match(run.stdout, /^dir-entries=0$/m);
  assert.match(run.stdout, /^file-bytes=0$/m);
  assert.match(run.stdout, /\/secret-dir\/new.*Read-only file system/);
  assert.match(run.stdout, /\/data\/new.*Read-only file system/);
  assert.match(run.stdout, /^tmp-writable$/m);
  assert.equal(existsSync(join(rootfs, 'data', 'new')), false);
  assert.equal(await readFile(join(rootfs, 'secret-file'), 'utf8'), 'secret\n');
});

test('a user namespace maps container root to a high host uid range', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  // The container's root is an unprivileged host uid: it must be able to reach the rootfs.
  await chmod(sandbox.root, 0o711);
  const base = 300000;
  const script =
    'cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -g; touch /tmp/made';
  const run = await runShim(
    sandbox,
    containerPlan(rootfs, script, {
      clone: ALL_NS | NS.user,
      setup: [ops.uidMap(`0 ${base} 65536\n`), ops.gidMap(`0 ${base} 65536\n`), ops.setgroups('deny')],
    }),
  );
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  const [uidMap, gidMap, setgroups, uid, gid] = run.stdout.trim().split('\n');
  assert.deepEqual(uidMap?.trim().split(/\s+/), ['0', String(base), '65536']);
  assert.deepEqual(gidMap?.trim().split(/\s+/), ['0', String(base), '65536']);
  assert.equal(setgroups, 'deny');
  assert.equal(uid, '0');
  assert.equal(gid, '0');
  const made = await stat(join(rootfs, 'tmp', 'made'));
  assert.equal(made.uid, base, 'container root is the first uid of the range on the host');
  assert.equal(made.gid, base);
});

test(
  'SETGROUPS_IDS, SETGID, SETUID, CAPS and NO_NEW_PRIVS set the process credentials',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const CAP_CHOWN = 1n << 0n;
    const CAP_NET_BIND_SERVICE = 1n << 10n;
    const keep = CAP_NET_BIND_SERVICE;
    const run = await runShim(
      sandbox,
      containerPlan(rootfs, "grep -E '^(Uid|Gid|Groups|Cap...|NoNewPrivs):' /proc/self/status", {
        afterPivot: [
          ops.setgroupsIds([10, 20]),
          ops.setgid(1000),
          ops.setuid(1000),
          ops.caps(CAP_CHOWN | keep, keep, keep, keep, keep),
          ops.noNewPrivs(),
        ],
      }),
    );
    assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
    const status = Object.fromEntries(
      run.stdout
        .trim()
        .split('\n')
        .map((line) => line.split(':').map((part) => part.trim().replace(/\s+/g, ' '))),
    ) as Record<string, string>;
    assert.equal(status.Uid, '1000 1000 1000 1000');
    assert.equal(status.Gid, '1000 1000 1000 1000');
    assert.equal(status.Groups, '10 20');
    assert.equal(status.CapBnd, '0000000000000401');
    assert.equal(status.CapEff, '0000000000000400');
    assert.equal(status.CapPrm, '0000000000000400');
    assert.equal(status.CapInh, '0000000000000400');
    assert.equal(status.CapAmb, '0000000000000400');
    assert.equal(status.NoNewPrivs, '1');
  },
);

/** Packed struct sock_filter instructions: [code, jt, jf, k]. */
function bpf(program: [number, number, number, number][]): Uint8Array {
  const bytes = Buffer.alloc(program.length * 8);
  program.forEach(([code, jt, jf, k], i) => {
    bytes.writeUInt16LE(code, i * 8);
    bytes.writeUInt8(jt, i * 8 + 2);
    bytes.writeUInt8(jf, i * 8 + 3);
    bytes.writeUInt32LE(k, i * 8 + 4);
  });
  return bytes;
}

test('SECCOMP loads a filter that makes mkdir fail with EPERM', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const LD_W_ABS = 0x20;
  const JEQ_K = 0x15;
  const RET_K = 0x06;
  const AUDIT_ARCH_X86_64 = 0xc000003e;
  const SYS_MKDIR = 83;
  const SYS_MKDIRAT = 258;
  const program = bpf([
    [LD_W_ABS, 0, 0, 4], // seccomp_data.arch
    [JEQ_K, 0, 3, AUDIT_ARCH_X86_64],
    [LD_W_ABS, 0, 0, 0], // seccomp_data.nr
    [JEQ_K, 2, 0, SYS_MKDIR],
    [JEQ_K, 1, 0, SYS_MKDIRAT],
    [RET_K, 0, 0, 0x7fff0000], // SECCOMP_RET_ALLOW
    [RET_K, 0, 0, 0x00050000 | 1], // SECCOMP_RET_ERRNO | EPERM
  ]);
  const script = "mkdir /tmp/blocked 2>&1; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status";
  const run = await runShim(
    sandbox,
    containerPlan(rootfs, script, { afterPivot: [ops.noNewPrivs(), ops.seccomp(0, program)] }),
  );
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  assert.match(run.stdout, /can't create directory '\/tmp\/blocked': Operation not permitted/);
  assert.match(run.stdout, /^rc=1$/m);
  assert.match(run.stdout, /^Seccomp:\s+2$/m);
  assert.match(run.stdout, /^NoNewPrivs:\s+1$/m);
  assert.equal(existsSync(join(rootfs, 'tmp', 'blocked')), false);
});

test('WAIT_START holds the process until the start fifo is opened for reading', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const fifo = join(sandbox.root, 'exec.fifo');
  await execOk('mkfifo', ['-m', '0600', fifo]);
  let heldAs = '';
  let startByte = '';
  const run = await runShim(
    sandbox,
    containerPlan(rootfs, 'echo started', {
      beforePivot: [ops.openStartFifo(fifo)],
      afterPivot: [ops.waitStart()],
    }),
    {
      onCreated: async (pid) => {
        // Still the shim's image: init has not exec'd.
        heldAs = /^Name:\s+(\S+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '';
        const reader = await open(fifo, 'r');
        const { bytesRead, buffer } = await reader.read(Buffer.alloc(1), 0, 1);
        startByte = buffer.toString('latin1', 0, bytesRead);
        await reader.close();
      },
    },
  );
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  assert.equal(heldAs, 'berth-shim');
  assert.equal(startByte, '0');
  assert.deepEqual(run.lines, [`pid ${run.pid}`, 'created']);
  assert.equal(run.stdout, 'started\n');
});

test('the exit file and the shim exit code carry the exit status and 128+signal', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const exitFile = join(sandbox.root, 'exit.json');
  const cases: { script: string[]; code: number; signal: number }[] = [
    { script: ['/bin/sh', '-c', 'exit 3'], code: 3, signal: 0 },
    // No pid namespace here: pid 1 of a namespace cannot be killed by its own signal.
    { script: ['/bin/sh', '-c', 'kill -TERM $$'], code: 143, signal: 15 },
  ];
  for (const { script, code, signal } of cases) {
    const run = await runShim(
      sandbox,
      containerPlan(rootfs, script, { clone: NS.mount | NS.uts, setup: [ops.exitFile(exitFile)] }),
    );
    assert.equal(run.code, code, `${script.join(' ')}: ${run.stderr}`);
    const exit = await readExit(exitFile);
    assert.deepEqual([exit.pid, exit.exitCode, exit.signal], [run.pid, code, signal], script.join(' '));
  }
});

test(
  "a program that cannot be executed fails the EXEC op before `created` (runc's message), with no exit file",
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const exitFile = join(sandbox.root, 'exit.json');
    const cases: { script: string[]; errno: number; detail: string }[] = [
      {
        script: ['no-such-program'],
        errno: 2,
        detail: 'exec: "no-such-program": executable file not found in $PATH',
      },
      { script: ['/etc'], errno: 21, detail: 'exec: "/etc": is a directory' },
    ];
    for (const { script, errno, detail } of cases) {
      const plan = containerPlan(rootfs, script, {
        clone: NS.mount | NS.uts,
        setup: [ops.exitFile(exitFile)],
      });
      const run = await runShim(sandbox, plan);
      assert.equal(run.code, 1, run.stderr);
      assert.deepEqual(run.lines, [`pid ${run.pid}`, `error ${plan.length - 1} EXEC ${errno} ${detail}`]);
      assert.equal(existsSync(exitFile), false);
      assert.equal(alive(run.pid), false);
    }
  },
);

test(
  'an operation failing mid-plan is reported by index, name and errno and leaves nothing behind',
  { skip },
  async (t) => {
    const sandbox = await createSandbox(t);
    const rootfs = await makeRootfs(sandbox);
    const exitFile = join(sandbox.root, 'exit.json');
    const missing = join(sandbox.root, 'missing-source');
    const plan = containerPlan(rootfs, 'echo should-not-run', {
      setup: [ops.exitFile(exitFile)],
      beforePivot: [ops.mountInRoot(rootfs, '/mnt/data', missing, '', MS.BIND, '', CREATE.DIR)],
    });
    const index = plan.findIndex((op) => op.fields.some((f) => 's' in f && f.s === missing));
    const run = await runShim(sandbox, plan);
    assert.equal(run.code, 1);
    assert.equal(run.lines.length, 2, run.lines.join('\n'));
    const match = /^error (\d+) (\S+) (\d+) (.*)$/.exec(run.lines[1] ?? '');
    assert.ok(match, run.lines[1]);
    assert.deepEqual(match.slice(1, 4), [String(index), 'MOUNT_IN_ROOT', '2']);
    assert.match(match[4] ?? '', /missing-source.*No such file or directory/);
    assert.equal(run.stdout, '');
    assert.equal(alive(run.pid), false);
    assert.equal(existsSync(exitFile), false);
    assert.deepEqual(await mountsUnder(sandbox.root), []);
  },
);

test('abort instead of go kills init and the shim exits 1', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const run = await runShim(sandbox, containerPlan(rootfs, 'echo should-not-run'), { answer: 'abort' });
  assert.equal(run.code, 1);
  assert.deepEqual(run.lines, [`pid ${run.pid}`]);
  assert.equal(run.stdout, '');
  assert.equal(alive(run.pid), false);
});

const TERMINAL_SCRIPT = 'tty; stty size; test -t 0 && echo stdin-is-a-tty';

function terminalMounts(rootfs: string): PlanOp[] {
  return [
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
  ];
}

/** Receives the pty master over the console socket (SCM_RIGHTS, which Node cannot do) and prints what the container wrote. */
const CONSOLE_RECEIVER = `
import os, socket, sys
server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(1)
print('ready', flush=True)
conn, _ = server.accept()
msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
print('name=' + msg.decode(), flush=True)
output = b''
while True:
    try:
        chunk = os.read(fds[0], 4096)
    except OSError:  # EIO: the container's side of the pty is closed
        break
    if not chunk:
        break
    output += chunk
sys.stdout.write(output.decode(errors='replace').replace('\\r', ''))
`;

test('SETUP_TERMINAL sends the pty master to the CONSOLE_SOCKET', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const helper = join(sandbox.root, 'console.py');
  const socketPath = join(sandbox.root, 'console.sock');
  await writeFile(helper, CONSOLE_RECEIVER);
  const receiver = spawn('python3', [helper, socketPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  if (receiver.pid) sandbox.trackProcess(receiver.pid);
  t.after(() => receiver.kill('SIGKILL'));
  let received = '';
  const ready = new Promise<void>((resolve, reject) => {
    receiver.on('error', reject);
    (receiver.stdout as Readable).setEncoding('utf8').on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith('ready\n')) resolve();
    });
  });
  const receiverDone = new Promise<void>((resolve) => receiver.on('close', () => resolve()));
  await ready;
  const run = await runShim(
    sandbox,
    containerPlan(rootfs, TERMINAL_SCRIPT, {
      setup: [ops.consoleSocket(socketPath, 30, 100)],
      beforePivot: terminalMounts(rootfs),
      afterPivot: [ops.setupTerminal()],
    }),
  );
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  await receiverDone;
  assert.match(received, /^name=\/dev\/pts\/0$/m);
  assert.match(received, /^\/dev\/pts\/0$/m);
  assert.match(received, /^30 100$/m);
  assert.match(received, /^stdin-is-a-tty$/m);
  assert.equal(run.stdout, '', 'the output went to the pty, not the shim stdout');
});

test('TERMINAL_PROXY copies the pty to the shim stdout', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const run = await runShim(
    sandbox,
    containerPlan(rootfs, TERMINAL_SCRIPT, {
      setup: [ops.terminalProxy(30, 100)],
      beforePivot: terminalMounts(rootfs),
      afterPivot: [ops.setupTerminal()],
    }),
  );
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  const out = run.stdout.replace(/\r/g, '');
  assert.match(out, /^\/dev\/pts\/0$/m);
  assert.match(out, /^30 100$/m);
  assert.match(out, /^stdin-is-a-tty$/m);
});

test('JOIN_NS, TIME_OFFSETS, PRESERVE_FDS, DETACH and LOG_FILE', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  const netns = sandbox.name('n');
  sandbox.trackNetns(netns);
  await execOk('ip', ['netns', 'add', netns]);
  const netnsInode = (await stat(`/run/netns/${netns}`)).ino;
  const logFile = join(sandbox.root, 'shim.log');
  const days = 10;
  let shimStdout = '';
  let shimSession = 0;
  const plan = containerPlan(
    rootfs,
    // Wait (bounded) until the test has looked at the shim, which exits with the container.
    'i=0; while [ ! -e /go ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done; ' +
      'readlink /proc/self/ns/net; cut -d. -f1 /proc/uptime; echo preserved >&3',
    {
      clone: NS.mount | NS.pid,
      setup: [
        ops.joinNs(`/run/netns/${netns}`, NS.net),
        ops.timeOffsets(`boottime ${days * 86400} 0\n`),
        ops.logFile(logFile),
        ops.detach(),
      ],
      afterPivot: [ops.preserveFds(1)],
    },
  );
  const run = await runShim(sandbox, plan, {
    extraFds: 1,
    onCreated: async (_pid, shim) => {
      shimStdout = await readlink(`/proc/${shim.pid}/fd/1`);
      const fields = (await readFile(`/proc/${shim.pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
      shimSession = Number(fields[3]); // state ppid pgrp session
      await writeFile(join(rootfs, 'go'), '');
    },
  });
  assert.equal(run.code, 0, run.stderr + run.lines.join('\n'));
  const [netnsSeen, uptime] = run.stdout.trim().split('\n');
  assert.equal(netnsSeen, `net:[${netnsInode}]`);
  assert.ok(Number(uptime) >= days * 86400, `uptime in the time namespace: ${uptime}`);
  assert.equal(run.extra[0], 'preserved\n', "the shim's fd 5 is the container's fd 3");
  assert.equal(shimStdout, '/dev/null', 'DETACH points the shim stdio at /dev/null');
  assert.equal(shimSession, run.shimPid, 'DETACH makes the shim a session leader');
  const log = await readFile(logFile, 'utf8');
  assert.match(log, new RegExp(`berth-shim\\[\\d+\\]: init is pid ${run.pid}$`, 'm'));
  assert.match(log, new RegExp(`init ${run.pid} ended: exitCode 0 signal 0$`, 'm'));
});

test('the monitor stays well under 1 MiB resident while the container sleeps', { skip }, async (t) => {
  const sandbox = await createSandbox(t);
  const rootfs = await makeRootfs(sandbox);
  let rssKiB = 0;
  const run = await runShim(sandbox, containerPlan(rootfs, ['sleep', '600']), {
    onSyncEnd: async (pid, shim) => {
      rssKiB = Number(/^VmRSS:\s+(\d+) kB$/m.exec(await readFile(`/proc/${shim.pid}/status`, 'utf8'))?.[1]);
      process.kill(pid, 'SIGKILL');
    },
  });
  assert.equal(run.code, 137);
  assert.ok(rssKiB > 0 && rssKiB < 1024, `VmRSS ${rssKiB} kB`);
});

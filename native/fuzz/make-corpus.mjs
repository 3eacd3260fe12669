// Writes the seed corpus: valid plans from src/runtime/plan.ts's encoder, and broken ones derived
// from them. Run after compiling TypeScript: node native/fuzz/make-corpus.mjs [dist-dir]
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const dist = resolve(process.argv[2] ?? 'dist');
const { encodePlan, ops } = await import(pathToFileURL(join(dist, 'src/runtime/plan.js')).href);
const out = new URL('./corpus/', import.meta.url);
const write = (name, bytes) => writeFileSync(new URL(name, out), bytes);

const exec = ops.exec(['/bin/sh', '-c', 'echo hi'], ['PATH=/bin', 'HOME=/']);
const minimal = encodePlan([exec]);
const full = encodePlan([
  ops.joinNs('/proc/1/ns/net', 0x40000000),
  ops.cloneFlags(0x20000000 | 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000),
  ops.cgroupJoin('/sys/fs/cgroup/memory/berth/c/tasks'),
  ops.cloneIntoCgroup('/sys/fs/cgroup/unified/berth/c'),
  ops.uidMap('0 100000 65536\n'),
  ops.gidMap('0 100000 65536\n'),
  ops.setgroups('deny'),
  ops.consoleSocket('/run/console.sock', 24, 80),
  ops.exitFile('/run/c/exit.json'),
  ops.detach(),
  ops.timeOffsets('monotonic 86400 0\n'),
  ops.logFile('/run/c/shim.log'),
  ops.unshare(0x02000000),
  ops.mount('', '/', '', 0x4000n | 0x80000n, ''),
  ops.mount('/rootfs', '/rootfs', '', 0x1000n | 0x4000n, ''),
  ops.mountInRoot('/rootfs', '/proc', 'proc', 'proc', 0xen, '', 1),
  ops.mountInRoot('/rootfs', '/etc/hosts', '/run/c/hosts', '', 0x1000n, '', 2),
  ops.remount('/rootfs', '/etc/hosts', 1n),
  ops.mknodInRoot('/rootfs', '/dev/null', 0o20666, 1, 3, 0, 0),
  ops.symlinkInRoot('/rootfs', '/dev/fd', '/proc/self/fd'),
  ops.mkdirInRoot('/rootfs', '/run/lock', 0o1777),
  ops.openStartFifo('/run/c/exec.fifo'),
  ops.pivotRoot('/rootfs'),
  ops.moveRoot('/rootfs'),
  ops.maskPath('/proc/kcore'),
  ops.readonlyPath('/proc/sys'),
  ops.writeFile('/proc/sys/net/ipv4/ip_forward', '1'),
  ops.sethostname('box'),
  ops.setdomainname('example.org'),
  ops.setrlimit(7, 1024n, 4096n),
  ops.setupTerminal(),
  ops.setgroupsIds([10, 20]),
  ops.setgid(1000),
  ops.setuid(1000),
  ops.umask(0o22),
  ops.caps(0x3fn, 0x1n, 0x1n, 0n, 0n),
  ops.noNewPrivs(),
  ops.chdir('/home/user'),
  ops.personality(8),
  ops.hook('createContainer', { path: '/usr/bin/hook', args: ['hook', 'create'], env: ['A=1'], timeout: 5 }, [
    '{"ociVersion":"1.2.0","id":"c","status":"creating","pid":',
    ',"bundle":"/b"}',
  ]),
  ops.waitStart(),
  ops.hook('startContainer', { path: '/hook' }, ['{"status":"created","pid":', '}']),
  ops.preserveFds(2),
  ops.seccomp(0, new Uint8Array([6, 0, 0, 0, 0, 0, 0xff, 0x7f])),
  exec,
]);
write('valid-minimal.bin', minimal);
write('valid-full.bin', full);
write(
  'valid-stdio.bin',
  encodePlan([
    ops.terminalProxy(24, 80),
    ops.stdioPipes(),
    ops.openStdin(),
    ops.logJsonFile('/var/lib/berth/containers/c/c-json.log', 10 << 20, 3),
    ops.attachSocket('/run/berth/c/attach.sock'),
    ops.setupTerminal(),
    exec,
  ]),
);

// A SCMP_ACT_NOTIFY filter (NEW_LISTENER, 8) and where its listener fd goes.
const listener = ops.seccompListener('/run/agent.sock', ['{"fds":["seccompFd"],"pid":', ',"state":{"pid":', '}}']);
const notifyFilter = ops.seccomp(8, new Uint8Array([6, 0, 0, 0, 0, 0, 0xc0, 0x7f]));
write('valid-listener.bin', encodePlan([listener, notifyFilter, exec]));

const patched = (bytes, offset, values) => {
  const copy = Buffer.from(bytes);
  values.forEach((v, i) => (copy[offset + i] = v));
  return copy;
};
write('bad-empty.bin', Buffer.alloc(0));
write('bad-magic.bin', patched(minimal, 0, [0x42, 0x53, 0x50, 0x32]));
write('bad-version.bin', patched(minimal, 4, [2]));
write('bad-huge-op-count.bin', patched(minimal, 8, [0xff, 0xff, 0xff, 0xff]));
write('bad-op-count.bin', patched(minimal, 8, [2]));
write('bad-truncated.bin', full.subarray(0, full.length - 3));
write('bad-trailing.bin', Buffer.concat([minimal, Buffer.from([0])]));
write('bad-unknown-op.bin', patched(minimal, 12, [200]));
write('bad-field-count.bin', patched(minimal, 14, [0xff, 0xff]));
write('bad-field-kind.bin', patched(minimal, 16, [2]));
write('bad-number-length.bin', patched(minimal, 17, [4]));
write('bad-field-length.bin', patched(minimal, 17, [0xff, 0xff, 0xff, 0x7f]));
const lastByte = (value) => {
  const bytes = encodePlan([ops.exec(['/bin/sh'], ['A=1'])]);
  bytes[bytes.length - 1] = value;
  return bytes;
};
write('bad-nul.bin', lastByte(0));
write('bad-utf8.bin', lastByte(0xff));
write('bad-no-exec.bin', encodePlan([ops.sethostname('x')]));
write('bad-argc.bin', encodePlan([{ op: 126, fields: [{ n: 5 }, { s: '/bin/sh' }] }]));
write('bad-wait-start.bin', encodePlan([ops.waitStart(), exec]));
write('bad-cgroup-relative.bin', encodePlan([ops.cgroupJoin('tasks'), exec]));
write('bad-clone-into-twice.bin', encodePlan([ops.cloneIntoCgroup('/a'), ops.cloneIntoCgroup('/b'), exec]));
write('bad-stdio-console.bin', encodePlan([ops.consoleSocket('/s', 24, 80), ops.stdioPipes(), exec]));
write('bad-listener-no-filter.bin', encodePlan([listener, exec]));
write('bad-filter-no-listener.bin', encodePlan([notifyFilter, exec]));
write('bad-listener-relative.bin', encodePlan([ops.seccompListener('agent.sock', ['{}']), notifyFilter, exec]));
write('bad-hook-relative.bin', encodePlan([ops.hook('startContainer', { path: 'hook' }, ['{}']), exec]));
write('bad-hook-no-state.bin', encodePlan([ops.hook('startContainer', { path: '/hook' }, []), exec]));
write(
  'valid-runtime-hooks.bin',
  encodePlan([
    ops.mountInRoot('/rootfs', '/proc', 'proc', 'proc', 0xen, '', 1),
    ops.openStartFifo('/run/c/exec.fifo'),
    ops.runtimeHooks(),
    ops.hook('createContainer', { path: '/hook' }, ['{"status":"creating","pid":', '}']),
    ops.waitStart(),
    exec,
  ]),
);
write('bad-runtime-hooks-twice.bin', encodePlan([ops.runtimeHooks(), ops.runtimeHooks(), exec]));
write('bad-runtime-hooks-after-start.bin', encodePlan([ops.waitStart(), ops.runtimeHooks(), exec]));

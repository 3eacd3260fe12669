/**
 * The filesystem calls Node.js lacks — mknod(2) and the *xattr(2) family — carried out by one
 * python3 child per apply or diff, started on first use. Requests go one JSON line at a time over
 * stdin with a reply each, so they keep their order relative to our own fs calls and every
 * failure names its path. Python's os module makes the calls directly (no shell, no path
 * following: every xattr call uses follow_symlinks=False, and mknod never follows).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { internal } from '../common/errors.js';

const SCRIPT = String.raw`
import base64, errno, json, os, stat, sys
KINDS = {'char': stat.S_IFCHR, 'block': stat.S_IFBLK, 'fifo': stat.S_IFIFO}
def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENOENT):
            return {}
        raise
    values = {}
    for name in names:
        try:
            values[name] = base64.b64encode(os.getxattr(path, name, follow_symlinks=False)).decode()
        except OSError as e:
            if e.errno != errno.ENODATA:
                raise
    return values
def run(r):
    op = r['op']
    if op == 'mknod':
        os.mknod(r['path'], KINDS[r['kind']] | r['mode'], os.makedev(r['major'], r['minor']))
        return None
    if op == 'setxattr':
        os.setxattr(r['path'], r['name'], base64.b64decode(r['value']), follow_symlinks=False)
        return None
    if op == 'xattrs':
        return [xattrs(p) for p in r['paths']]
    raise ValueError('unknown operation ' + str(op))
for line in sys.stdin:
    try:
        reply = {'ok': True, 'result': run(json.loads(line))}
    except OSError as e:
        reply = {'ok': False, 'code': errno.errorcode.get(e.errno, str(e.errno)), 'message': e.strerror or str(e)}
    except Exception as e:
        reply = {'ok': False, 'code': 'EINVAL', 'message': str(e)}
    sys.stdout.write(json.dumps(reply) + '\n')
    sys.stdout.flush()
`;

/** Debian's python3 when present (a version manager's shim on PATH can cost 100 ms a start). */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
/** No single call should take this long; a stuck helper is killed rather than waited for. */
const REQUEST_TIMEOUT_MS = 60_000;

interface Reply {
  ok: boolean;
  result?: unknown;
  code?: string;
  message?: string;
}

interface Pending {
  describe: string;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/** An error shaped like Node's system errors, so errnoCode() reads it. */
function systemError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export type SpecialKind = 'char' | 'block' | 'fifo';

export class FsHelper {
  private child: ChildProcess | undefined;
  private readonly pending: Pending[] = [];
  private buffered = '';
  private failure: Error | undefined;

  private start(): ChildProcess {
    const child = spawn(PYTHON, ['-I', '-S', '-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (text: string) => {
      this.buffered += text;
      let newline: number;
      while ((newline = this.buffered.indexOf('\n')) !== -1) {
        const line = this.buffered.slice(0, newline);
        this.buffered = this.buffered.slice(newline + 1);
        this.settle(JSON.parse(line) as Reply);
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (text: string) => {
      if (stderr.length < 4096) stderr += text;
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      for (const request of this.pending.splice(0)) {
        clearTimeout(request.timer);
        request.reject(err);
      }
    };
    child.on('error', (err) =>
      fail(internal(`cannot run ${PYTHON} for mknod/xattr calls: ${err.message}`, err)),
    );
    child.on('exit', (code, signal) =>
      fail(internal(`the ${PYTHON} mknod/xattr helper exited (${signal ?? code}): ${stderr.trim()}`)),
    );
    child.stdin?.on('error', () => undefined); // reported through 'exit'
    return child;
  }

  private settle(reply: Reply): void {
    const request = this.pending.shift();
    if (request === undefined) return;
    clearTimeout(request.timer);
    if (reply.ok) request.resolve(reply.result);
    else
      request.reject(
        systemError(reply.code ?? 'EIO', `${request.describe}: ${reply.message ?? 'failed'} (${reply.code})`),
      );
  }

  private call(request: Record<string, unknown>, describe: string): Promise<unknown> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    this.child ??= this.start();
    const child = this.child;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(internal(`${describe}: the mknod/xattr helper did not answer in time`));
      }, REQUEST_TIMEOUT_MS);
      this.pending.push({ describe, resolve, reject, timer });
      child.stdin?.write(JSON.stringify(request) + '\n');
    });
  }

  async mknod(path: string, kind: SpecialKind, mode: number, major = 0, minor = 0): Promise<void> {
    await this.call({ op: 'mknod', path, kind, mode: mode & 0o7777, major, minor }, `mknod ${path}`);
  }

  /** lsetxattr: never follows a symlink. */
  async setXattr(path: string, name: string, value: Uint8Array): Promise<void> {
    await this.call(
      { op: 'setxattr', path, name, value: Buffer.from(value).toString('base64') },
      `setxattr ${name} on ${path}`,
    );
  }

  /** Every extended attribute of each path (llistxattr + lgetxattr), in the order given. */
  async xattrs(paths: string[]): Promise<Map<string, Buffer>[]> {
    if (paths.length === 0) return [];
    const result = (await this.call({ op: 'xattrs', paths }, `read xattrs of ${paths[0]}`)) as Record<
      string,
      string
    >[];
    return result.map(
      (values) => new Map(Object.entries(values).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
    );
  }

  /** Stop the child (if one was started) and wait for it. */
  async close(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}

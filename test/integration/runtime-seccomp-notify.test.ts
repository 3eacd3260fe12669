/**
 * Seccomp user notification (runtime-spec config-linux.md, "Seccomp"): a SCMP_ACT_NOTIFY rule makes
 * the container process load its filter with a listener, whose fd goes to linux.seccomp.listenerPath
 * over SCM_RIGHTS with the container process state. A seccomp agent (a small C program compiled
 * here: Node cannot receive fds) answers the notifications, and the container sees its answers.
 * Like runc, every exec'd process loads its own filter, whose listener is sent as well.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execOk } from '../helpers/exec.js';
import { createSandbox, CGROUP_ROOT, listMounts, type Sandbox } from '../helpers/sandbox.js';
import { makeBundle, runtime, runtimeOk, type Bundle } from '../helpers/bundle.js';

/**
 * The agent: listens on argv[1]; for each connection it writes `<dir>/conn-<n>.json` (the number
 * of fds received, a newline, the state JSON) and then answers that listener's notifications:
 * mkdir and mkdirat succeed with 0 without doing anything, everything else fails with ENOMEDIUM.
 */
const AGENT = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LISTENERS 16
static struct seccomp_notif_sizes sizes;

static void answer(int fd)
{
    struct seccomp_notif *req = calloc(1, sizes.seccomp_notif);
    struct seccomp_notif_resp *resp = calloc(1, sizes.seccomp_notif_resp);
    if (req && resp && ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, req) == 0) {
        resp->id = req->id;
        if (req->data.nr == SYS_mkdir || req->data.nr == SYS_mkdirat) resp->val = 0;
        else resp->error = -ENOMEDIUM;
        ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp);
    }
    free(req);
    free(resp);
}

/* One connection: the state and its fds; returns the listener fd or -1. */
static int take(int conn, const char *dir, int n)
{
    static char text[1 << 16];
    char control[CMSG_SPACE(4 * sizeof(int))], path[4096], tmp[4200];
    struct iovec iov = {.iov_base = text, .iov_len = sizeof text - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control, .msg_controllen = sizeof control};
    ssize_t got = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC), more;
    if (got < 0) return -1;
    int fds[4], nfds = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int) && nfds < 4; i++)
                memcpy(&fds[nfds++], CMSG_DATA(c) + i * sizeof(int), sizeof(int));
    while (got < (ssize_t)sizeof text - 1 && (more = read(conn, text + got, sizeof text - 1 - (size_t)got)) > 0)
        got += more;
    text[got] = 0;
    snprintf(path, sizeof path, "%s/conn-%d.json", dir, n);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *out = fopen(tmp, "w");
    if (!out) return -1;
    fprintf(out, "%d\n%s", nfds, text);
    fclose(out);
    rename(tmp, path);
    for (int i = 1; i < nfds; i++) close(fds[i]);
    return nfds > 0 ? fds[0] : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3 || syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0) return 2;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, argv[1], sizeof addr.sun_path - 1);
    int server = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (server < 0 || bind(server, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(server, 8) < 0) return 2;
    printf("ready\n");
    fflush(stdout);
    struct pollfd p[1 + MAX_LISTENERS] = {{.fd = server, .events = POLLIN}};
    int n = 1, conns = 0;
    for (;;) {
        if (poll(p, (nfds_t)n, -1) < 0) continue;
        for (int i = n - 1; i >= 1; i--) {
            if (p[i].revents & POLLIN) answer(p[i].fd);
            else if (p[i].revents) { /* every process of that filter is gone */
                close(p[i].fd);
                p[i] = p[--n];
            }
        }
        if (p[0].revents & POLLIN) {
            int conn = accept4(server, NULL, NULL, SOCK_CLOEXEC);
            if (conn < 0) continue;
            int listener = take(conn, argv[2], ++conns);
            close(conn);
            if (listener >= 0 && n < 1 + MAX_LISTENERS) p[n++] = (struct pollfd){.fd = listener, .events = POLLIN};
            else if (listener >= 0) close(listener);
        }
    }
}
`;

interface Agent {
  socket: string;
  dir: string;
  /** The n-th connection's fd count and state, once it has come. */
  connection(n: number): Promise<{ fds: number; state: ProcessState }>;
  /** How many connections have come so far. */
  count(): Promise<number>;
}

interface ProcessState {
  ociVersion: string;
  fds: string[];
  pid: number;
  metadata?: string;
  state: { ociVersion: string; id: string; status: string; pid: number; bundle: string };
}

const exists = (path: string): Promise<boolean> =>
  access(path).then(
    () => true,
    () => false,
  );

async function startAgent(sandbox: Sandbox): Promise<Agent> {
  const source = join(sandbox.root, 'agent.c');
  const binary = join(sandbox.root, 'seccomp-agent');
  await writeFile(source, AGENT);
  await execOk('gcc', ['-O1', '-Wall', '-Wextra', '-Werror', '-o', binary, source], { timeoutMs: 60_000 });
  const dir = join(sandbox.root, 'agent');
  await mkdir(dir);
  const socket = join(sandbox.root, 'agent.sock');
  const child: ChildProcess = spawn(binary, [socket, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
  if (child.pid) sandbox.trackProcess(child.pid);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the seccomp agent did not start')), 10_000);
    child.stdout?.once('data', () => {
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the seccomp agent exited (${code})`));
    });
  });
  const count = async (): Promise<number> =>
    (await readdir(dir)).filter((name) => /^conn-\d+\.json$/.test(name)).length;
  return {
    socket,
    dir,
    count,
    async connection(n) {
      const path = join(dir, `conn-${n}.json`);
      for (let i = 0; i < 200 && !(await exists(path)); i++) await new Promise((r) => setTimeout(r, 25));
      const text = await readFile(path, 'utf8');
      const newline = text.indexOf('\n');
      return {
        fds: Number(text.slice(0, newline)),
        state: JSON.parse(text.slice(newline + 1)) as ProcessState,
      };
    },
  };
}

/** A bundle whose filter notifies mkdir and chmod (and their *at forms) to the agent. */
async function notifyBundle(
  sandbox: Sandbox,
  agent: Agent,
  args: string[],
  noNewPrivileges: boolean,
): Promise<Bundle> {
  const bundle = await makeBundle(sandbox, args);
  bundle.spec.process!.noNewPrivileges = noNewPrivileges;
  bundle.spec.linux!.seccomp = {
    defaultAction: 'SCMP_ACT_ALLOW',
    architectures: ['SCMP_ARCH_X86_64'],
    listenerPath: agent.socket,
    listenerMetadata: 'agent-metadata',
    syscalls: [{ names: ['mkdir', 'mkdirat', 'chmod', 'fchmodat', 'fchmodat2'], action: 'SCMP_ACT_NOTIFY' }],
  };
  await bundle.write();
  return bundle;
}

// The root is read-only, so without the agent mkdir would fail with EROFS; the agent makes it
// "succeed" without creating anything, and makes chmod fail with ENOMEDIUM.
const PROBE =
  'mkdir /made && echo mkdir-ok; [ -d /made ] && echo made || echo not-made; chmod 600 /etc/passwd 2>&1; exit 0';

for (const noNewPrivileges of [true, false]) {
  test(`run: the agent gets the listener and the creating state, and answers the container's calls (noNewPrivileges ${noNewPrivileges})`, async (t) => {
    const sandbox = await createSandbox(t);
    const agent = await startAgent(sandbox);
    const bundle = await notifyBundle(sandbox, agent, ['sh', '-c', PROBE], noNewPrivileges);
    const result = await runtime(sandbox, ['run', '--bundle', bundle.dir, 'n1']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^mkdir-ok\nnot-made\nchmod: \/etc\/passwd: No medium found\n$/);
    const { fds, state } = await agent.connection(1);
    assert.equal(fds, 1, 'exactly one fd: seccompFd');
    assert.deepEqual(
      { ...state, pid: typeof state.pid, state: { ...state.state, pid: typeof state.state.pid } },
      {
        ociVersion: '1.2.0',
        fds: ['seccompFd'],
        pid: 'number',
        metadata: 'agent-metadata',
        state: { ociVersion: '1.2.0', id: 'n1', status: 'creating', pid: 'number', bundle: bundle.dir },
      },
    );
    assert.ok(state.pid > 0);
    assert.equal(state.state.pid, state.pid, "the process is the container's init");
  });
}

test('exec: each exec process sends its own listener with the running state, and sees the agent answer', async (t) => {
  const sandbox = await createSandbox(t);
  const agent = await startAgent(sandbox);
  const bundle = await notifyBundle(sandbox, agent, ['sleep', '100'], true);
  await runtimeOk(sandbox, ['run', '-d', '--bundle', bundle.dir, 'n2']);
  const init = JSON.parse(await runtimeOk(sandbox, ['state', 'n2'])) as { pid: number };
  assert.equal((await agent.connection(1)).state.pid, init.pid);
  const output = await runtimeOk(sandbox, ['exec', 'n2', 'sh', '-c', PROBE]);
  assert.equal(output, 'mkdir-ok\nnot-made\nchmod: /etc/passwd: No medium found\n');
  const { fds, state } = await agent.connection(2);
  assert.equal(fds, 1);
  assert.equal(state.state.status, 'running');
  assert.equal(state.state.pid, init.pid, "the state's pid is the container's init");
  assert.notEqual(state.pid, init.pid, 'the process is the exec process');
  assert.equal(state.metadata, 'agent-metadata');
  await runtimeOk(sandbox, ['delete', '--force', 'n2']);
});

test('NOTIFY without a listener is refused; an unreachable listener fails create and leaves nothing', async (t) => {
  const sandbox = await createSandbox(t);
  const agent = await startAgent(sandbox);
  const bundle = await notifyBundle(sandbox, agent, ['true'], true);
  delete bundle.spec.linux!.seccomp!.listenerPath;
  delete bundle.spec.linux!.seccomp!.listenerMetadata;
  await bundle.write();
  const refused = await runtime(sandbox, ['create', '--bundle', bundle.dir, 'n3']);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /linux\.seccomp\.syscalls\[0\]\.action: SCMP_ACT_NOTIFY needs linux\.seccomp\.listenerPath/,
  );

  bundle.spec.linux!.seccomp!.listenerPath = join(sandbox.root, 'nobody-listens.sock');
  await bundle.write();
  const failed = await runtime(sandbox, ['create', '--bundle', bundle.dir, 'n3']);
  assert.equal(failed.code, 1);
  assert.match(
    failed.stderr,
    /connecting to the seccomp listener .*nobody-listens\.sock: No such file or directory/,
  );
  assert.match((await runtime(sandbox, ['state', 'n3'])).stderr, /does not exist/);
  assert.equal(await exists(join(CGROUP_ROOT, 'memory', bundle.spec.linux!.cgroupsPath!)), false);
  assert.deepEqual(
    (await listMounts()).filter((m) => m.mountPoint.startsWith(bundle.dir)),
    [],
  );
  assert.equal(await agent.count(), 0);
});

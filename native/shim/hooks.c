/* HOOK: an OCI hook run by init, so that it runs in the container's namespaces (createContainer
 * before pivot_root, startContainer after it): fork, execve the hook's path with its args and env,
 * the state JSON on its stdin, the end of its output kept for the error message, killed at its
 * timeout. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define OUTPUT_KEPT 400  /* the end of the hook's stdout and stderr, for the error message */
#define POLL_SLICE_MS 50 /* without a pidfd (a seccomp profile may refuse pidfd_open) the exit is looked for this often */
#define DRAIN_READS 16   /* reads of what is left once the hook has exited (a child it left may go on writing) */

struct hook_io {
    const char *in; /* the state JSON not yet written */
    size_t in_left;
    int in_fd, out_fd;
    char out[OUTPUT_KEPT + 1];
    size_t out_len;
};

static void keep_output(struct hook_io *io, const char *buf, size_t n)
{
    if (n >= OUTPUT_KEPT) {
        memcpy(io->out, buf + n - OUTPUT_KEPT, OUTPUT_KEPT);
        io->out_len = OUTPUT_KEPT;
        return;
    }
    if (io->out_len + n > OUTPUT_KEPT) {
        size_t drop = io->out_len + n - OUTPUT_KEPT;
        memmove(io->out, io->out + drop, io->out_len - drop);
        io->out_len -= drop;
    }
    memcpy(io->out + io->out_len, buf, n);
    io->out_len += n;
}

/* 1 while there may be more output, 0 at its end. */
static int read_output(struct hook_io *io)
{
    char buf[4096];
    ssize_t n = read(io->out_fd, buf, sizeof buf);
    if (n > 0) keep_output(io, buf, (size_t)n);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR))) return 1;
    close(io->out_fd);
    io->out_fd = -1;
    return 0;
}

static void write_input(struct hook_io *io)
{
    ssize_t n = write(io->in_fd, io->in, io->in_left);
    if (n > 0) io->in += n, io->in_left -= (size_t)n;
    if ((n < 0 && errno != EAGAIN && errno != EINTR) || io->in_left == 0) { /* EPIPE: the hook does not read it */
        close(io->in_fd);
        io->in_fd = -1;
    }
}

static void __attribute__((noreturn)) exec_hook(const struct plan_op *op, int in, int out)
{
    const struct plan_field *a = op->f;
    size_t argc = (size_t)a[3].n, envc = (size_t)a[4].n;
    char **argv = calloc(argc + 1, sizeof *argv), **envp = calloc(envc + 1, sizeof *envp);
    signal(SIGPIPE, SIG_DFL);
    if (!argv || !envp || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
    close_range(3, ~0u, 0); /* nothing of init's (the sync channel, preserved fds) reaches the hook */
    for (size_t i = 0; i < argc; i++) argv[i] = (char *)a[HOOK_FIXED_FIELDS + i].s;
    for (size_t i = 0; i < envc; i++) envp[i] = (char *)a[HOOK_FIXED_FIELDS + argc + i].s;
    execve(a[1].s, argv, envp);
    dprintf(2, "execve %s: %s", a[1].s, strerror(errno));
    _exit(127);
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Feeds the hook its state, collects its output and waits for it; -1 (f filled) when it ran too long. */
static int wait_hook(const struct plan_op *op, pid_t child, struct hook_io *io, int *status, struct failure *f)
{
    unsigned long long timeout = op->f[2].n;
    long deadline = now_ms() + (long)timeout * 1000L;
    int pidfd = (int)syscall(SYS_pidfd_open, child, 0);
    fcntl(io->in_fd, F_SETFL, O_NONBLOCK);
    fcntl(io->out_fd, F_SETFL, O_NONBLOCK);
    for (;;) {
        if (waitpid(child, status, WNOHANG) == child) break;
        int wait_ms = -1;
        if (timeout > 0) {
            long left = deadline - now_ms();
            if (left <= 0) {
                kill(child, SIGKILL);
                while (waitpid(child, status, 0) < 0 && errno == EINTR) {
                }
                if (pidfd >= 0) close(pidfd);
                fail(f, 0, "%s hook %s timed out after %llu s", op->f[0].s, op->f[1].s, timeout);
                f->err = ETIMEDOUT;
                return -1;
            }
            wait_ms = (int)left;
        }
        if (pidfd < 0 && (wait_ms < 0 || wait_ms > POLL_SLICE_MS)) wait_ms = POLL_SLICE_MS;
        struct pollfd p[3];
        int n = 0, iin = -1, iout = -1;
        if (pidfd >= 0) p[n++] = (struct pollfd){.fd = pidfd, .events = POLLIN};
        if (io->in_fd >= 0) iin = n, p[n++] = (struct pollfd){.fd = io->in_fd, .events = POLLOUT};
        if (io->out_fd >= 0) iout = n, p[n++] = (struct pollfd){.fd = io->out_fd, .events = POLLIN};
        if (poll(p, (nfds_t)n, wait_ms) < 0) continue; /* EINTR; the next round looks at the child again */
        if (iin >= 0 && p[iin].revents) write_input(io);
        if (iout >= 0 && p[iout].revents) read_output(io);
    }
    if (pidfd >= 0) close(pidfd);
    for (int i = 0; i < DRAIN_READS && io->out_fd >= 0 && read_output(io); i++) {
    }
    return 0;
}

/* The kept output as one line without control characters, or "" when there was none. */
static const char *output_line(struct hook_io *io)
{
    size_t start = 0, end = io->out_len;
    for (size_t i = 0; i < end; i++)
        if ((unsigned char)io->out[i] < 0x20 || io->out[i] == 0x7f) io->out[i] = ' ';
    while (start < end && io->out[start] == ' ') start++;
    while (end > start && io->out[end - 1] == ' ') end--;
    io->out[end] = 0;
    return io->out + start;
}

/* Forks and waits for the hook; its ends of the pipes are closed here. */
static int run_hook(const struct plan_op *op, const char *state, int in[2], int out[2], struct failure *f)
{
    const char *name = op->f[0].s, *path = op->f[1].s;
    /* A hook that does not read its stdin must not kill init with SIGPIPE. */
    struct sigaction ignore = {.sa_handler = SIG_IGN}, saved;
    sigaction(SIGPIPE, &ignore, &saved);
    pid_t child = fork();
    if (child == 0) exec_hook(op, in[0], out[1]);
    int err = errno;
    close(in[0]), close(out[1]);
    in[0] = out[1] = -1;
    struct hook_io io = {.in = state, .in_left = strlen(state), .in_fd = in[1], .out_fd = out[0]};
    int status = 0, r = child < 0 ? fail(f, err, "%s hook %s: fork", name, path) : wait_hook(op, child, &io, &status, f);
    sigaction(SIGPIPE, &saved, NULL);
    in[1] = io.in_fd, out[0] = io.out_fd; /* what is still open, for the caller to close */
    if (r < 0 || (WIFEXITED(status) && WEXITSTATUS(status) == 0)) return r;
    const char *output = output_line(&io), *sep = *output ? ": " : "";
    if (WIFSIGNALED(status))
        return fail(f, 0, "%s hook %s was killed by signal %d%s%s", name, path, WTERMSIG(status), sep, output);
    return fail(f, 0, "%s hook %s exited with %d%s%s", name, path, WEXITSTATUS(status), sep, output);
}

int op_hook(const struct plan_op *op, pid_t pid, struct failure *f)
{
    unsigned first_state = HOOK_FIXED_FIELDS + (unsigned)op->f[3].n + (unsigned)op->f[4].n;
    char *state = join_pid(op->f + first_state, op->nfields - first_state, pid);
    int in[2] = {-1, -1}, out[2] = {-1, -1}, r;
    if (!state) r = fail(f, ENOMEM, "%s hook %s", op->f[0].s, op->f[1].s);
    else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
        r = fail(f, errno, "%s hook %s: pipe", op->f[0].s, op->f[1].s);
    else
        r = run_hook(op, state, in, out, f);
    for (int i = 0; i < 2; i++) {
        if (in[i] >= 0) close(in[i]);
        if (out[i] >= 0) close(out[i]);
    }
    free(state);
    return r;
}

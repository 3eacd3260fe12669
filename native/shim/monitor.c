/* The monitor: after `go`, relay init's reports to the caller, forward signals, proxy a terminal,
 * reap, and record the exit status. One poll loop, no allocation. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "shim.h"

struct state {
    const struct monitor_config *c;
    int chan, master, in_open, raw;
    struct termios saved;
    int created, failed, exec_failed;
    int paused, aborted; /* RUNTIME_HOOKS: init waits for the caller's answer; the caller said abort */
    int reaped, status;
};

/* The listener fd to SECCOMP_LISTENER's socket: one connection, the container process state with
 * the fd (SCM_RIGHTS) in the first sendmsg, then closed (runtime-spec, "Seccomp"). */
static int send_to_listener(const struct monitor_config *c, int fd, struct failure *f)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (!c->listener_path) return fail(f, EINVAL, "no seccomp listener in the plan");
    strncpy(addr.sun_path, c->listener_path, sizeof addr.sun_path - 1); /* the decoder checked its length */
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0) return fail(f, errno, "socket");
    size_t len = strlen(c->listener_state);
    struct iovec iov = {.iov_base = (void *)c->listener_state, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
    int r = 0;
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        r = fail(f, errno, "connecting to the seccomp listener %s", c->listener_path);
    } else {
        ssize_t n;
        do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < 0 || ((size_t)n < len && write_all(sock, c->listener_state + n, len - (size_t)n) < 0))
            r = fail(f, errno, "sending the seccomp listener fd to %s", c->listener_path);
    }
    close(sock);
    return r;
}

static void hand_to_listener(struct state *s, int fd)
{
    struct failure f;
    char answer[DETAIL_MAX + 64];
    if (send_to_listener(s->c, fd, &f) == 0) snprintf(answer, sizeof answer, "seccomp-ok");
    else snprintf(answer, sizeof answer, "seccomp-error %d %s", f.err, f.detail);
    send_msg(s->chan, answer, -1);
}

static void abort_init(struct state *s)
{
    s->paused = 0;
    s->aborted = 1;
    kill(s->c->init, SIGKILL);
}

/* The caller's answer to `runtime-hooks`: `resume` lets init go on; anything else (abort, EOF) ends it. */
static void on_caller(struct state *s)
{
    char line[16];
    if (sync_read_line(line, sizeof line) < 0 || strcmp(line, "resume") != 0) {
        abort_init(s);
        return;
    }
    s->paused = 0;
    if (s->chan >= 0) send_msg(s->chan, "resume", -1);
}

/* 1: a message was handled; 0: none waiting; -1: the channel is closed. */
static int on_message(struct state *s)
{
    char buf[DETAIL_MAX + 128];
    int fd;
    ssize_t n = recv_msg(s->chan, buf, sizeof buf, &fd, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    if (n <= 0) { /* init exec'd (the channel is close-on-exec) or is gone */
        close(s->chan);
        s->chan = -1;
        if (s->created) sync_close();
        return -1;
    }
    if (fd >= 0 && strcmp(buf, "master") == 0 && io_active()) { /* the shim holds the stdio: io.c reads it */
        if (io_set_master(fd) < 0) close(fd);
        return 1;
    }
    if (fd >= 0 && strcmp(buf, "seccomp") == 0) {
        hand_to_listener(s, fd);
        close(fd);
        return 1;
    }
    if (fd >= 0 && strcmp(buf, "master") == 0 && s->master < 0) {
        s->master = fd;
        if (isatty(0)) term_resize(0, fd);
        s->raw = term_raw(0, &s->saved);
        return 1;
    }
    if (fd >= 0) close(fd);
    if (strcmp(buf, "runtime-hooks") == 0) {
        s->paused = 1;
        sync_line("runtime-hooks");
        if (sync_fd_now() < 0) abort_init(s); /* nobody left to run the hooks */
    } else if (strcmp(buf, "created") == 0) {
        s->created = 1;
        sync_line("created");
        if (s->c->wait_start) sync_close();
    } else if (strncmp(buf, "error ", 6) == 0) {
        s->failed = 1;
        sync_line(buf);
    } else if (strncmp(buf, "exec-failed ", 12) == 0) {
        s->exec_failed = 1;
        sync_line(buf);
        sync_close();
    }
    return 1;
}

static void reap(struct state *s)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        if (pid == s->c->init) s->reaped = 1, s->status = status;
}

/* 1: copied; -1: nothing there yet; 0: end of input (or EIO once the pty's slave is gone). */
static int copy(int from, int to)
{
    char buf[4096];
    ssize_t n = read(from, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return -1;
    if (n <= 0) return 0;
    write_all(to, buf, (size_t)n);
    return 1;
}

static void on_signal(struct state *s)
{
    struct signalfd_siginfo si;
    if (read(s->c->sigfd, &si, sizeof si) != sizeof si) return;
    if (si.ssi_signo == SIGCHLD) reap(s);
    else if (si.ssi_signo == SIGWINCH) {
        if (s->master >= 0) term_resize(0, s->master);
    } else {
        kill(s->c->init, (int)si.ssi_signo);
    }
}

/* The exit file lives in the runtime state directory (under /run, gone at reboot): an atomic
 * rename is all a reader needs, so no fsync. */
static int write_exit_file(const char *path, pid_t pid, int code, int sig)
{
    char tmp[PATH_MAX], json[256], when[40];
    format_time(when, sizeof when);
    int len = snprintf(json, sizeof json, "{\"pid\":%d,\"exitCode\":%d,\"signal\":%d,\"finishedAt\":\"%s\"}",
                       (int)pid, code, sig, when);
    if (snprintf(tmp, sizeof tmp, "%s.%d.tmp", path, (int)getpid()) >= (int)sizeof tmp) return errno = ENAMETOOLONG, -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    if (write_all(fd, json, (size_t)len) < 0) {
        int err = errno;
        close(fd);
        unlink(tmp);
        return errno = err, -1;
    }
    close(fd);
    if (rename(tmp, path) < 0) {
        int err = errno;
        unlink(tmp);
        return errno = err, -1;
    }
    return 0;
}

/* The monitor lives as long as the container but runs little of the binary. Dropping the page
 * mappings of the read-only segments (never written, so nothing is lost) lets it fault back only
 * what the loop uses: with static glibc this takes VmRSS from about 840 kB to under 300 kB. */
static int drop_readonly_pages(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size, (void)data;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W)) continue;
        uintptr_t start = (info->dlpi_addr + ph->p_vaddr + page - 1) & ~(page - 1);
        uintptr_t end = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz) & ~(page - 1);
        if (end > start) madvise((void *)start, end - start, MADV_DONTNEED);
    }
    return 1; /* the first object is the program itself */
}

int monitor_run(const struct monitor_config *c)
{
    struct state s = {.c = c, .chan = c->chan, .master = -1, .in_open = 1};
    int dropped = 0;
    while (!s.reaped) {
        if (!dropped && (s.chan < 0 || (s.created && c->wait_start))) /* set-up is over: from here on it waits */
            dropped = dl_iterate_phdr(drop_readonly_pages, NULL);
        struct pollfd pfd[5 + IO_POLL_MAX] = {{.fd = c->sigfd, .events = POLLIN}};
        int n = 1, ichan = -1, imaster = -1, iin = -1, icaller = -1;
        if (s.chan >= 0) ichan = n, pfd[n++] = (struct pollfd){.fd = s.chan, .events = POLLIN};
        if (s.paused) icaller = n, pfd[n++] = (struct pollfd){.fd = sync_fd_now(), .events = POLLIN};
        if (s.master >= 0) imaster = n, pfd[n++] = (struct pollfd){.fd = s.master, .events = POLLIN};
        if (s.master >= 0 && s.in_open) iin = n, pfd[n++] = (struct pollfd){.fd = 0, .events = POLLIN};
        int iio = n;
        n += io_prepare(pfd + n);
        if (poll(pfd, (nfds_t)n, -1) < 0) {
            if (errno == EINTR) continue;
            s.reaped = waitpid(c->init, &s.status, 0) == c->init; /* cannot poll: just wait */
            break;
        }
        if (pfd[0].revents) on_signal(&s);
        if (ichan >= 0 && pfd[ichan].revents) on_message(&s);
        if (icaller >= 0 && pfd[icaller].revents) on_caller(&s);
        if (imaster >= 0 && pfd[imaster].revents && !copy(s.master, 1)) {
            close(s.master);
            s.master = -1;
        }
        if (iin >= 0 && pfd[iin].revents && s.master >= 0 && !copy(0, s.master)) s.in_open = 0;
        io_handle(pfd + iio, n - iio);
    }
    /* init is gone: take its last reports and the terminal's last output. */
    while (s.chan >= 0 && on_message(&s) > 0) {
    }
    if (s.master >= 0) {
        fcntl(s.master, F_SETFL, O_NONBLOCK);
        while (copy(s.master, 1) > 0) {
        }
        close(s.master);
    }
    if (s.raw) term_restore(0, &s.saved);
    io_finish(); /* the pipes are drained and the log written before anything says init has ended */

    /* Before `created` the caller learns of a failure on fd 4 and no container ever existed; after
     * it (a failure past WAIT_START) the exit file is the caller's only record. */
    if (s.failed && !s.created) return 1;
    if (s.aborted) {
        shim_log("aborted by the caller");
        return 1;
    }
    int code = WIFEXITED(s.status) ? WEXITSTATUS(s.status) : 128 + WTERMSIG(s.status);
    int sig = WIFSIGNALED(s.status) ? WTERMSIG(s.status) : 0;
    if (!s.created && !s.exec_failed) {
        char line[128];
        snprintf(line, sizeof line, "error %u LAUNCH %d init ended before the plan completed (exit code %d)", c->nops,
                 ESRCH, code);
        sync_line(line);
        return 1;
    }
    if (c->exit_file && write_exit_file(c->exit_file, c->init, code, sig) < 0) {
        char line[PATH_MAX + 64];
        snprintf(line, sizeof line, "writing exit file %s: %s", c->exit_file, strerror(errno));
        shim_log("%s", line);
        dprintf(2, "berth-shim: %s\n", line);
    }
    shim_log("init %d ended: exitCode %d signal %d", (int)c->init, code, sig);
    io_exit(code);
    return code;
}

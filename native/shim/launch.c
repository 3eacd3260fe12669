/* `berth-shim launch`: read and check the plan, do the shim's own set-up ops, start child1 (which
 * clones init), write the id maps, speak the sync protocol on fd 4, then become the monitor. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/sched.h>
#include <unistd.h>

#include <sys/stat.h>

#include "shim.h"

#define SYNC_FD 4

static int sync_fd = -1;
static int log_fd = -1;

void shim_log(const char *fmt, ...)
{
    if (log_fd < 0) return;
    char line[DETAIL_MAX + 128], when[40];
    va_list ap;
    format_time(when, sizeof when);
    int n = snprintf(line, sizeof line, "%s berth-shim[%d]: ", when, (int)getpid());
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    strcat(line, "\n");
    write_all(log_fd, line, strlen(line));
}

void sync_close(void)
{
    if (sync_fd >= 0) close(sync_fd);
    sync_fd = -1;
}

/* One protocol line to the caller; failures also go to the log, and to stderr once fd 4 is gone. */
void sync_line(const char *line)
{
    char buf[DETAIL_MAX + 128];
    int is_error = strncmp(line, "error ", 6) == 0 || strncmp(line, "exec-failed ", 12) == 0;
    snprintf(buf, sizeof buf, "%s\n", line);
    if (sync_fd >= 0 && write_all(sync_fd, buf, strlen(buf)) < 0) sync_close();
    if (!is_error) return;
    shim_log("%s", line);
    if (sync_fd < 0) dprintf(2, "berth-shim: %s", buf);
}

static void report_op(const struct plan *p, uint32_t index, int err, const char *detail)
{
    char line[DETAIL_MAX + 64];
    snprintf(line, sizeof line, "error %u %s %d %s", index, index < p->nops ? op_name(p->ops[index].code) : "LAUNCH",
             err, detail);
    sync_line(line);
}

static void inspect(const struct plan *p, struct launch *l)
{
    memset(l, 0, sizeof *l);
    l->plan = p;
    l->clone_index = l->userns_index = l->console_index = l->clone_into_index = -1;
    l->console = l->chan = -1;
    l->stdio[0] = l->stdio[1] = l->stdio[2] = -1;
    for (uint32_t i = 0; i < p->nops; i++) {
        const struct plan_op *op = &p->ops[i];
        const struct plan_field *a = op->f;
        switch (op->code) {
        case OP_JOIN_NS:
            if (a[1].n == CLONE_NEWUSER && l->userns_index < 0) l->userns_index = (int)i;
            l->needs_child1 = 1;
            break;
        case OP_CLONE_FLAGS:
            l->clone_flags = a[0].n;
            l->clone_index = (int)i;
            if ((a[0].n & CLONE_NEWUSER) && l->userns_index < 0) l->userns_index = (int)i;
            break;
        case OP_CONSOLE_SOCKET:
            l->console_index = (int)i;
            l->rows = (unsigned)a[1].n, l->cols = (unsigned)a[2].n;
            break;
        case OP_TERMINAL_PROXY:
            l->proxy = 1;
            l->rows = (unsigned)a[0].n, l->cols = (unsigned)a[1].n;
            break;
        case OP_WAIT_START: l->wait_start = 1; break;
        case OP_CLONE_INTO_CGROUP: l->clone_into_index = (int)i; break;
        case OP_CGROUP_JOIN: l->cgroup_joins++; break;
        case OP_TIME_OFFSETS: l->needs_child1 = 1; break;
        case OP_SETUP_TERMINAL: l->setup_terminal = 1; break;
        case OP_PRESERVE_FDS: l->preserve = (unsigned)a[0].n; break;
        }
    }
}

static const char *string_of(const struct plan *p, unsigned code, int *index)
{
    for (uint32_t i = 0; i < p->nops; i++)
        if (p->ops[i].code == code) {
            *index = (int)i;
            return p->ops[i].f[0].s;
        }
    return NULL;
}

static int connect_console(const char *path, struct failure *f)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) return fail(f, ENAMETOOLONG, "console socket %s", path);
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(f, errno, "socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fail(f, errno, "connecting to console socket %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

static int write_proc(pid_t pid, const char *file, const char *text, struct failure *f)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(f, errno, "opening %s", path);
    int r = write_all(fd, text, strlen(text)) < 0 ? fail(f, errno, "writing %s", path) : 0;
    close(fd);
    return r;
}

/* The id maps, in the order the kernel needs: setgroups before gid_map. */
static int write_maps(const struct plan *p, pid_t init)
{
    static const struct {
        unsigned code;
        const char *file;
    } order[] = {{OP_SETGROUPS, "setgroups"}, {OP_UID_MAP, "uid_map"}, {OP_GID_MAP, "gid_map"}};
    struct failure f;
    for (size_t k = 0; k < sizeof order / sizeof order[0]; k++) {
        int index;
        const char *text = string_of(p, order[k].code, &index);
        if (text && write_proc(init, order[k].file, text, &f) < 0) {
            report_op(p, (uint32_t)index, f.err, f.detail);
            return -1;
        }
    }
    return 0;
}

static void kill_init(pid_t init)
{
    kill(init, SIGKILL);
    while (waitpid(init, NULL, 0) < 0 && errno == EINTR) {
    }
}

int sync_fd_now(void) { return sync_fd; }

/* Reads a byte at a time so nothing after the line is taken from the caller's stream. */
int sync_read_line(char *buf, size_t size)
{
    size_t len = 0;
    while (sync_fd >= 0 && len < size - 1) {
        ssize_t n = read(sync_fd, buf + len, 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        if (buf[len] == '\n') {
            buf[len] = 0;
            return 0;
        }
        len++;
    }
    return -1;
}

/* The caller's answer to `pid N`: "go", or anything else (abort, EOF) to give up. */
static int wait_for_go(void)
{
    char line[16];
    return sync_read_line(line, sizeof line) == 0 && strcmp(line, "go") == 0;
}

static int detach_stdio(void)
{
    setsid(); /* fails harmlessly when the caller already made us a session leader */
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0) return -1;
    for (int fd = 0; fd <= 2; fd++) dup2(null, fd);
    close(null);
    return 0;
}

int cmd_launch(void)
{
    sync_fd = fcntl(SYNC_FD, F_GETFD) < 0 ? -1 : SYNC_FD;
    uint8_t *buf;
    size_t len;
    char line[DETAIL_MAX + 64];
    if (plan_read(3, &buf, &len) < 0) {
        snprintf(line, sizeof line, "error 0 PLAN %d reading the plan from fd 3: %s", errno, strerror(errno));
        sync_line(line);
        return 1;
    }
    close(3);
    if (len == 0) { /* a shim started ahead of need whose caller went away: nothing to do */
        free(buf);
        return 0;
    }
    struct plan_error perr;
    struct plan *plan = plan_decode(buf, len, &perr);
    free(buf);
    if (!plan) {
        snprintf(line, sizeof line, "error %u PLAN %d %s", perr.index, EINVAL, perr.msg);
        sync_line(line);
        return 1;
    }
    struct launch l;
    struct failure f;
    inspect(plan, &l);
    int index;
    const char *log_path = string_of(plan, OP_LOG_FILE, &index);
    if (log_path) {
        log_fd = fd_above(open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600), fd_floor(&l));
        if (log_fd < 0) {
            fail(&f, errno, "opening log file %s", log_path);
            report_op(plan, (uint32_t)index, f.err, f.detail);
            return 1;
        }
    }

    /* The start fifo is made here, as the caller's user, so init (maybe another uid) can open it. */
    const char *fifo_path = string_of(plan, OP_MKFIFO, &index);
    if (fifo_path) {
        mode_t old = umask(0);
        int made = mkfifo(fifo_path, (mode_t)plan->ops[index].f[1].n & 0777);
        umask(old);
        if (made < 0 && errno != EEXIST) {
            fail(&f, errno, "creating fifo %s", fifo_path);
            report_op(plan, (uint32_t)index, f.err, f.detail);
            return 1;
        }
    }

    /* The container's stdio (STDIO_PIPES): pipes, the json-file log, the attach socket. */
    if (io_setup(plan, &l, &f, &index) < 0) {
        report_op(plan, (uint32_t)index, f.err, f.detail);
        return 1;
    }

    /* Signals wait in a signalfd until the monitor loop; init resets its mask. */
    sigset_t mask;
    sigemptyset(&mask);
    int forwarded[] = {SIGCHLD, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH};
    for (size_t k = 0; k < sizeof forwarded / sizeof forwarded[0]; k++) sigaddset(&mask, forwarded[k]);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sigfd = fd_above(signalfd(-1, &mask, SFD_CLOEXEC), fd_floor(&l));
    int sv[2] = {-1, -1};
    if (sigfd < 0 || prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ||
        socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
        fail(&f, errno, "setting up the shim");
        report_op(plan, plan->nops, f.err, f.detail);
        return 1;
    }
    sv[0] = fd_above(sv[0], fd_floor(&l));
    l.chan = fd_above(sv[1], fd_floor(&l));
    if (l.console_index >= 0) {
        l.console = fd_above(connect_console(plan->ops[l.console_index].f[0].s, &f), fd_floor(&l));
        if (l.console < 0) {
            report_op(plan, (uint32_t)l.console_index, f.err, f.detail);
            return 1;
        }
    }

    /* With no namespace to enter first, the shim clones init itself; otherwise child1 does. */
    pid_t child1 = 0, init = 0;
    if (l.needs_child1) {
        child1 = fork();
        if (child1 < 0) {
            fail(&f, errno, "fork");
            report_op(plan, plan->nops, f.err, f.detail);
            return 1;
        }
        if (child1 == 0) {
            close(sv[0]);
            child1_main(&l);
        }
    } else {
        int *fds = calloc(plan->nops, sizeof *fds);
        if (!fds) {
            fail(&f, ENOMEM, "creating init");
            report_op(plan, plan->nops, f.err, f.detail);
            return 1;
        }
        long pid = open_host_paths(plan, fds, &f, &index) < 0 ? -1 : clone_init(&l, fds, &f, &index);
        for (uint32_t i = 0; i < plan->nops; i++)
            if (fds[i] >= 0) close(fds[i]);
        free(fds);
        if (pid < 0) {
            report_op(plan, index >= 0 ? (uint32_t)index : plan->nops, f.err, f.detail);
            return 1;
        }
        init = (pid_t)pid;
    }
    close(l.chan);
    if (l.console >= 0) close(l.console);
    io_forked(&l);

    /* child1 answers "pid N" or an error line, then exits; init is re-parented to us. With
     * CGROUP_JOIN, init also says "joined" once it is in its cgroups (in either order). */
    int joined = l.cgroup_joins == 0;
    ssize_t n = 0;
    while (init <= 0 || !joined) {
        n = recv_msg(sv[0], line, sizeof line, NULL, 0);
        if (n > 5 && strncmp(line, "pid ", 4) == 0) init = (pid_t)strtol(line + 4, NULL, 10);
        else if (n > 0 && strcmp(line, "joined") == 0) joined = 1;
        else break;
    }
    int status = 0;
    while (child1 > 0 && waitpid(child1, &status, 0) < 0 && errno == EINTR) {
    }
    if (n > 0 && strncmp(line, "error ", 6) == 0) {
        sync_line(line);
        if (init > 0) kill_init(init);
        return 1;
    }
    if (init <= 0 || !joined) {
        fail(&f, ECHILD, "%s (status 0x%x)",
             init <= 0 ? "child1 ended without starting init" : "init ended before joining its cgroups", status);
        report_op(plan, plan->nops, f.err, f.detail);
        if (init > 0) kill_init(init);
        return 1;
    }
    if (write_maps(plan, init) < 0) {
        kill_init(init);
        return 1;
    }

    /* Keep only what the monitor needs, and give the plan's memory back. */
    struct monitor_config mc = {.init = init, .chan = sv[0], .sigfd = sigfd, .wait_start = l.wait_start,
                                .nops = plan->nops};
    const char *exit_file = string_of(plan, OP_EXIT_FILE, &index);
    char *exit_copy = exit_file ? strdup(exit_file) : NULL;
    mc.exit_file = exit_copy;
    /* SECCOMP_LISTENER: the path and the state with init's pid, kept for when init sends its fd. */
    const char *listener = string_of(plan, OP_SECCOMP_LISTENER, &index);
    char *listener_copy = listener ? strdup(listener) : NULL, *listener_state = NULL;
    if (listener) {
        const struct plan_op *op = &plan->ops[index];
        listener_state = join_pid(op->f + 1, op->nfields - 1u, init);
        if (!listener_copy || !listener_state) {
            report_op(plan, (uint32_t)index, ENOMEM, "keeping the seccomp listener's state: out of memory");
            kill_init(init);
            return 1;
        }
    }
    mc.listener_path = listener_copy;
    mc.listener_state = listener_state;
    int detach = 0;
    for (uint32_t i = 0; i < plan->nops; i++) detach |= plan->ops[i].code == OP_DETACH;
    plan_free(plan);
    malloc_trim(0);
    if (detach) detach_stdio();

    snprintf(line, sizeof line, "pid %d", (int)init);
    sync_line(line);
    shim_log("init is pid %d", (int)init);
    if (!wait_for_go()) {
        kill_init(init);
        shim_log("aborted by the caller");
        return 1;
    }
    snprintf(line, sizeof line, "go %d", (int)init); /* init's pid as the shim sees it, for HOOK */
    send_msg(sv[0], line, -1);
    int code = monitor_run(&mc);
    free(exit_copy);
    free(listener_copy);
    free(listener_state);
    return code;
}

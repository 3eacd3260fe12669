/* child1 (joins namespaces, clones init) and init (waits for `go`, runs every container op in
 * plan order, ends in execve). Both report to the shim over the SOCK_SEQPACKET channel. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/sched.h>

#include "shim.h"

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct init_state {
    struct launch *l;
    pid_t host_pid; /* init's pid in the shim's pid namespace (from `go`), for HOOK's state */
    int fifo;
    int start;      /* the start fifo opened for writing: held while startContainer HOOKs run */
    int created;
    int started;    /* past WAIT_START: a HOOK's state has init's own pid (runc: getpid()) */
    char program[PATH_MAX]; /* EXEC's program as look_path found it, before `created` */
};

static void report(int chan, uint32_t index, const char *name, const struct failure *f)
{
    char line[DETAIL_MAX + 64];
    snprintf(line, sizeof line, "error %u %s %d %s", index, name, f->err, f->detail);
    send_msg(chan, line, -1);
}

static void __attribute__((noreturn)) die_op(const struct launch *l, int index, const struct failure *f)
{
    if (index >= 0) report(l->chan, (uint32_t)index, op_name(l->plan->ops[index].code), f);
    else report(l->chan, l->plan->nops, "LAUNCH", f);
    _exit(1);
}

/* Close every fd >= 3 except the channel, the console socket and the fds to preserve (5..). */
static void close_unneeded(const struct launch *l)
{
    unsigned keep[2] = {(unsigned)l->chan, l->console >= 0 ? (unsigned)l->console : ~0u};
    if (keep[0] > keep[1]) keep[0] = keep[1], keep[1] = (unsigned)l->chan;
    close_range(3, PRESERVE_SOURCE - 1, 0);
    unsigned lo = fd_floor(l);
    for (int i = 0; i < 2; i++) {
        if (keep[i] == ~0u) break;
        if (keep[i] > lo) close_range(lo, keep[i] - 1, 0);
        lo = keep[i] + 1;
    }
    close_range(lo, ~0u, 0);
}

static int write_file(const char *path, const char *content, struct failure *f)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail(f, errno, "opening %s", path);
    int r = write_all(fd, content, strlen(content));
    int err = errno;
    if (close(fd) < 0 && r == 0) r = -1, err = errno;
    return r < 0 ? fail(f, err, "writing %s", path) : 0;
}

/* Go's syscall error strings are strerror's, lower-cased ("no such file or directory"). */
static const char *go_error(int err, char *buf, size_t size)
{
    snprintf(buf, size, "%s", strerror(err));
    buf[0] = (char)tolower((unsigned char)buf[0]);
    return buf;
}

/* Go's findExecutable: a regular file the caller may execute (faccessat also refuses noexec mounts). */
static int executable(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) return -errno;
    if (S_ISDIR(st.st_mode)) return -EISDIR;
    if (faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0) return 0;
    if (errno != ENOSYS && errno != EPERM) return -errno;
    return (st.st_mode & 0111) ? 0 : -EACCES;
}

/* runc's exec.LookPath of argv[0] (in the container's root, with its PATH, as its user, before
 * `created`), so that create fails with runc's message instead of the program's exit 127. */
static int look_path(struct init_state *s, const struct plan_op *op, struct failure *f)
{
    const char *name = op->f[1].s, *search = DEFAULT_PATH;
    char reason[128];
    for (uint32_t i = 1 + (uint32_t)op->f[0].n; i < op->nfields; i++)
        if (strncmp(op->f[i].s, "PATH=", 5) == 0) search = op->f[i].s + 5;
    if (strchr(name, '/')) {
        int r = executable(name);
        if (r == -EISDIR || r == -EACCES) fail(f, 0, "exec: \"%s\": %s", name, go_error(-r, reason, sizeof reason));
        else if (r < 0) fail(f, 0, "exec: \"%s\": stat %s: %s", name, name, go_error(-r, reason, sizeof reason));
        else snprintf(s->program, sizeof s->program, "%s", name);
        return r < 0 ? (f->err = -r, -1) : 0;
    }
    for (const char *p = search;; p++) {
        size_t dlen = strcspn(p, ":");
        /* an empty entry is the working directory, as for execvp */
        int n = snprintf(s->program, sizeof s->program, "%.*s%s%s", (int)dlen, p, dlen ? "/" : "", name);
        if (n < (int)sizeof s->program && executable(s->program) == 0) return 0;
        p += dlen;
        if (!*p) break;
    }
    s->program[0] = 0;
    fail(f, 0, "exec: \"%s\": executable file not found in $PATH", name);
    f->err = ENOENT;
    return -1;
}

/* WAIT_START: `created`, then wait for `start` to open the fifo. The answer byte is written by
 * answer_start() once the HOOK ops that follow (startContainer hooks) have run. */
static int wait_start(struct init_state *s, struct failure *f)
{
    char path[64];
    uint32_t exec_index = s->l->plan->nops - 1; /* the plan ends with EXEC */
    if (look_path(s, &s->l->plan->ops[exec_index], f) < 0) die_op(s->l, (int)exec_index, f);
    send_msg(s->l->chan, "created", -1);
    s->created = 1;
    snprintf(path, sizeof path, "/proc/self/fd/%d", s->fifo);
    s->start = open(path, O_WRONLY | O_CLOEXEC); /* blocks until `start` opens it for reading */
    int err = errno;
    close(s->fifo);
    s->started = 1;
    return s->start < 0 ? fail(f, err, "opening the start fifo") : 0;
}

/* RUNTIME_HOOKS: init's mounts are made; the caller runs its prestart and createRuntime hooks (in
 * its own namespaces, looking at /proc/<init>) while init waits here for the shim's `resume`. */
static int runtime_hooks(struct init_state *s, struct failure *f)
{
    char answer[16];
    if (send_msg(s->l->chan, "runtime-hooks", -1) < 0) return fail(f, errno, "asking for the runtime's hooks");
    if (recv_msg(s->l->chan, answer, sizeof answer, NULL, 0) <= 0 || strcmp(answer, "resume") != 0)
        return fail(f, ECANCELED, "waiting for the runtime's hooks");
    return 0;
}

/* "0": go on; "1<message>" (one write, so it arrives whole): a startContainer hook failed. */
static int answer_start(struct init_state *s, const struct failure *failed, struct failure *f)
{
    char buf[DETAIL_MAX + 1];
    int len = failed ? snprintf(buf, sizeof buf, "1%s", failed->detail) : snprintf(buf, sizeof buf, "0");
    int r = write_all(s->start, buf, (size_t)len < sizeof buf ? (size_t)len : sizeof buf - 1);
    int err = errno;
    close(s->start);
    s->start = -1;
    return r < 0 ? fail(f, err, "writing the start fifo") : 0;
}

/* SECCOMP with NEW_LISTENER: the shim sends the fd to the listener (SECCOMP_LISTENER) and answers. */
static int hand_over_listener(struct init_state *s, int listener, struct failure *f)
{
    char answer[DETAIL_MAX + 64];
    int sent = send_msg(s->l->chan, "seccomp", listener);
    int err = errno;
    close(listener);
    if (sent < 0) return fail(f, err, "passing the seccomp listener fd to the shim");
    if (recv_msg(s->l->chan, answer, sizeof answer, NULL, 0) <= 0) return fail(f, EPIPE, "the shim did not answer");
    if (strcmp(answer, "seccomp-ok") == 0) return 0;
    /* "seccomp-error <errno> <detail>": the detail already names the error */
    char *detail = answer;
    int code = EPROTO;
    if (strncmp(answer, "seccomp-error ", 14) == 0) {
        code = (int)strtol(answer + 14, &detail, 10);
        if (*detail == ' ') detail++;
    }
    fail(f, 0, "%s", detail);
    f->err = code;
    return -1;
}

/* The caller passed the fds to preserve as 5..5+n-1; the container gets them as 3..3+n-1. */
static int preserve_fds(unsigned n, struct failure *f)
{
    for (unsigned i = 0; i < n; i++)
        if (dup2((int)(PRESERVE_SOURCE + i), (int)(3 + i)) < 0)
            return fail(f, errno, "moving preserved fd %u to %u", PRESERVE_SOURCE + i, 3 + i);
    unsigned from = 3 + n > PRESERVE_SOURCE ? 3 + n : PRESERVE_SOURCE;
    if (n > 0 && from <= PRESERVE_SOURCE + n - 1) close_range(from, PRESERVE_SOURCE + n - 1, 0);
    return 0;
}

static int exec_op(struct init_state *s, const struct plan_op *op, struct failure *f)
{
    size_t argc = (size_t)op->f[0].n, nenv = op->nfields - 1 - argc;
    char **argv = calloc(argc + 1, sizeof *argv), **envp = calloc(nenv + 1, sizeof *envp);
    if (!argv || !envp) return fail(f, ENOMEM, "exec arguments");
    for (size_t i = 0; i < argc; i++) argv[i] = (char *)op->f[1 + i].s;
    for (size_t i = 0; i < nenv; i++) envp[i] = (char *)op->f[1 + argc + i].s;
    /* Without WAIT_START (an exec'd process) the look-up happens here, still before `created`. */
    if (!s->created) {
        if (look_path(s, op, f) < 0) return -1;
        send_msg(s->l->chan, "created", -1);
        s->created = 1;
    }
    execve(s->program, argv, envp);
    int err = errno;
    /* The program changed since look_path found it: the late report, after `created`. */
    if (err == ENOENT || err == EACCES) {
        char line[DETAIL_MAX], reason[128];
        go_error(err, reason, sizeof reason);
        snprintf(line, sizeof line, "exec-failed %d exec %.800s: %.100s", err, s->program, reason);
        one_line(line + 12);
        send_msg(s->l->chan, line, -1);
        _exit(err == ENOENT ? 127 : 126);
    }
    return fail(f, err, "execve %s", s->program);
}

static int run_op(struct init_state *s, const struct plan_op *op, struct failure *f)
{
    const struct plan_field *a = op->f;
    switch (op->code) {
    case OP_MOUNT: return op_mount(op, f);
    case OP_MOUNT_IN_ROOT: return op_mount_in_root(op, f);
    case OP_REMOUNT: return op_remount(op, f);
    case OP_MKNOD_IN_ROOT: return op_mknod_in_root(op, f);
    case OP_SYMLINK_IN_ROOT: return op_symlink_in_root(op, f);
    case OP_MKDIR_IN_ROOT: return op_mkdir_in_root(op, f);
    case OP_PIVOT_ROOT: return op_pivot_root(op, f);
    case OP_MOVE_ROOT: return op_move_root(op, f);
    case OP_MASK_PATH: return op_mask_path(op, f);
    case OP_READONLY_PATH: return op_readonly_path(op, f);
    case OP_WRITE_FILE: return write_file(a[0].s, a[1].s, f);
    case OP_SETHOSTNAME:
        return sethostname(a[0].s, a[0].len) < 0 ? fail(f, errno, "sethostname %s", a[0].s) : 0;
    case OP_SETDOMAINNAME:
        return setdomainname(a[0].s, a[0].len) < 0 ? fail(f, errno, "setdomainname %s", a[0].s) : 0;
    case OP_SETRLIMIT: {
        struct rlimit rl = {.rlim_cur = a[1].n, .rlim_max = a[2].n};
        if (a[0].n > INT_MAX || prlimit(0, (int)a[0].n, &rl, NULL) < 0)
            return fail(f, a[0].n > INT_MAX ? EINVAL : errno, "setrlimit resource %llu soft %llu hard %llu",
                        (unsigned long long)a[0].n, (unsigned long long)a[1].n, (unsigned long long)a[2].n);
        return 0;
    }
    case OP_SETGROUPS_IDS: return op_setgroups_ids(op, f);
    case OP_SETGID: return op_setgid(op, f);
    case OP_SETUID: return op_setuid(op, f);
    case OP_UMASK: umask((mode_t)a[0].n & 0777); return 0;
    case OP_CAPS: return op_caps(op, f);
    case OP_NO_NEW_PRIVS: return op_no_new_privs(f);
    case OP_CHDIR: return chdir(a[0].s) < 0 ? fail(f, errno, "chdir %s", a[0].s) : 0;
    case OP_SECCOMP: {
        int listener;
        if (op_seccomp(op, &listener, f) < 0) return -1;
        return listener < 0 ? 0 : hand_over_listener(s, listener, f);
    }
    case OP_HOOK: return op_hook(op, s->started ? getpid() : s->host_pid, f);
    case OP_RUNTIME_HOOKS: return runtime_hooks(s, f);
    case OP_OPEN_START_FIFO:
        s->fifo = fd_above(open(a[0].s, O_PATH | O_CLOEXEC), fd_floor(s->l));
        return s->fifo < 0 ? fail(f, errno, "opening %s", a[0].s) : 0;
    case OP_WAIT_START: return wait_start(s, f);
    case OP_SETUP_TERMINAL: return op_setup_terminal(s->l, f);
    case OP_PRESERVE_FDS: return preserve_fds((unsigned)a[0].n, f);
    case OP_PERSONALITY:
        return personality((unsigned long)a[0].n) < 0 ? fail(f, errno, "personality 0x%llx", (unsigned long long)a[0].n)
                                                      : 0;
    case OP_UNSHARE:
        return unshare((int)a[0].n) < 0 ? fail(f, errno, "unshare 0x%llx", (unsigned long long)a[0].n) : 0;
    case OP_EXEC: return exec_op(s, op, f);
    }
    return fail(f, ENOSYS, "op %u is not a container operation", op->code);
}

/* CGROUP_JOIN: "0" moves the writing thread alone, which the kernel does without the global
 * threadgroup lock that writing a pid takes (a full RCU grace period on cgroup v1). child1 opened
 * the files as the caller, before joining any namespace; the kernel checks the opener. */
static void join_cgroups(struct launch *l, const int *fds)
{
    struct failure f;
    for (uint32_t i = 0; i < l->plan->nops; i++) {
        if (l->plan->ops[i].code != OP_CGROUP_JOIN) continue;
        if (write_all(fds[i], "0", 1) < 0)
            die_op(l, (int)i, (fail(&f, errno, "writing %s", l->plan->ops[i].f[0].s), &f));
        close(fds[i]);
    }
    if (l->cgroup_joins > 0) send_msg(l->chan, "joined", -1);
}

static void __attribute__((noreturn)) init_main(struct launch *l, const int *fds)
{
    struct failure f;
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigset_t none;
    for (int sig = 1; sig < NSIG; sig++) sigaction(sig, &dfl, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* STDIO_PIPES: the shim's pipes become fds 0-2. */
    for (int fd = 0; fd <= 2; fd++)
        if (l->stdio[fd] >= 0 && dup2(l->stdio[fd], fd) < 0)
            die_op(l, -1, (fail(&f, errno, "dup2 onto fd %d", fd), &f));
    join_cgroups(l, fds);
    close_unneeded(l);
    if (!l->setup_terminal) setsid();

    char go[32];
    if (recv_msg(l->chan, go, sizeof go, NULL, 0) <= 0 || strncmp(go, "go ", 3) != 0) _exit(1);
    if (l->userns_index >= 0 && become_ns_root(&f) < 0) die_op(l, l->userns_index, &f);

    struct init_state s = {.l = l, .host_pid = (pid_t)strtol(go + 3, NULL, 10), .fifo = -1, .start = -1};
    int wait_index = -1;
    for (uint32_t i = 0; i < l->plan->nops; i++) {
        const struct plan_op *op = &l->plan->ops[i];
        if (op->code < OP_FIRST_CONTAINER) continue;
        if (s.start >= 0 && op->code != OP_HOOK && answer_start(&s, NULL, &f) < 0) die_op(l, wait_index, &f);
        if (op->code == OP_WAIT_START) wait_index = (int)i;
        if (run_op(&s, op, &f) < 0) {
            if (s.start >= 0) answer_start(&s, &f, &(struct failure){0});
            die_op(l, (int)i, &f);
        }
    }
    _exit(1); /* not reached: the plan ends with EXEC */
}

/* The host paths child1 (or the shim, creating init directly) opens before any namespace is
 * joined: JOIN_NS, CGROUP_JOIN and CLONE_INTO_CGROUP (joining a mount namespace would change what
 * they name). fds[i] is op i's fd; -1 and *index on failure. */
int open_host_paths(const struct plan *p, int *fds, struct failure *f, int *index)
{
    for (uint32_t i = 0; i < p->nops; i++) {
        const struct plan_op *op = &p->ops[i];
        int flags = op->code == OP_JOIN_NS             ? O_RDONLY
                    : op->code == OP_CGROUP_JOIN        ? O_WRONLY
                    : op->code == OP_CLONE_INTO_CGROUP ? O_RDONLY | O_DIRECTORY
                                                        : -1;
        fds[i] = -1;
        if (flags < 0) continue;
        fds[i] = open(op->f[0].s, flags | O_CLOEXEC);
        if (fds[i] < 0) return *index = (int)i, fail(f, errno, "opening %s", op->f[0].s);
    }
    return 0;
}

/* Creates init with a fork-like clone (no new stack: the caller is single-threaded); in init this
 * does not return. CLONE_INTO_CGROUP (cgroup v2) makes init in its cgroup, with no migration
 * afterwards. Returns init's pid, or -1 with *index. */
long clone_init(struct launch *l, const int *fds, struct failure *f, int *index)
{
    const struct plan *p = l->plan;
    long pid;
    if (l->clone_into_index >= 0) {
        struct clone_args args;
        memset(&args, 0, sizeof args);
        args.flags = l->clone_flags | CLONE_INTO_CGROUP;
        args.exit_signal = SIGCHLD;
        args.cgroup = (uint64_t)fds[l->clone_into_index];
        pid = syscall(SYS_clone3, &args, sizeof args);
        if (pid < 0)
            return *index = l->clone_into_index,
                   fail(f, errno, "clone3 into cgroup %s (flags 0x%llx)", p->ops[l->clone_into_index].f[0].s,
                        (unsigned long long)l->clone_flags);
    } else {
        pid = syscall(SYS_clone, (unsigned long)l->clone_flags | SIGCHLD, 0, NULL, NULL, 0);
        if (pid < 0)
            return *index = l->clone_index, fail(f, errno, "clone (flags 0x%llx)", (unsigned long long)l->clone_flags);
    }
    if (pid == 0) init_main(l, fds);
    return pid;
}

void child1_main(struct launch *l)
{
    const struct plan *p = l->plan;
    struct failure f;
    int index;
    int *fds = calloc(p->nops, sizeof *fds);
    if (!fds) die_op(l, -1, (fail(&f, ENOMEM, "child1"), &f));
    if (open_host_paths(p, fds, &f, &index) < 0) die_op(l, index, &f);
    for (uint32_t i = 0; i < p->nops; i++) {
        const struct plan_op *op = &p->ops[i];
        if (op->code == OP_JOIN_NS && setns(fds[i], (int)op->f[1].n) < 0)
            die_op(l, (int)i, (fail(&f, errno, "setns %s (type 0x%llx)", op->f[0].s, (unsigned long long)op->f[1].n), &f));
    }
    for (uint32_t i = 0; i < p->nops; i++) {
        const struct plan_op *op = &p->ops[i];
        if (op->code != OP_TIME_OFFSETS) continue;
        if (unshare(CLONE_NEWTIME) < 0) die_op(l, (int)i, (fail(&f, errno, "unshare CLONE_NEWTIME"), &f));
        if (write_file("/proc/self/timens_offsets", op->f[0].s, &f) < 0) die_op(l, (int)i, &f);
    }
    long pid = clone_init(l, fds, &f, &index);
    if (pid < 0) die_op(l, index, &f);
    char line[32];
    snprintf(line, sizeof line, "pid %ld", pid);
    send_msg(l->chan, line, -1);
    _exit(0);
}

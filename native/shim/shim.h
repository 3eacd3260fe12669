/* Shared declarations of berth-shim's modules: launch (shim side), container (init side),
 * mounts, creds, terminal, monitor and small utilities. */
#ifndef BERTH_SHIM_H
#define BERTH_SHIM_H

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>
#include <termios.h>

#include "plan.h"

#define DETAIL_MAX 1024

/* The first failure of an operation: its errno and a one-line detail (path and strerror). */
struct failure {
    int err;
    char detail[DETAIL_MAX];
};

/* Sets f (detail gets ": strerror(err)" appended when err != 0) and returns -1. */
int fail(struct failure *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* What the shim, child1 and init need to know about a plan beyond its ops. */
struct launch {
    const struct plan *plan;
    uint64_t clone_flags;
    int clone_index;    /* CLONE_FLAGS op or -1 */
    int clone_into_index; /* CLONE_INTO_CGROUP op or -1 */
    int cgroup_joins;     /* CGROUP_JOIN ops: init reports `joined` once it has written them */
    int needs_child1;     /* JOIN_NS or TIME_OFFSETS: namespaces to enter before init is cloned */
    int userns_index;   /* the op that creates or joins a user namespace, or -1 */
    int console_index;  /* CONSOLE_SOCKET op or -1 */
    int proxy;          /* TERMINAL_PROXY present */
    int wait_start;     /* WAIT_START present */
    int setup_terminal; /* SETUP_TERMINAL present */
    unsigned rows, cols;
    unsigned preserve; /* PRESERVE_FDS count: the shim's fds 5.. become the container's 3.. */
    int console;       /* connected console socket, or -1 */
    int chan;          /* child1/init end of the shim's SOCK_SEQPACKET channel */
    int stdio[3];      /* STDIO_PIPES: what child1 makes init's fds 0, 1, 2 (pipe ends, /dev/null), or -1 */
};

/* fds that must not collide with preserved fds are moved to at least this number. */
#define PRESERVE_SOURCE 5
unsigned fd_floor(const struct launch *l);

/* util.c */
int write_all(int fd, const void *buf, size_t len);
int fd_above(int fd, unsigned min); /* moves fd to >= min with O_CLOEXEC; returns the new fd or -1 */
int send_msg(int sock, const char *text, int fd); /* fd < 0: no fd attached */
ssize_t recv_msg(int sock, char *buf, size_t size, int *fd, int flags); /* NUL-terminates; *fd = -1 if none */
void one_line(char *s);                                                 /* control characters become '?' */
void format_time(char *buf, size_t size);                               /* RFC 3339, UTC, nanoseconds */
/* The n strings joined with pid in decimal (a state JSON the pid goes into); malloc'd, NULL on ENOMEM. */
char *join_pid(const struct plan_field *parts, unsigned n, long pid);

/* launch.c: `berth-shim launch` (plan on fd 3, sync on fd 4); returns the exit status. */
int cmd_launch(void);

/* launch.c: lines to the caller (fd 4, else stderr) and the log file. */
void sync_line(const char *line);
void sync_close(void);
int sync_fd_now(void);                 /* fd 4 while it is open, else -1 */
int sync_read_line(char *buf, size_t size); /* one line from the caller, without '\n'; -1 at EOF or error */
void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* container.c: child1 and init; neither returns. */
void child1_main(struct launch *l) __attribute__((noreturn));
/* container.c: what child1 does, for the shim when it creates init itself (no namespace to join). */
int open_host_paths(const struct plan *p, int *fds, struct failure *f, int *index);
long clone_init(struct launch *l, const int *fds, struct failure *f, int *index);

/* mounts.c, creds.c, terminal.c: one function per op, 0 or -1 with f filled. */
int op_mount(const struct plan_op *op, struct failure *f);
int op_mount_in_root(const struct plan_op *op, struct failure *f);
int op_remount(const struct plan_op *op, struct failure *f);
int op_mknod_in_root(const struct plan_op *op, struct failure *f);
int op_symlink_in_root(const struct plan_op *op, struct failure *f);
int op_mkdir_in_root(const struct plan_op *op, struct failure *f);
int op_pivot_root(const struct plan_op *op, struct failure *f);
int op_move_root(const struct plan_op *op, struct failure *f);
int op_mask_path(const struct plan_op *op, struct failure *f);
int op_readonly_path(const struct plan_op *op, struct failure *f);
int op_setgroups_ids(const struct plan_op *op, struct failure *f);
int op_setgid(const struct plan_op *op, struct failure *f);
int op_setuid(const struct plan_op *op, struct failure *f);
int op_caps(const struct plan_op *op, struct failure *f);
int op_no_new_privs(struct failure *f);
int op_seccomp(const struct plan_op *op, int *listener, struct failure *f); /* *listener: NEW_LISTENER's fd or -1 */
int become_ns_root(struct failure *f);
int op_setup_terminal(struct launch *l, struct failure *f);

/* hooks.c: runs one OCI hook (HOOK op) as a child of init and waits for it; pid goes into its state. */
int op_hook(const struct plan_op *op, pid_t pid, struct failure *f);

/* terminal.c, shim side of TERMINAL_PROXY. */
int term_raw(int fd, struct termios *saved); /* 1 when fd is a tty that was made raw */
void term_restore(int fd, const struct termios *saved);
void term_resize(int from_tty, int master);

/* io.c: the container's stdio held by the shim (STDIO_PIPES, OPEN_STDIN, LOG_JSON_FILE,
 * ATTACH_SOCKET). Nothing happens without STDIO_PIPES. */
#define IO_CLIENTS 32                  /* attach clients at once */
#define IO_POLL_MAX (4 + IO_CLIENTS)   /* stdout, stderr, stdin, listener, clients */
int io_setup(const struct plan *p, struct launch *l, struct failure *f, int *index); /* before child1 */
void io_forked(struct launch *l);      /* the shim closes init's ends */
int io_active(void);
int io_set_master(int fd);             /* SETUP_TERMINAL's master; -1 when one is already there */
int io_prepare(struct pollfd *pfd);    /* adds the fds to poll, returns how many */
void io_handle(const struct pollfd *pfd, int n);
void io_finish(void);                  /* init is gone: read the output to its end, flush the log */
void io_exit(int code);                /* the exit frame to every client, then close everything */

/* monitor.c: runs after `go`; returns the shim's exit status. */
struct monitor_config {
    pid_t init;
    int chan;
    int sigfd;
    int wait_start;
    uint32_t nops;
    const char *exit_file;
    const char *listener_path;  /* SECCOMP_LISTENER: where a listener fd from init goes, or NULL */
    const char *listener_state; /* the container process state sent with it */
};
int monitor_run(const struct monitor_config *c);

#endif

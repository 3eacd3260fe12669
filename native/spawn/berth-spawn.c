/* berth-spawn: berthd's shim-spawning coprocess. A fork of berthd (a large Node.js process) costs
 * its main thread milliseconds per container; a fork of this small static program costs
 * microseconds. It decides nothing: berthd says when, this program forks and execs berth-shim
 * with the two sockets berthd connected, and reports the shim's pid and, later, its exit status.
 * Protocol: docs/spawn-helper.md.
 *
 *   berth-spawn <dir> <shim>
 *
 * It listens on <dir>/spawn.sock (a directory only berthd can enter; connections from any process
 * but its parent are refused as well) and writes `ready` on stdout. Each shim takes two
 * connections, each opened with one header line: `plan <token>` (to become the shim's fd 3) and
 * `sync <token>` (its fd 4). Once both of a token are in, the shim is started in its own session
 * with /dev/null as stdio and an empty environment, and stdout says `spawned <token> <pid>` or
 * `failed <token> <errno> <message>`. `exit <pid> <code> <signal>` follows when the shim is
 * reaped. At EOF on stdin (berthd is gone) it removes the socket and its directory and exits; its
 * shims run on (re-parented), as they did when berthd itself was their parent. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_CONNS 512  /* connections whose header has not arrived */
#define MAX_PAIRS 512  /* tokens with one of their two connections in */
#define HEADER_MAX 40  /* "sync 4294967295\n" and some room */

static const char *shim_path;
static char socket_path[PATH_MAX];
static char dir_path[PATH_MAX];

static int conns[MAX_CONNS];
static size_t nconns;

static struct pair {
    unsigned token;
    int plan, sync;
} pairs[MAX_PAIRS];
static size_t npairs;

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One line to berthd; a berthd that stopped reading is gone, and so is this process. */
static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n > sizeof line - 2) n = sizeof line - 2;
    line[n] = '\n';
    if (write_all(1, line, (size_t)n + 1) < 0) {
        unlink(socket_path);
        rmdir(dir_path);
        _exit(1);
    }
}

static void cleanup_and_exit(int code)
{
    unlink(socket_path);
    rmdir(dir_path);
    exit(code);
}

/* In the child: fds 0-2 /dev/null, plan on 3, sync on 4, nothing else; then the shim. */
static void exec_shim(int plan, int sync)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    setsid();
    /* Above 4 first, so that the dup2s below cannot overwrite one another. */
    int p = fcntl(plan, F_DUPFD, 10), s = fcntl(sync, F_DUPFD, 10);
    int null = open("/dev/null", O_RDWR);
    if (p < 0 || s < 0 || null < 0) _exit(127);
    if (dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0 || dup2(p, 3) < 0 || dup2(s, 4) < 0)
        _exit(127);
    close_range(5, ~0U, 0);
    char *argv[] = {(char *)shim_path, "launch", NULL};
    char *envp[] = {NULL}; /* the shim reads no environment (EXEC carries the container's) */
    execve(shim_path, argv, envp);
    _exit(127);
}

static void spawn_shim(unsigned token, int plan, int sync)
{
    /* The shim reads and writes them blocking, as it would pipes. */
    fcntl(plan, F_SETFL, fcntl(plan, F_GETFL) & ~O_NONBLOCK);
    fcntl(sync, F_SETFL, fcntl(sync, F_GETFL) & ~O_NONBLOCK);
    pid_t pid = fork();
    if (pid == 0) exec_shim(plan, sync);
    int err = errno;
    close(plan);
    close(sync);
    if (pid < 0) say("failed %u %d fork: %s", token, err, strerror(err));
    else say("spawned %u %d", token, (int)pid);
}

/* A connection's header is in: file it under its token, and start the shim once both are. */
static void filed(int fd, int is_plan, unsigned token)
{
    struct pair *p = NULL;
    for (size_t i = 0; i < npairs; i++)
        if (pairs[i].token == token) p = &pairs[i];
    if (!p) {
        if (npairs == MAX_PAIRS) {
            close(fd);
            say("failed %u %d too many shims waiting for their second connection", token, EAGAIN);
            return;
        }
        p = &pairs[npairs++];
        *p = (struct pair){.token = token, .plan = -1, .sync = -1};
    }
    int *slot = is_plan ? &p->plan : &p->sync;
    if (*slot >= 0) close(*slot); /* a repeated header: the newer connection wins */
    *slot = fd;
    if (p->plan < 0 || p->sync < 0) return;
    spawn_shim(token, p->plan, p->sync);
    *p = pairs[--npairs];
}

/* Read a connection's header without taking a byte past it (the plan may follow at once).
 * Returns 1 when the connection is done with (filed or closed), 0 to wait for more. */
static int read_header(int fd)
{
    char buf[HEADER_MAX + 1];
    ssize_t n = recv(fd, buf, HEADER_MAX, MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (n <= 0) {
        close(fd);
        return 1;
    }
    char *nl = memchr(buf, '\n', (size_t)n);
    if (!nl) {
        if (n < HEADER_MAX) return 0;
        close(fd);
        return 1;
    }
    size_t len = (size_t)(nl - buf) + 1;
    if (recv(fd, buf, len, 0) != (ssize_t)len) {
        close(fd);
        return 1;
    }
    buf[len - 1] = 0;
    char kind[8];
    unsigned token;
    char extra;
    if (sscanf(buf, "%7s %u%c", kind, &token, &extra) != 2 || (strcmp(kind, "plan") && strcmp(kind, "sync"))) {
        close(fd);
        return 1;
    }
    filed(fd, strcmp(kind, "plan") == 0, token);
    return 1;
}

static void accept_all(int listener)
{
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0) return;
        struct ucred cred;
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid != getppid() ||
            nconns == MAX_CONNS) {
            close(fd);
            continue;
        }
        conns[nconns++] = fd;
    }
}

static void reap_all(int sigfd)
{
    struct signalfd_siginfo info;
    while (read(sigfd, &info, sizeof info) > 0) {
    }
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (WIFEXITED(status)) say("exit %d %d 0", (int)pid, WEXITSTATUS(status));
        else if (WIFSIGNALED(status)) say("exit %d 0 %d", (int)pid, WTERMSIG(status));
    }
}

static int listen_at(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    mode_t old = umask(0077);
    int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (r < 0 || listen(fd, 1024) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: berth-spawn DIR SHIM  (see docs/spawn-helper.md)\n");
        return 2;
    }
    shim_path = argv[2];
    if (snprintf(dir_path, sizeof dir_path, "%s", argv[1]) >= (int)sizeof dir_path ||
        snprintf(socket_path, sizeof socket_path, "%s/spawn.sock", argv[1]) >= (int)sizeof socket_path) {
        fprintf(stderr, "berth-spawn: %s: path too long\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    int listener = listen_at(socket_path);
    if (sigfd < 0 || listener < 0) {
        fprintf(stderr, "berth-spawn: listening on %s: %s\n", socket_path, strerror(errno));
        cleanup_and_exit(1);
    }
    say("ready");
    static struct pollfd fds[3 + MAX_CONNS];
    for (;;) {
        fds[0] = (struct pollfd){.fd = 0, .events = POLLIN};
        fds[1] = (struct pollfd){.fd = listener, .events = POLLIN};
        fds[2] = (struct pollfd){.fd = sigfd, .events = POLLIN};
        for (size_t i = 0; i < nconns; i++) fds[3 + i] = (struct pollfd){.fd = conns[i], .events = POLLIN};
        size_t polled = nconns;
        if (poll(fds, 3 + polled, -1) < 0) {
            if (errno == EINTR) continue;
            perror("berth-spawn: poll");
            cleanup_and_exit(1);
        }
        if (fds[0].revents) {
            char buf[256];
            ssize_t n = read(0, buf, sizeof buf);
            if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) cleanup_and_exit(0);
        }
        if (fds[2].revents) reap_all(sigfd);
        /* Headers before new connections: the indexes in fds still match conns. */
        for (size_t i = polled; i-- > 0;) {
            if (!fds[3 + i].revents || !read_header(conns[i])) continue;
            conns[i] = conns[--nconns];
        }
        if (fds[1].revents) accept_all(listener);
    }
}

/* The container's stdio held by the shim (STDIO_PIPES): init's stdout and stderr are pipes (or the
 * pty master) that the monitor's poll loop reads, writes to a json-file log in Docker's format
 * (LOG_JSON_FILE, rotated) and copies to every client of an attach socket (ATTACH_SOCKET), who may
 * also send stdin (OPEN_STDIN), resize the pty and close stdin. See docs/shim-plan.md, "Container
 * stdio". Single-threaded and non-blocking except for the log file: the log never loses a line, a
 * slow client is dropped, nothing ever waits for a client. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

#define LINE_MAX_BYTES 16384    /* longer lines become several entries, as Docker splits them */
#define LOG_BUF_SIZE 32768      /* log entries are gathered here and written once per poll round */
#define STDIN_BUF_SIZE 16384    /* stdin from clients not yet taken by the container */
#define CLIENT_READ 4096        /* one read from a client */
#define BACKLOG_MAX (1u << 20)  /* output a client may fall behind by before it is dropped */
#define DRAIN_IDLE_MS 1000      /* after init's exit: output writers silent this long are orphans */
#define DRAIN_MAX_MS 10000
#define EXIT_FLUSH_MS 2000      /* time given to clients to take their last frames */

enum { FRAME_STDOUT = 1, FRAME_STDERR = 2, FRAME_EXIT = 3 };      /* shim -> client */
enum { INPUT_STDIN = 0, INPUT_CLOSE_STDIN = 1, INPUT_RESIZE = 2 }; /* client -> shim */
enum { SLOT_LISTEN, SLOT_CLIENT, SLOT_OUT, SLOT_IN };

struct client {
    int fd;              /* -1: a free slot */
    int eof;             /* the client sent EOF: it only receives from now on */
    uint8_t head[5];     /* the frame header being read */
    unsigned head_len;
    uint32_t left;       /* payload bytes of the current frame still to come */
    uint8_t arg[4];      /* RESIZE's payload */
    unsigned arg_len;
    char *backlog;       /* BACKLOG_MAX bytes mapped on first need; only touched pages cost memory */
    size_t from, to;     /* unsent output is backlog[from, to) */
};

/* Big buffers live in .bss (their pages count only once touched), the state beside them. */
static char line_buf[2][LINE_MAX_BYTES];
static char log_buf[LOG_BUF_SIZE];
static char stdin_buf[STDIN_BUF_SIZE];

static struct {
    int active, tty;
    int stdin_open;          /* OPEN_STDIN and not closed yet: clients' stdin is taken */
    pid_t owner;             /* the shim's pid: child1 and init inherit the atexit handler */
    int out[2];              /* stdout, stderr read ends (tty: out[0] is the master); -1 at EOF */
    size_t line_len[2];      /* an unfinished line at the start of line_buf[s] */
    int in;                  /* stdin pipe's write end, or a dup of the master (-1 until it comes) */
    int in_close;            /* close stdin once stdin_buf is written */
    size_t in_len;
    struct winsize size;     /* a resize that came before the pty master */
    int log;                 /* json-file log, or -1 */
    char *log_path;
    size_t log_path_len;
    uint64_t max_size, log_size;
    unsigned max_files;
    int log_failed;
    size_t log_len;
    int listen;
    char *sock_path;
    struct client clients[IO_CLIENTS];
    struct {
        uint8_t kind, index;
    } slot[IO_POLL_MAX];
} io;

int io_active(void) { return io.active; }

static long elapsed_ms(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void set_nonblock(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

/* ---- the json-file log ---- */

static void log_flush(void)
{
    if (io.log >= 0 && io.log_len > 0 && write_all(io.log, log_buf, io.log_len) < 0 && !io.log_failed) {
        io.log_failed = 1; /* reported once; the container is never held up by its log */
        shim_log("writing log %s: %s", io.log_path, strerror(errno));
    }
    io.log_len = 0;
}

static void log_put(const char *p, size_t len)
{
    while (len > 0) {
        if (io.log_len == LOG_BUF_SIZE) log_flush();
        size_t take = len < LOG_BUF_SIZE - io.log_len ? len : LOG_BUF_SIZE - io.log_len;
        memcpy(log_buf + io.log_len, p, take);
        io.log_len += take, p += take, len -= take;
    }
}

/* Length of the valid UTF-8 sequence at s (the ranges Go's utf8.DecodeRune accepts), 0 if none. */
static size_t utf8_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    size_t n;
    if (c >= 0xc2 && c <= 0xdf) n = 2;
    else if (c >= 0xe0 && c <= 0xef) n = 3, lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    else if (c >= 0xf0 && c <= 0xf4) n = 4, lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    else return 0;
    if (avail < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xc0) != 0x80) return 0;
    return n;
}

/* A JSON string body escaped exactly as Docker's json-file does (control characters, ", \, <, >, &,
 * U+2028, U+2029; each byte of invalid UTF-8 becomes U+FFFD). Returns its length; writes it when emit. */
static size_t json_escape(const unsigned char *s, size_t len, int emit)
{
    static const char hex[] = "0123456789abcdef";
    size_t total = 0, start = 0, i = 0;
    while (i < len) {
        unsigned char c = s[i];
        char esc[6];
        size_t esc_len, step = 1;
        if (c < 0x80) {
            if (c >= 0x20 && c != '\\' && c != '"' && c != '<' && c != '>' && c != '&') {
                i++;
                continue;
            }
            if (c == '\\' || c == '"' || c == '\n' || c == '\r') {
                esc[0] = '\\', esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : (char)c, esc_len = 2;
            } else {
                memcpy(esc, "\\u00", 4), esc[4] = hex[c >> 4], esc[5] = hex[c & 15], esc_len = 6;
            }
        } else {
            size_t n = utf8_len(s + i, len - i);
            if (n == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
                memcpy(esc, "\\u202", 5), esc[5] = s[i + 2] == 0xa8 ? '8' : '9', esc_len = 6, step = 3;
            } else if (n == 0) {
                memcpy(esc, "\\ufffd", 6), esc_len = 6;
            } else {
                i += n;
                continue;
            }
        }
        total += i - start + esc_len;
        if (emit) log_put((const char *)s + start, i - start), log_put(esc, esc_len);
        i += step;
        start = i;
    }
    if (emit) log_put((const char *)s + start, len - start);
    return total + len - start;
}

static char *digits(char *p, unsigned long v, int width)
{
    for (int k = width - 1; k >= 0; k--, v /= 10) p[k] = (char)('0' + v % 10);
    return p + width;
}

/* Go's RFC3339Nano in UTC, as Docker writes it: trailing zeros of the fraction are dropped. Done
 * by hand (days to civil date, Hinnant's algorithm): snprintf and gmtime_r would fault much of
 * libc's text back into the monitor's memory. Returns the length. */
static size_t log_time(char *buf)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long days = ts.tv_sec / 86400 + 719468, secs = ts.tv_sec % 86400; /* days since 0000-03-01: after 1970 */
    long era = days / 146097;
    unsigned long doe = (unsigned long)(days - era * 146097);
    unsigned long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    unsigned long day = doy - (153 * mp + 2) / 5 + 1, month = mp < 10 ? mp + 3 : mp - 9;
    unsigned long year = yoe + (unsigned long)era * 400 + (month <= 2);
    char *p = digits(buf, year, 4);
    *p++ = '-', p = digits(p, month, 2), *p++ = '-', p = digits(p, day, 2);
    *p++ = 'T', p = digits(p, (unsigned long)secs / 3600, 2), *p++ = ':';
    p = digits(p, (unsigned long)secs / 60 % 60, 2), *p++ = ':', p = digits(p, (unsigned long)secs % 60, 2);
    if (ts.tv_nsec != 0) {
        *p++ = '.', p = digits(p, (unsigned long)ts.tv_nsec, 9);
        while (p[-1] == '0') p--;
    }
    *p++ = 'Z';
    return (size_t)(p - buf);
}

/* path, or path.<index>; by hand for the same reason as log_time. */
static void log_name(char *buf, unsigned index)
{
    char rev[12];
    size_t len = io.log_path_len, n = 0;
    memcpy(buf, io.log_path, len);
    if (index) buf[len++] = '.';
    for (; index; index /= 10) rev[n++] = (char)('0' + index % 10);
    while (n) buf[len++] = rev[--n];
    buf[len] = 0;
}

/* path -> path.1 -> ... -> path.<max_files-1> (the oldest is replaced), then a new path. rename(3)
 * is called as the raw syscall: the wrapper sits in a page of libc the monitor otherwise never runs. */
static void log_rotate(void)
{
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    log_flush();
    close(io.log);
    for (unsigned k = io.max_files - 1; k >= 1; k--) {
        log_name(from, k - 1);
        log_name(to, k);
        if (syscall(SYS_renameat2, AT_FDCWD, from, AT_FDCWD, to, 0) < 0 && errno != ENOENT)
            shim_log("rotating %s: %s", from, strerror(errno));
    }
    int trunc = io.max_files == 1 ? O_TRUNC : 0;
    io.log = open(io.log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | trunc, 0640);
    if (io.log < 0) shim_log("reopening log %s: %s", io.log_path, strerror(errno));
    io.log_size = 0;
}

static void log_entry(int stream, const char *data, size_t len, const char *when, size_t when_len)
{
    static const char *const names[] = {"stdout", "stderr"};
    size_t size = 8 + json_escape((const unsigned char *)data, len, 0) + 12 + 6 + 10 + when_len + 3;
    if (io.max_size && io.log_size > 0 && io.log_size + size > io.max_size) log_rotate();
    log_put("{\"log\":\"", 8);
    json_escape((const unsigned char *)data, len, 1);
    log_put("\",\"stream\":\"", 12);
    log_put(names[stream], 6);
    log_put("\",\"time\":\"", 10);
    log_put(when, when_len);
    log_put("\"}\n", 3);
    io.log_size += size;
}

/* n new bytes follow the unfinished line in line_buf[s]: log every complete line, and the rest when
 * it fills the buffer (a partial entry, without \n) or at the end of the stream. */
static void log_lines(int s, size_t n, int eof)
{
    char *buf = line_buf[s], when[48];
    size_t end = io.line_len[s] + n, start = 0, when_len;
    if (io.log < 0) {
        io.line_len[s] = 0;
        return;
    }
    when_len = log_time(when);
    for (char *p = buf + io.line_len[s], *nl; (nl = memchr(p, '\n', (size_t)(buf + end - p))); p = nl + 1) {
        log_entry(s, buf + start, (size_t)(nl + 1 - buf) - start, when, when_len);
        start = (size_t)(nl + 1 - buf);
    }
    if (end > start && (end - start == LINE_MAX_BYTES || eof)) {
        log_entry(s, buf + start, end - start, when, when_len);
        start = end;
    }
    memmove(buf, buf + start, end - start);
    io.line_len[s] = end - start;
}

/* ---- attach clients ---- */

static void client_drop(struct client *c, const char *why)
{
    if (why) shim_log("attach client dropped: %s", why);
    close(c->fd);
    if (c->backlog) munmap(c->backlog, BACKLOG_MAX);
    memset(c, 0, sizeof *c);
    c->fd = -1;
}

static int client_queue(struct client *c, const char *p, size_t len)
{
    if (!c->backlog) {
        void *map = mmap(NULL, BACKLOG_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (map == MAP_FAILED) return -1;
        c->backlog = map;
    }
    if (c->to - c->from + len > BACKLOG_MAX) return -1;
    if (c->to + len > BACKLOG_MAX) {
        memmove(c->backlog, c->backlog + c->from, c->to - c->from);
        c->to -= c->from, c->from = 0;
    }
    memcpy(c->backlog + c->to, p, len);
    c->to += len;
    return 0;
}

/* A frame to one client: sent now if nothing waits before it, the rest queued. */
static void client_send(struct client *c, const uint8_t *head, const char *data, size_t len)
{
    size_t sent = 0, total = 5 + len;
    if (c->from == c->to) {
        struct iovec iov[2] = {{.iov_base = (void *)head, .iov_len = 5}, {.iov_base = (void *)data, .iov_len = len}};
        struct msghdr msg = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
        ssize_t n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            client_drop(c, NULL); /* it went away */
            return;
        }
        if (n > 0) sent = (size_t)n;
    }
    if (sent == total) return;
    int r = sent < 5 ? client_queue(c, (const char *)head + sent, 5 - sent) : 0;
    if (r == 0) r = client_queue(c, data + (sent > 5 ? sent - 5 : 0), len - (sent > 5 ? sent - 5 : 0));
    if (r < 0) client_drop(c, "it fell more than 1 MiB behind the output");
}

static void client_flush(struct client *c)
{
    ssize_t n = send(c->fd, c->backlog + c->from, c->to - c->from, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        client_drop(c, NULL);
        return;
    }
    if (n > 0) c->from += (size_t)n;
    if (c->from == c->to) { /* caught up: give the pages back */
        madvise(c->backlog, c->to, MADV_DONTNEED);
        c->from = c->to = 0;
    }
}

static void broadcast(uint8_t kind, const char *data, size_t len)
{
    uint8_t head[5] = {kind};
    put_be32(head + 1, (uint32_t)len);
    for (int i = 0; i < IO_CLIENTS; i++)
        if (io.clients[i].fd >= 0) client_send(&io.clients[i], head, data, len);
}

/* Accept every pending client before any output of this poll round is read: a client that
 * connected before `go` must see all of it, even when several connected at once. */
static void accept_clients(void)
{
    for (;;) {
        int fd = accept4(io.listen, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        int placed = 0;
        for (int i = 0; i < IO_CLIENTS && !placed; i++)
            if (io.clients[i].fd < 0) {
                io.clients[i].fd = fd;
                placed = 1;
            }
        if (!placed) {
            shim_log("attach client refused: %d clients are attached already", IO_CLIENTS);
            close(fd);
        }
    }
}

/* ---- stdin ---- */

static void stdin_close_now(void)
{
    if (io.in >= 0) close(io.in);
    io.in = -1;
    io.in_len = 0;
    io.stdin_open = 0;
}

/* Stdin data is taken from clients only while this much room is left (or it is discarded anyway). */
static int stdin_room(void) { return !io.stdin_open || io.in_close || STDIN_BUF_SIZE - io.in_len >= CLIENT_READ; }

static void stdin_add(const uint8_t *p, size_t len)
{
    if (!io.stdin_open || io.in_close) return; /* no stdin, or closed: discarded */
    if (len > STDIN_BUF_SIZE - io.in_len) len = STDIN_BUF_SIZE - io.in_len;
    memcpy(stdin_buf + io.in_len, p, len);
    io.in_len += len;
}

static void stdin_flush(void)
{
    if (io.in >= 0 && io.in_len > 0) {
        ssize_t n = write(io.in, stdin_buf, io.in_len);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            stdin_close_now(); /* the container closed its stdin: what is left is discarded */
            return;
        }
        if (n > 0) {
            memmove(stdin_buf, stdin_buf + n, io.in_len - (size_t)n);
            io.in_len -= (size_t)n;
        }
    }
    if (io.in_close && io.in_len == 0) stdin_close_now();
}

/* A pipe is closed; a pty cannot be without hanging the container up, so it gets its EOF character
 * (which ends a read at the start of a line in canonical mode). */
static void stdin_close(void)
{
    if (!io.stdin_open || io.in_close) return;
    if (!io.tty) {
        io.in_close = 1;
        return;
    }
    struct termios t;
    uint8_t eof = io.in >= 0 && tcgetattr(io.in, &t) == 0 && t.c_cc[VEOF] != 0 ? t.c_cc[VEOF] : 4; /* ^D */
    stdin_add(&eof, 1);
}

static void frame_done(struct client *c)
{
    if (c->head[0] == INPUT_CLOSE_STDIN) stdin_close();
    if (c->head[0] == INPUT_RESIZE && c->arg_len == 4 && io.tty) {
        io.size = (struct winsize){.ws_row = (unsigned short)(c->arg[0] << 8 | c->arg[1]),
                                   .ws_col = (unsigned short)(c->arg[2] << 8 | c->arg[3])};
        if (io.out[0] >= 0) ioctl(io.out[0], TIOCSWINSZ, &io.size);
    }
    c->head_len = 0;
    c->arg_len = 0;
}

/* Frames from a client, [u8 kind][u32 BE length][payload], split anywhere across reads. */
static void client_input(struct client *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (c->head_len < 5) {
            c->head[c->head_len++] = *p++, n--;
            if (c->head_len == 5 && (c->left = get_be32(c->head + 1)) == 0) frame_done(c);
            continue;
        }
        size_t take = n < c->left ? n : c->left;
        if (c->head[0] == INPUT_STDIN) stdin_add(p, take);
        for (size_t k = 0; c->head[0] == INPUT_RESIZE && k < take && c->arg_len < 4; k++) c->arg[c->arg_len++] = p[k];
        p += take, n -= take, c->left -= (uint32_t)take;
        if (c->left == 0) frame_done(c);
    }
}

static void client_read(struct client *c)
{
    uint8_t buf[CLIENT_READ];
    if (!stdin_room()) return;
    ssize_t n = recv(c->fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (n < 0) client_drop(c, NULL);
    else if (n == 0) c->eof = 1;
    else client_input(c, buf, (size_t)n), stdin_flush();
}

/* ---- output ---- */

static void read_output(int s)
{
    ssize_t n = read(io.out[s], line_buf[s] + io.line_len[s], LINE_MAX_BYTES - io.line_len[s]);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) { /* end of the stream (EIO from a pty master: no slave is left) */
        log_lines(s, 0, 1);
        close(io.out[s]);
        io.out[s] = -1;
        return;
    }
    broadcast(s == 0 ? FRAME_STDOUT : FRAME_STDERR, line_buf[s] + io.line_len[s], (size_t)n);
    log_lines(s, (size_t)n, 0);
}

/* ---- the monitor's interface ---- */

static int make_pipe(int fds[2], unsigned floor, struct failure *f)
{
    if (pipe2(fds, O_CLOEXEC) < 0) return fail(f, errno, "creating a pipe");
    fds[0] = fd_above(fds[0], floor);
    fds[1] = fd_above(fds[1], floor);
    return fds[0] < 0 || fds[1] < 0 ? fail(f, errno, "creating a pipe") : 0;
}

static int open_listener(const char *path, unsigned floor, struct failure *f)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    struct stat st;
    strcpy(addr.sun_path, path); /* the decoder checked the length */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path); /* left by a shim that was killed */
    int fd = fd_above(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), floor);
    if (fd < 0) return fail(f, errno, "creating the attach socket");
    mode_t old = umask(0177); /* the socket is 0600 from the start */
    int r = bind(fd, (struct sockaddr *)&addr, sizeof addr);
    umask(old);
    if (r < 0 || listen(fd, 16) < 0) {
        fail(f, errno, "listening on attach socket %s", path);
        close(fd);
        return -1;
    }
    return fd;
}

/* Once only: a restarted container's new shim may bind the same path while this one finishes. */
static void unlink_socket(void)
{
    if (!io.sock_path || getpid() != io.owner) return;
    unlink(io.sock_path);
    free(io.sock_path);
    io.sock_path = NULL;
}

int io_setup(const struct plan *p, struct launch *l, struct failure *f, int *index)
{
    const struct plan_op *log_op = NULL, *sock_op = NULL;
    int pipes = -1, log_index = -1, sock_index = -1;
    for (uint32_t i = 0; i < p->nops; i++) {
        const struct plan_op *op = &p->ops[i];
        if (op->code == OP_STDIO_PIPES) pipes = (int)i;
        if (op->code == OP_OPEN_STDIN) io.stdin_open = 1;
        if (op->code == OP_LOG_JSON_FILE) log_op = op, log_index = (int)i;
        if (op->code == OP_ATTACH_SOCKET) sock_op = op, sock_index = (int)i;
    }
    if (pipes < 0) return 0;
    unsigned floor = fd_floor(l);
    io.active = 1;
    io.tty = l->setup_terminal;
    io.owner = getpid();
    io.out[0] = io.out[1] = io.in = io.log = io.listen = -1;
    for (int i = 0; i < IO_CLIENTS; i++) io.clients[i].fd = -1;
    *index = pipes;
    int null = -1, fds[2];
    if (io.tty || !io.stdin_open) { /* a tty's slave replaces it at SETUP_TERMINAL */
        null = fd_above(open("/dev/null", O_RDWR | O_CLOEXEC), floor);
        if (null < 0) return fail(f, errno, "opening /dev/null");
        l->stdio[0] = null;
    }
    if (io.tty) {
        l->stdio[1] = l->stdio[2] = null;
    } else {
        for (int s = 0; s < 2; s++) {
            if (make_pipe(fds, floor, f) < 0) return -1;
            io.out[s] = fds[0], l->stdio[1 + s] = fds[1];
            set_nonblock(fds[0]);
        }
        if (io.stdin_open) {
            if (make_pipe(fds, floor, f) < 0) return -1;
            l->stdio[0] = fds[0], io.in = fds[1];
            set_nonblock(fds[1]);
        }
    }
    if (log_op) {
        *index = log_index;
        io.log_path = strdup(log_op->f[0].s);
        io.log_path_len = log_op->f[0].len;
        if (io.log_path_len >= PATH_MAX) return fail(f, ENAMETOOLONG, "log %s", log_op->f[0].s);
        io.max_size = log_op->f[1].n;
        io.max_files = (unsigned)log_op->f[2].n;
        struct stat st;
        io.log = fd_above(open(log_op->f[0].s, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640), floor);
        if (!io.log_path || io.log < 0 || fstat(io.log, &st) < 0)
            return fail(f, io.log_path ? errno : ENOMEM, "opening log %s", log_op->f[0].s);
        io.log_size = (uint64_t)st.st_size; /* a restarted container appends to its log */
    }
    if (sock_op) {
        *index = sock_index;
        io.sock_path = strdup(sock_op->f[0].s);
        if (!io.sock_path) return fail(f, ENOMEM, "attach socket");
        io.listen = open_listener(io.sock_path, floor, f);
        if (io.listen < 0) return -1;
        atexit(unlink_socket);
    }
    return 0;
}

void io_forked(struct launch *l)
{
    for (int i = 0; i < 3; i++) {
        if (l->stdio[i] >= 0 && (i == 0 || l->stdio[i] != l->stdio[i - 1])) close(l->stdio[i]);
        l->stdio[i] = -1;
    }
}

int io_set_master(int fd)
{
    if (io.out[0] >= 0) return -1;
    set_nonblock(fd);
    io.out[0] = fd;
    if (io.size.ws_row || io.size.ws_col) ioctl(fd, TIOCSWINSZ, &io.size);
    if (io.stdin_open) io.in = fcntl(fd, F_DUPFD_CLOEXEC, 3); /* stdin sent so far is written from now on */
    return 0;
}

static int add_slot(struct pollfd *pfd, int n, int fd, short events, int kind, int index)
{
    pfd[n] = (struct pollfd){.fd = fd, .events = events};
    io.slot[n].kind = (uint8_t)kind, io.slot[n].index = (uint8_t)index;
    return n + 1;
}

int io_prepare(struct pollfd *pfd)
{
    int n = 0;
    if (!io.active) return 0;
    if (io.listen >= 0) n = add_slot(pfd, n, io.listen, POLLIN, SLOT_LISTEN, 0);
    int room = stdin_room();
    for (int i = 0; i < IO_CLIENTS; i++) {
        const struct client *c = &io.clients[i];
        short events = (short)((!c->eof && room ? POLLIN : 0) | (c->to > c->from ? POLLOUT : 0));
        /* Not polled while it must wait for stdin room: its hangup would wake the loop for nothing. */
        if (c->fd >= 0 && (events || c->eof)) n = add_slot(pfd, n, c->fd, events, SLOT_CLIENT, i);
    }
    for (int s = 0; s < 2; s++)
        if (io.out[s] >= 0) n = add_slot(pfd, n, io.out[s], POLLIN, SLOT_OUT, s);
    if (io.in >= 0 && io.in_len > 0) n = add_slot(pfd, n, io.in, POLLOUT, SLOT_IN, 0);
    return n;
}

void io_handle(const struct pollfd *pfd, int n)
{
    for (int k = 0; k < n; k++) {
        short revents = pfd[k].revents;
        if (!revents) continue;
        switch (io.slot[k].kind) {
        case SLOT_LISTEN: accept_clients(); break;
        case SLOT_CLIENT: {
            struct client *c = &io.clients[io.slot[k].index];
            if (c->fd >= 0 && (revents & POLLOUT)) client_flush(c);
            if (c->fd < 0 || !(revents & (POLLIN | POLLHUP | POLLERR))) break;
            if (revents & POLLERR) client_drop(c, NULL);
            else if (!c->eof) client_read(c);
            else if (revents & POLLHUP) client_drop(c, NULL); /* gone both ways */
            break;
        }
        case SLOT_OUT:
            if (io.out[io.slot[k].index] >= 0) read_output(io.slot[k].index);
            break;
        case SLOT_IN: stdin_flush(); break;
        }
    }
    log_flush();
}

void io_finish(void)
{
    if (!io.active) return;
    stdin_close_now(); /* nobody is left to read it */
    struct timespec start;
    struct pollfd pfd[IO_POLL_MAX];
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (io.out[0] >= 0 || io.out[1] >= 0) {
        long left = DRAIN_MAX_MS - elapsed_ms(&start);
        int n = io_prepare(pfd);
        int r = left > 0 ? poll(pfd, (nfds_t)n, left < DRAIN_IDLE_MS ? (int)left : DRAIN_IDLE_MS) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break; /* what still holds the pipes outlived init outside its pid namespace */
        io_handle(pfd, n);
    }
    for (int s = 0; s < 2; s++)
        if (io.out[s] >= 0) {
            log_lines(s, 0, 1);
            close(io.out[s]);
            io.out[s] = -1;
        }
    log_flush();
}

void io_exit(int code)
{
    if (!io.active) return;
    if (io.listen >= 0) close(io.listen); /* no new client: a late one finds no socket */
    io.listen = -1;
    unlink_socket();
    uint8_t head[5] = {FRAME_EXIT}, status[4];
    put_be32(head + 1, 4);
    put_be32(status, (uint32_t)code);
    for (int i = 0; i < IO_CLIENTS; i++)
        if (io.clients[i].fd >= 0) client_send(&io.clients[i], head, (const char *)status, 4);
    struct timespec start;
    struct pollfd pfd[IO_POLL_MAX];
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (long left; (left = EXIT_FLUSH_MS - elapsed_ms(&start)) > 0;) {
        int n = 0;
        for (int i = 0; i < IO_CLIENTS; i++)
            if (io.clients[i].fd >= 0 && io.clients[i].to > io.clients[i].from) {
                pfd[n] = (struct pollfd){.fd = io.clients[i].fd, .events = POLLOUT};
                io.slot[n].kind = SLOT_CLIENT, io.slot[n++].index = (uint8_t)i;
            }
        if (n == 0 || (poll(pfd, (nfds_t)n, (int)left) < 0 && errno != EINTR)) break;
        for (int k = 0; k < n; k++)
            if (pfd[k].revents) client_flush(&io.clients[io.slot[k].index]);
    }
    for (int i = 0; i < IO_CLIENTS; i++)
        if (io.clients[i].fd >= 0) client_drop(&io.clients[i], NULL);
    if (io.log >= 0) close(io.log);
    io.log = -1;
}

/* berth-netlink: berthd's network configurator. It reads batches of operations on stdin (one per
 * line, a batch ends with an empty line), runs each batch in order and answers it with one line
 * on stdout: `ok` or `error <n> <message>`. Protocol and operations: docs/netlink.md. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

#define LINE_MAX_BYTES 8192   /* one operation line, without its newline */
#define BATCH_MAX_BYTES 65536 /* all lines of a batch */
#define BATCH_MAX_OPS 256
#define MAX_FIELDS 8 /* the operation name and its arguments */

/* stdin, read in blocks. */
static struct {
    char buf[16384];
    size_t pos, len;
    int eof;
} in;

/* Reads one line into line (NUL-terminated, at most cap - 1 bytes kept; *too_long when more
 * came). Returns 1 for a line, 0 at EOF with nothing read, -1 on a read error. A last line
 * without its newline counts as a line. */
static int read_line(char *line, size_t cap, size_t *len, int *too_long)
{
    *len = 0;
    *too_long = 0;
    int any = 0;
    for (;;) {
        if (in.pos == in.len) {
            if (in.eof) break;
            ssize_t n;
            do n = read(0, in.buf, sizeof in.buf);
            while (n < 0 && errno == EINTR);
            if (n < 0) return -1;
            in.pos = 0;
            in.len = (size_t)n;
            if (n == 0) {
                in.eof = 1;
                break;
            }
        }
        any = 1;
        char *nl = memchr(in.buf + in.pos, '\n', in.len - in.pos);
        size_t take = nl ? (size_t)(nl - (in.buf + in.pos)) : in.len - in.pos;
        size_t room = cap - 1 - *len;
        if (take > room) *too_long = 1;
        memcpy(line + *len, in.buf + in.pos, take > room ? room : take);
        *len += take > room ? room : take;
        in.pos += take;
        if (nl) {
            in.pos++; /* the newline */
            break;
        }
    }
    line[*len] = 0;
    return any ? 1 : 0;
}

struct batch {
    char text[BATCH_MAX_BYTES];
    size_t used;
    unsigned count;
    size_t start[BATCH_MAX_OPS];
    unsigned bad; /* 1-based index of the first line that could not be taken, or 0 */
    char bad_msg[128];
};

static void reject(struct batch *b, const char *msg)
{
    if (b->bad) return;
    b->bad = b->count + 1;
    snprintf(b->bad_msg, sizeof b->bad_msg, "%s", msg);
}

/* Collects one batch: lines up to an empty line (or EOF in one-shot mode). Returns 1 when a batch
 * is complete, 0 at EOF (an unfinished batch is dropped unless one_shot), -1 on a read error. */
static int read_batch(struct batch *b, int one_shot)
{
    static char line[LINE_MAX_BYTES + 1];
    b->used = 0;
    b->count = 0;
    b->bad = 0;
    for (;;) {
        size_t len;
        int too_long;
        int r = read_line(line, sizeof line, &len, &too_long);
        if (r < 0) return -1;
        if (r == 0) return one_shot && (b->count > 0 || b->bad) ? 1 : 0;
        if (len == 0 && !too_long) return 1;
        if (b->bad) continue; /* the batch fails there; later lines only need to be consumed */
        if (too_long) {
            reject(b, "line too long");
            continue;
        }
        for (size_t i = 0; i < len && !b->bad; i++)
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) reject(b, "line contains a control character");
        if (b->bad) continue;
        if (b->count == BATCH_MAX_OPS || b->used + len + 1 > sizeof b->text) {
            reject(b, "batch too large");
            continue;
        }
        b->start[b->count++] = b->used;
        memcpy(b->text + b->used, line, len + 1);
        b->used += len + 1;
    }
}

/* Splits s at single spaces into at most MAX_FIELDS non-empty fields; -1 if that is impossible. */
static int split(char *s, char **fields)
{
    int n = 0;
    for (char *p = s;;) {
        if (n == MAX_FIELDS) return -1;
        fields[n++] = p;
        char *space = strchr(p, ' ');
        if (space == NULL) break;
        *space = 0;
        p = space + 1;
    }
    for (int i = 0; i < n; i++)
        if (fields[i][0] == 0) return -1;
    return n;
}

/* Runs one operation line; 0, or -1 with msg set to the error message. */
static int run_line(struct netctx *c, const char *text, char *msg, size_t size)
{
    static char copy[LINE_MAX_BYTES + 1];
    char *fields[MAX_FIELDS + 1] = {0};
    snprintf(copy, sizeof copy, "%s", text);
    int n = split(copy, fields);
    if (n < 0) {
        snprintf(msg, size, "malformed operation: fields are separated by single spaces, at most %d", MAX_FIELDS);
        return -1;
    }
    const struct op *op = op_find(fields[0]);
    if (op == NULL) {
        snprintf(msg, size, "unknown operation %s", fields[0]);
        return -1;
    }
    int args = n - 1;
    if (args < op->min_args || args > op->max_args) {
        if (op->min_args == op->max_args)
            snprintf(msg, size, "%s takes %d arguments, got %d", op->name, op->min_args, args);
        else
            snprintf(msg, size, "%s takes %d or %d arguments, got %d", op->name, op->min_args, op->max_args, args);
        return -1;
    }
    struct failure f = {0};
    if (op->run(c, fields + 1, &f) == 0) return 0;
    snprintf(msg, size, "%s: %s", text, f.detail);
    return -1;
}

/* Runs a batch and formats its answer (without newline). Returns 0 for ok, -1 for an error. */
static int run_batch(struct netctx *c, const struct batch *b, char *answer, size_t size)
{
    static char msg[LINE_MAX_BYTES + DETAIL_MAX + 64];
    int r = 0;
    unsigned i;
    for (i = 0; i < b->count; i++)
        if (run_line(c, b->text + b->start[i], msg, sizeof msg) < 0) {
            r = -1;
            break;
        }
    leave_namespace(c);
    if (r == 0 && b->bad) {
        snprintf(msg, sizeof msg, "%s", b->bad_msg);
        i = b->bad - 1;
        r = -1;
    }
    if (r == 0) snprintf(answer, size, "ok");
    else snprintf(answer, size, "error %u %s", i + 1, msg);
    return r;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int one_shot = argc == 2 && strcmp(argv[1], "-c") == 0;
    if (argc > 2 || (argc == 2 && !one_shot)) {
        fprintf(stderr, "usage: berth-netlink [-c]  (operations on stdin, see docs/netlink.md)\n");
        return 2;
    }
    /* A vanished client shows up as a failed write, not as a signal. */
    signal(SIGPIPE, SIG_IGN);

    struct netctx c = {.ns_sock = -1, .spare_ns = -1};
    c.host_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (c.host_ns < 0 || (c.host_sock = nl_open()) < 0) {
        perror("berth-netlink: cannot open the network namespace or an rtnetlink socket");
        return 1;
    }

    static struct batch b;
    static char answer[LINE_MAX_BYTES + DETAIL_MAX + 128];
    for (;;) {
        int r = read_batch(&b, one_shot);
        if (r < 0) {
            perror("berth-netlink: reading stdin");
            return 1;
        }
        if (r == 0) return 0;
        int failed = run_batch(&c, &b, answer, sizeof answer - 1) < 0;
        if (one_shot) {
            if (failed) fprintf(stderr, "%s\n", answer);
            return failed;
        }
        size_t len = strlen(answer);
        answer[len] = '\n';
        if (write_all(1, answer, len + 1) < 0) return 1;
    }
}

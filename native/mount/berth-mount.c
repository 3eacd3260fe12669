/* berth-mount: berthd's mount coprocess. It reads one request per line on stdin and answers each
 * with one line on stdout, `ok` or `error <ERRNO> <message>`, so that a container's root
 * filesystem is mounted and unmounted without a fork and exec of mount(8) per container.
 * It decides nothing: TypeScript (src/snapshot/mount-helper.ts) turns mount options into the
 * flags and data below. Protocol: docs/mount-helper.md.
 *
 *   mount <source> <target> <fstype> <flags> <data> <cwd>
 *   umount <target> <flags>
 *
 * Fields are separated by single spaces. In a field, `\ooo` (three octal digits) stands for any
 * byte, which is how a space, a newline or a backslash is written; a field of exactly `-` is
 * empty. <flags> is a comma-separated list of the names in the tables below. A non-empty <cwd>
 * is the working directory of the mount(2) call, so that relative overlay lowerdirs keep a long
 * layer list within the kernel's one-page limit on mount data. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#define LINE_MAX_BYTES 20480 /* one request without its newline: paths of PATH_MAX and a page of data */
#define MAX_FIELDS 8         /* the operation name and its arguments */

struct flag {
    const char *name;
    unsigned long value;
};

static const struct flag mount_flags[] = {
    {"ro", MS_RDONLY},         {"nosuid", MS_NOSUID},         {"nodev", MS_NODEV},
    {"noexec", MS_NOEXEC},     {"sync", MS_SYNCHRONOUS},      {"remount", MS_REMOUNT},
    {"mand", MS_MANDLOCK},     {"dirsync", MS_DIRSYNC},       {"noatime", MS_NOATIME},
    {"nodiratime", MS_NODIRATIME}, {"bind", MS_BIND},         {"move", MS_MOVE},
    {"rec", MS_REC},           {"silent", MS_SILENT},         {"unbindable", MS_UNBINDABLE},
    {"private", MS_PRIVATE},   {"slave", MS_SLAVE},           {"shared", MS_SHARED},
    {"relatime", MS_RELATIME}, {"strictatime", MS_STRICTATIME}, {"lazytime", MS_LAZYTIME},
    {NULL, 0},
};

static const struct flag umount_flags[] = {
    {"force", MNT_FORCE}, {"detach", MNT_DETACH}, {"expire", MNT_EXPIRE}, {"nofollow", UMOUNT_NOFOLLOW},
    {NULL, 0},
};

/* stdin, read in blocks. */
static struct {
    char buf[16384];
    size_t pos, len;
    int eof;
} in;

/* Reads one line into line (NUL-terminated, at most cap - 1 bytes kept; *too_long when more
 * came). Returns 1 for a line, 0 at EOF with nothing read, -1 on a read error. */
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
            in.pos++;
            break;
        }
    }
    line[*len] = 0;
    return any ? 1 : 0;
}

/* Decodes `\ooo` escapes in place; a lone `-` becomes empty. -1 for a malformed escape or an
 * escaped NUL (no path or option can hold one). */
static int unescape(char *s)
{
    if (strcmp(s, "-") == 0) {
        s[0] = 0;
        return 0;
    }
    char *out = s;
    for (char *p = s; *p; p++) {
        if (*p != '\\') {
            *out++ = *p;
            continue;
        }
        int value = 0;
        for (int i = 1; i <= 3; i++) {
            if (p[i] < '0' || p[i] > '7') return -1;
            value = value * 8 + (p[i] - '0');
        }
        if (value == 0 || value > 255) return -1;
        *out++ = (char)value;
        p += 3;
    }
    *out = 0;
    return 0;
}

/* Splits s at single spaces into at most MAX_FIELDS fields and decodes them; -1 if impossible. */
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
        if (fields[i][0] == 0 || unescape(fields[i]) < 0) return -1;
    return n;
}

/* The flags of a comma-separated list of names; -1 with *unknown set for a name not in table. */
static int parse_flags(char *list, const struct flag *table, unsigned long *out, const char **unknown)
{
    *out = 0;
    if (list[0] == 0) return 0;
    for (char *name = strtok(list, ","); name; name = strtok(NULL, ",")) {
        const struct flag *f = table;
        while (f->name && strcmp(f->name, name) != 0) f++;
        if (f->name == NULL) {
            *unknown = name;
            return -1;
        }
        *out |= f->value;
    }
    return 0;
}

/* The errno's symbolic name for the client, which maps some of them (EINVAL, ENOENT, EBUSY). */
static const char *errno_name(int e)
{
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EBUSY: return "EBUSY";
    case ENOTDIR: return "ENOTDIR";
    case EINVAL: return "EINVAL";
    case ENODEV: return "ENODEV";
    case ENOTBLK: return "ENOTBLK";
    case ELOOP: return "ELOOP";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOMEM: return "ENOMEM";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case EIO: return "EIO";
    case EAGAIN: return "EAGAIN";
    case EMFILE: return "EMFILE";
    case ENXIO: return "ENXIO";
    case EXDEV: return "EXDEV";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    default: return "EOTHER";
    }
}

/* The directory to return to after a mount run in <cwd>. */
static int home_fd = -1;

static int do_mount(char **a, char *msg, size_t size)
{
    unsigned long flags;
    const char *unknown = NULL;
    if (parse_flags(a[3], mount_flags, &flags, &unknown) < 0) {
        snprintf(msg, size, "EINVAL unknown mount flag %s", unknown);
        return -1;
    }
    const char *source = a[0][0] ? a[0] : NULL, *fstype = a[2][0] ? a[2] : NULL;
    const char *data = a[4][0] ? a[4] : NULL;
    if (a[1][0] != '/') {
        snprintf(msg, size, "EINVAL the target must be an absolute path");
        return -1;
    }
    if (a[5][0]) {
        int dir = open(a[5], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0 || fchdir(dir) < 0) {
            int e = errno;
            if (dir >= 0) close(dir);
            snprintf(msg, size, "%s cannot enter the working directory %s: %s", errno_name(e), a[5], strerror(e));
            return -1;
        }
        close(dir);
    }
    int r = mount(source, a[1], fstype, flags, data);
    int e = errno;
    /* Without the way back every later relative path would be wrong: better to stop. */
    if (a[5][0] && fchdir(home_fd) < 0) {
        perror("berth-mount: cannot return to its working directory");
        exit(3);
    }
    if (r < 0) {
        snprintf(msg, size, "%s %s", errno_name(e), strerror(e));
        return -1;
    }
    return 0;
}

static int do_umount(char **a, char *msg, size_t size)
{
    unsigned long flags;
    const char *unknown = NULL;
    if (parse_flags(a[1], umount_flags, &flags, &unknown) < 0) {
        snprintf(msg, size, "EINVAL unknown umount flag %s", unknown);
        return -1;
    }
    if (a[0][0] != '/') {
        snprintf(msg, size, "EINVAL the target must be an absolute path");
        return -1;
    }
    if (umount2(a[0], (int)flags) < 0) {
        int e = errno;
        snprintf(msg, size, "%s %s", errno_name(e), strerror(e));
        return -1;
    }
    return 0;
}

/* Runs one request line; 0, or -1 with msg set to `<ERRNO> <message>`. */
static int run_line(char *line, char *msg, size_t size)
{
    char *fields[MAX_FIELDS] = {0};
    int n = split(line, fields);
    if (n < 0) {
        snprintf(msg, size, "EINVAL malformed request: at most %d fields, separated by single spaces, none empty", MAX_FIELDS);
        return -1;
    }
    if (strcmp(fields[0], "mount") == 0 && n == 7) return do_mount(fields + 1, msg, size);
    if (strcmp(fields[0], "umount") == 0 && n == 3) return do_umount(fields + 1, msg, size);
    snprintf(msg, size, "EINVAL unknown request %s with %d arguments", fields[0], n - 1);
    return -1;
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
    (void)argv;
    if (argc != 1) {
        fprintf(stderr, "usage: berth-mount  (requests on stdin, see docs/mount-helper.md)\n");
        return 2;
    }
    /* A vanished client shows up as a failed write, not as a signal. */
    signal(SIGPIPE, SIG_IGN);
    home_fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (home_fd < 0) {
        perror("berth-mount: cannot open its working directory");
        return 1;
    }
    static char line[LINE_MAX_BYTES + 1];
    static char msg[LINE_MAX_BYTES + 256];
    static char answer[LINE_MAX_BYTES + 512];
    for (;;) {
        size_t len;
        int too_long;
        int r = read_line(line, sizeof line, &len, &too_long);
        if (r < 0) {
            perror("berth-mount: reading stdin");
            return 1;
        }
        if (r == 0) return 0;
        int bad = too_long;
        for (size_t i = 0; i < len && !bad; i++)
            if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f) bad = 1;
        if (bad) snprintf(answer, sizeof answer, "error EINVAL %s", too_long ? "request too long" : "request contains a control character");
        else if (run_line(line, msg, sizeof msg) < 0) snprintf(answer, sizeof answer, "error %s", msg);
        else snprintf(answer, sizeof answer, "ok");
        size_t n = strlen(answer);
        answer[n] = '\n';
        if (write_all(1, answer, n + 1) < 0) return 1;
    }
}

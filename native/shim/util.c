/* Small utilities: failures, full writes, fd moves, fd passing over a unix socket, times. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "shim.h"

int fail(struct failure *f, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(f->detail, sizeof f->detail, fmt, ap);
    va_end(ap);
    if (err != 0 && n >= 0 && (size_t)n < sizeof f->detail)
        snprintf(f->detail + n, sizeof f->detail - (size_t)n, ": %s", strerror(err));
    f->err = err;
    one_line(f->detail);
    return -1;
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fd_above(int fd, unsigned min)
{
    if (fd < 0 || (unsigned)fd >= min) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, (int)min);
    int saved = errno;
    close(fd);
    errno = saved;
    return moved;
}

unsigned fd_floor(const struct launch *l) { return PRESERVE_SOURCE + l->preserve; }

char *join_pid(const struct plan_field *parts, unsigned n, long pid)
{
    char digits[24];
    int dlen = snprintf(digits, sizeof digits, "%ld", pid);
    size_t len = (size_t)dlen * (n - 1) + 1;
    for (unsigned i = 0; i < n; i++) len += parts[i].len;
    char *text = malloc(len), *p = text;
    if (!text) return NULL;
    for (unsigned i = 0; i < n; i++) {
        if (i > 0) p = (char *)memcpy(p, digits, (size_t)dlen) + dlen;
        p = (char *)memcpy(p, parts[i].s, parts[i].len) + parts[i].len;
    }
    *p = 0;
    return text;
}

int send_msg(int sock, const char *text, int fd)
{
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        msg.msg_control = control.buf;
        msg.msg_controllen = sizeof control.buf;
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof fd);
    }
    ssize_t n;
    do n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    return n < 0 ? -1 : 0;
}

ssize_t recv_msg(int sock, char *buf, size_t size, int *fd, int flags)
{
    struct iovec iov = {.iov_base = buf, .iov_len = size - 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t n;
    do n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | flags);
    while (n < 0 && errno == EINTR);
    if (fd) *fd = -1;
    if (n < 0) return -1;
    buf[n] = 0;
    for (struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg); cmsg; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) continue;
        int got;
        memcpy(&got, CMSG_DATA(cmsg), sizeof got);
        if (fd && *fd < 0) *fd = got;
        else close(got);
    }
    return n;
}

void one_line(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

void format_time(char *buf, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec);
}

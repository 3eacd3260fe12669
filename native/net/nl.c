/* rtnetlink requests: building messages with attributes, sending them, reading the kernel's
 * acknowledgement and its extended-ack text. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "net.h"

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

/* No request waits longer than this for its acknowledgement. */
#define ACK_TIMEOUT_SECONDS 10
/* Answers read per request before giving up (an ack follows at most one reply). */
#define MAX_ROUNDS 16

int fail(struct failure *f, int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(f->detail, sizeof f->detail, fmt, ap);
    va_end(ap);
    if (err != 0 && n >= 0 && (size_t)n < sizeof f->detail)
        snprintf(f->detail + n, sizeof f->detail - (size_t)n, "%s%s", n > 0 ? ": " : "", strerror(err));
    f->err = err;
    for (char *p = f->detail; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return -1;
}

static void *tail(struct nlmsg *m) { return m->u.buf + NLMSG_ALIGN(m->u.hdr.nlmsg_len); }

/* Room for len more bytes (aligned) at the tail, or marks the message as overflowed. */
static int reserve(struct nlmsg *m, size_t len)
{
    if (m->overflow || NLMSG_ALIGN(m->u.hdr.nlmsg_len) + RTA_ALIGN(len) > sizeof m->u.buf) {
        m->overflow = 1;
        return -1;
    }
    return 0;
}

void *nl_begin(struct nlmsg *m, uint16_t type, uint16_t flags, size_t fixed_len)
{
    memset(m, 0, sizeof *m);
    m->u.hdr.nlmsg_len = (uint32_t)NLMSG_LENGTH(fixed_len);
    m->u.hdr.nlmsg_type = type;
    m->u.hdr.nlmsg_flags = flags;
    return NLMSG_DATA(&m->u.hdr);
}

void nl_put(struct nlmsg *m, uint16_t type, const void *data, size_t len)
{
    if (reserve(m, RTA_LENGTH(len)) < 0) return;
    struct rtattr *rta = tail(m);
    rta->rta_type = type;
    rta->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len > 0) memcpy(RTA_DATA(rta), data, len);
    m->u.hdr.nlmsg_len = NLMSG_ALIGN(m->u.hdr.nlmsg_len) + RTA_ALIGN(rta->rta_len);
}

void nl_put_u32(struct nlmsg *m, uint16_t type, uint32_t value) { nl_put(m, type, &value, sizeof value); }

void nl_put_str(struct nlmsg *m, uint16_t type, const char *s) { nl_put(m, type, s, strlen(s) + 1); }

void nl_put_raw(struct nlmsg *m, const void *data, size_t len)
{
    if (reserve(m, len) < 0) return;
    memcpy(tail(m), data, len);
    m->u.hdr.nlmsg_len = NLMSG_ALIGN(m->u.hdr.nlmsg_len) + RTA_ALIGN(len);
}

struct rtattr *nl_nest_begin(struct nlmsg *m, uint16_t type)
{
    struct rtattr *nest = tail(m);
    nl_put(m, type, NULL, 0);
    return m->overflow ? NULL : nest;
}

void nl_nest_end(struct nlmsg *m, struct rtattr *nest)
{
    if (m->overflow || nest == NULL) return;
    nest->rta_len = (unsigned short)((char *)tail(m) - (char *)nest);
}

int nl_open(void)
{
    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) return -1;
    int one = 1;
    struct timeval timeout = {.tv_sec = ACK_TIMEOUT_SECONDS};
    /* Extended acks carry the kernel's reason; capped acks do not echo our request back. Both are
     * best effort: without them errors are just strerror. */
    setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
    setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &one, sizeof one);
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

const struct rtattr *nl_attr_find(const void *start, size_t len, uint16_t type)
{
    const char *p = start;
    while (len >= sizeof(struct rtattr)) {
        const struct rtattr *rta = (const struct rtattr *)p;
        if (rta->rta_len < sizeof(struct rtattr) || rta->rta_len > len) return NULL;
        if ((rta->rta_type & NLA_TYPE_MASK) == type) return rta;
        size_t step = RTA_ALIGN(rta->rta_len);
        if (step >= len) return NULL;
        p += step;
        len -= step;
    }
    return NULL;
}

/* strerror(-err), then the extack message of an error acknowledgement when there is one. */
static int ack_error(const struct nlmsghdr *h, const struct nlmsgerr *e, struct failure *f)
{
    int err = -e->error;
    char ext[256] = "";
    if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
        size_t off = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof *e);
        if (!(h->nlmsg_flags & NLM_F_CAPPED) && e->msg.nlmsg_len >= NLMSG_HDRLEN)
            off += NLMSG_ALIGN(e->msg.nlmsg_len - NLMSG_HDRLEN);
        if (off < h->nlmsg_len) {
            const struct rtattr *msg =
                nl_attr_find((const char *)h + off, h->nlmsg_len - off, NLMSGERR_ATTR_MSG);
            if (msg != NULL) {
                size_t n = RTA_PAYLOAD(msg);
                if (n >= sizeof ext) n = sizeof ext - 1;
                memcpy(ext, RTA_DATA(msg), n);
                ext[n] = 0;
            }
        }
    }
    if (ext[0]) fail(f, 0, "%s: %s", strerror(err), ext);
    else fail(f, 0, "%s", strerror(err));
    f->err = err;
    return -err;
}

int nl_talk(int fd, struct nlmsg *m, void *reply, size_t reply_size, struct failure *f)
{
    static uint32_t seq;
    static union {
        struct nlmsghdr hdr;
        char buf[32768];
    } in;

    if (m->overflow) return fail(f, EMSGSIZE, "request too large"), -EMSGSIZE;
    m->u.hdr.nlmsg_seq = ++seq;
    struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
    ssize_t n;
    do n = sendto(fd, m->u.buf, m->u.hdr.nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof kernel);
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        int err = errno;
        return fail(f, err, "rtnetlink send"), -err;
    }

    int replied = 0;
    for (int round = 0; round < MAX_ROUNDS; round++) {
        do n = recv(fd, in.buf, sizeof in.buf, MSG_TRUNC);
        while (n < 0 && errno == EINTR);
        if (n < 0) {
            int err = errno == EAGAIN || errno == EWOULDBLOCK ? ETIMEDOUT : errno;
            return fail(f, err, "rtnetlink receive"), -err;
        }
        if ((size_t)n > sizeof in.buf) return fail(f, EMSGSIZE, "rtnetlink answer"), -EMSGSIZE;
        size_t left = (size_t)n;
        const char *p = in.buf;
        while (left >= NLMSG_HDRLEN) {
            const struct nlmsghdr *h = (const struct nlmsghdr *)p;
            if (h->nlmsg_len < NLMSG_HDRLEN || h->nlmsg_len > left) break;
            if (h->nlmsg_seq == seq) {
                if (h->nlmsg_type == NLMSG_ERROR) {
                    if (h->nlmsg_len < NLMSG_LENGTH(sizeof(struct nlmsgerr)))
                        return fail(f, EPROTO, "short rtnetlink acknowledgement"), -EPROTO;
                    const struct nlmsgerr *e = NLMSG_DATA(h);
                    if (e->error != 0) return ack_error(h, e, f);
                    if (reply != NULL && !replied) return fail(f, ENODATA, "no rtnetlink answer"), -ENODATA;
                    return 0;
                }
                if (reply != NULL && !replied) {
                    if (h->nlmsg_len > reply_size) return fail(f, EMSGSIZE, "rtnetlink answer"), -EMSGSIZE;
                    memcpy(reply, h, h->nlmsg_len);
                    replied = 1;
                }
            }
            size_t step = NLMSG_ALIGN(h->nlmsg_len);
            if (step >= left) break;
            p += step;
            left -= step;
        }
    }
    return fail(f, EPROTO, "no rtnetlink acknowledgement"), -EPROTO;
}

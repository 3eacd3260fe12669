/* Shared declarations of berth-netlink: rtnetlink messages (nl.c), argument parsing (parse.c),
 * the operations (ops.c) and the batch loop (main.c). See docs/netlink.md. */
#ifndef BERTH_NETLINK_NET_H
#define BERTH_NETLINK_NET_H

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stddef.h>
#include <stdint.h>

#define DETAIL_MAX 1024

/* Why an operation failed: errno (or 0 for a bad argument) and a one-line explanation. */
struct failure {
    int err;
    char detail[DETAIL_MAX];
};

/* Sets f: detail is the formatted text, then ": strerror(err)" when err != 0; returns -1. */
int fail(struct failure *f, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* nl.c: building one request and waiting for its acknowledgement. */
#define NL_MSG_MAX 4096

struct nlmsg {
    union {
        struct nlmsghdr hdr;
        char buf[NL_MSG_MAX];
    } u;
    int overflow; /* an attribute did not fit: the message must not be sent */
};

/* Starts a request with a zeroed family header of fixed_len bytes and returns that header. */
void *nl_begin(struct nlmsg *m, uint16_t type, uint16_t flags, size_t fixed_len);
void nl_put(struct nlmsg *m, uint16_t type, const void *data, size_t len);
void nl_put_u32(struct nlmsg *m, uint16_t type, uint32_t value);
void nl_put_str(struct nlmsg *m, uint16_t type, const char *s); /* with its NUL */
void nl_put_raw(struct nlmsg *m, const void *data, size_t len); /* no attribute header */
struct rtattr *nl_nest_begin(struct nlmsg *m, uint16_t type);
void nl_nest_end(struct nlmsg *m, struct rtattr *nest);

/* An rtnetlink socket in the current network namespace (extended acks, bounded receive), or -1. */
int nl_open(void);

/* Sends m and reads until the kernel acknowledges it. Returns 0 or -errno; on error f->detail is
 * strerror plus the kernel's extack message when it gave one. When reply is not NULL, the first
 * answer that is not the acknowledgement is copied there (-EMSGSIZE if it does not fit). */
int nl_talk(int fd, struct nlmsg *m, void *reply, size_t reply_size, struct failure *f);

/* The attribute of that type in [start, start + len), or NULL; never reads outside the range. */
const struct rtattr *nl_attr_find(const void *start, size_t len, uint16_t type);

/* parse.c: strict argument parsing. Each returns 0, or -1 after fail(f, 0, ...). */
struct cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned prefix;
};
int parse_path(const char *s, struct failure *f);
int parse_ifname(const char *s, struct failure *f);
int parse_mtu(const char *s, uint32_t *mtu, struct failure *f);
int parse_mac(const char *s, unsigned char mac[6], struct failure *f);
int parse_ip(const char *s, int *family, unsigned char addr[16], struct failure *f);
int parse_cidr(const char *s, struct cidr *c, struct failure *f);
/* dotted.name or slash/name -> /proc/sys/... in path; never leaves /proc/sys. */
int parse_sysctl(const char *s, char *path, size_t size, struct failure *f);

/* ops.c */
struct netctx {
    int host_ns;   /* the original network namespace, where every batch starts and ends */
    int host_sock; /* rtnetlink socket in the original namespace */
    int entered;   /* an `enter` moved this batch into another namespace */
    int ns_sock;   /* rtnetlink socket of the entered namespace, opened on first use, or -1 */
    int spare_ns;  /* a namespace made ahead by netns-prepare (lo up), not yet handed out, or -1 */
};

struct op {
    const char *name;
    int min_args, max_args;
    int (*run)(struct netctx *c, char **args, struct failure *f); /* 0 or -1 with f set */
};

const struct op *op_find(const char *name);

/* Back to the original namespace after a batch; exits the program if that is impossible. */
void leave_namespace(struct netctx *c);

#endif

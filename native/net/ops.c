/* The operations: one function each, run in the batch's current network namespace. */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/veth.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

/* Answers to RTM_GETLINK land here (aligned for the headers inside). */
static union {
    struct nlmsghdr hdr;
    char buf[16384];
} answer;

static int sock(struct netctx *c, struct failure *f)
{
    if (!c->entered) return c->host_sock;
    if (c->ns_sock < 0 && (c->ns_sock = nl_open()) < 0) return fail(f, errno, "rtnetlink socket");
    return c->ns_sock;
}

/* One request in the current namespace; 0 or -errno (f set). */
static int talk(struct netctx *c, struct nlmsg *m, void *reply, size_t size, struct failure *f)
{
    int fd = sock(c, f);
    if (fd < 0) return -f->err;
    return nl_talk(fd, m, reply, size, f);
}

static struct ifinfomsg *link_msg(struct nlmsg *m, uint16_t type, uint16_t flags)
{
    struct ifinfomsg *ifi = nl_begin(m, type, NLM_F_REQUEST | NLM_F_ACK | flags, sizeof *ifi);
    ifi->ifi_family = AF_UNSPEC;
    return ifi;
}

static int ifindex(const char *name, struct failure *f)
{
    if (parse_ifname(name, f) < 0) return -1;
    unsigned idx = if_nametoindex(name);
    if (idx == 0) return fail(f, errno, "%s", name);
    return (int)idx;
}

/* Sets or clears IFF_UP on the link called name (the kernel finds it by IFLA_IFNAME). */
static int set_up(int fd, const char *name, int up, struct failure *f)
{
    struct nlmsg m;
    struct ifinfomsg *ifi = link_msg(&m, RTM_NEWLINK, 0);
    ifi->ifi_change = IFF_UP;
    ifi->ifi_flags = up ? IFF_UP : 0;
    nl_put_str(&m, IFLA_IFNAME, name);
    return nl_talk(fd, &m, NULL, 0, f) < 0 ? -1 : 0;
}

static int op_up(struct netctx *c, char **a, struct failure *f)
{
    int fd = parse_ifname(a[0], f) < 0 ? -1 : sock(c, f);
    return fd < 0 ? -1 : set_up(fd, a[0], 1, f);
}

static int op_down(struct netctx *c, char **a, struct failure *f)
{
    int fd = parse_ifname(a[0], f) < 0 ? -1 : sock(c, f);
    return fd < 0 ? -1 : set_up(fd, a[0], 0, f);
}

static int op_mtu(struct netctx *c, char **a, struct failure *f)
{
    uint32_t mtu;
    if (parse_ifname(a[0], f) < 0 || parse_mtu(a[1], &mtu, f) < 0) return -1;
    struct nlmsg m;
    link_msg(&m, RTM_NEWLINK, 0);
    nl_put_str(&m, IFLA_IFNAME, a[0]);
    nl_put_u32(&m, IFLA_MTU, mtu);
    return talk(c, &m, NULL, 0, f) < 0 ? -1 : 0;
}

static int op_master(struct netctx *c, char **a, struct failure *f)
{
    if (parse_ifname(a[0], f) < 0) return -1;
    int bridge = ifindex(a[1], f);
    if (bridge < 0) return -1;
    struct nlmsg m;
    link_msg(&m, RTM_NEWLINK, 0);
    nl_put_str(&m, IFLA_IFNAME, a[0]);
    nl_put_u32(&m, IFLA_MASTER, (uint32_t)bridge);
    return talk(c, &m, NULL, 0, f) < 0 ? -1 : 0;
}

/* Hairpin mode on a bridge port: a container reaches its own published port via the host. */
static int op_hairpin(struct netctx *c, char **a, struct failure *f)
{
    int idx = ifindex(a[0], f);
    if (idx < 0) return -1;
    struct nlmsg m;
    struct ifinfomsg *ifi = nl_begin(&m, RTM_SETLINK, NLM_F_REQUEST | NLM_F_ACK, sizeof *ifi);
    ifi->ifi_family = AF_BRIDGE;
    ifi->ifi_index = idx;
    struct rtattr *protinfo = nl_nest_begin(&m, IFLA_PROTINFO | NLA_F_NESTED);
    uint8_t on = 1;
    nl_put(&m, IFLA_BRPORT_MODE, &on, sizeof on);
    nl_nest_end(&m, protinfo);
    return talk(c, &m, NULL, 0, f) < 0 ? -1 : 0;
}

static int op_rename(struct netctx *c, char **a, struct failure *f)
{
    int idx = ifindex(a[0], f);
    if (idx < 0 || parse_ifname(a[1], f) < 0) return -1;
    struct nlmsg m;
    struct ifinfomsg *ifi = link_msg(&m, RTM_NEWLINK, 0);
    ifi->ifi_index = idx;
    nl_put_str(&m, IFLA_IFNAME, a[1]);
    return talk(c, &m, NULL, 0, f) < 0 ? -1 : 0;
}

static int op_link_delete(struct netctx *c, char **a, struct failure *f)
{
    if (parse_ifname(a[0], f) < 0) return -1;
    struct nlmsg m;
    link_msg(&m, RTM_DELLINK, 0);
    nl_put_str(&m, IFLA_IFNAME, a[0]);
    int r = talk(c, &m, NULL, 0, f);
    return r < 0 && r != -ENODEV ? -1 : 0;
}

/* The IFLA_INFO_KIND of an existing link ("" for a plain device such as lo or a physical nic). */
static int link_kind(struct netctx *c, const char *name, char *kind, size_t size, struct failure *f)
{
    struct nlmsg m;
    link_msg(&m, RTM_GETLINK, 0);
    nl_put_str(&m, IFLA_IFNAME, name);
    nl_put_u32(&m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
    if (talk(c, &m, answer.buf, sizeof answer.buf, f) < 0) return -1;
    kind[0] = 0;
    size_t fixed = NLMSG_LENGTH(sizeof(struct ifinfomsg));
    if (answer.hdr.nlmsg_type != RTM_NEWLINK || answer.hdr.nlmsg_len < fixed) return 0;
    const struct rtattr *info = nl_attr_find(answer.buf + fixed, answer.hdr.nlmsg_len - fixed, IFLA_LINKINFO);
    const struct rtattr *k = info ? nl_attr_find(RTA_DATA(info), RTA_PAYLOAD(info), IFLA_INFO_KIND) : NULL;
    if (k != NULL) snprintf(kind, size, "%.*s", (int)RTA_PAYLOAD(k), (const char *)RTA_DATA(k));
    return 0;
}

static int op_bridge(struct netctx *c, char **a, struct failure *f)
{
    uint32_t mtu;
    unsigned char mac[6];
    int has_mac = a[2] != NULL;
    if (parse_ifname(a[0], f) < 0 || parse_mtu(a[1], &mtu, f) < 0 || (has_mac && parse_mac(a[2], mac, f) < 0))
        return -1;
    struct nlmsg m;
    struct ifinfomsg *ifi = link_msg(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    ifi->ifi_change = ifi->ifi_flags = IFF_UP;
    nl_put_str(&m, IFLA_IFNAME, a[0]);
    nl_put_u32(&m, IFLA_MTU, mtu);
    if (has_mac) nl_put(&m, IFLA_ADDRESS, mac, sizeof mac);
    struct rtattr *info = nl_nest_begin(&m, IFLA_LINKINFO);
    nl_put_str(&m, IFLA_INFO_KIND, "bridge");
    nl_nest_end(&m, info);
    int r = talk(c, &m, NULL, 0, f);
    if (r != -EEXIST) return r < 0 ? -1 : 0;

    /* It exists: fine when it is a bridge, which then gets the requested settings. */
    char kind[32];
    if (link_kind(c, a[0], kind, sizeof kind, f) < 0) return -1;
    if (strcmp(kind, "bridge") != 0)
        return fail(f, EEXIST, "%s exists and is not a bridge (%s)", a[0], kind[0] ? kind : "device");
    ifi = link_msg(&m, RTM_NEWLINK, 0);
    ifi->ifi_change = ifi->ifi_flags = IFF_UP;
    nl_put_str(&m, IFLA_IFNAME, a[0]);
    nl_put_u32(&m, IFLA_MTU, mtu);
    if (has_mac) nl_put(&m, IFLA_ADDRESS, mac, sizeof mac);
    return talk(c, &m, NULL, 0, f) < 0 ? -1 : 0;
}

static int op_veth(struct netctx *c, char **a, struct failure *f)
{
    uint32_t mtu;
    unsigned char mac[6];
    int has_mac = a[4] != NULL;
    if (parse_ifname(a[0], f) < 0 || parse_ifname(a[1], f) < 0 || parse_mtu(a[3], &mtu, f) < 0 ||
        parse_path(a[2], f) < 0 || (has_mac && parse_mac(a[4], mac, f) < 0))
        return -1;
    int ns = open(a[2], O_RDONLY | O_CLOEXEC);
    if (ns < 0) return fail(f, errno, "%s", a[2]);

    struct nlmsg m;
    link_msg(&m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
    nl_put_str(&m, IFLA_IFNAME, a[0]);
    nl_put_u32(&m, IFLA_MTU, mtu);
    struct rtattr *info = nl_nest_begin(&m, IFLA_LINKINFO);
    nl_put_str(&m, IFLA_INFO_KIND, "veth");
    struct rtattr *data = nl_nest_begin(&m, IFLA_INFO_DATA);
    struct rtattr *peer = nl_nest_begin(&m, VETH_INFO_PEER);
    struct ifinfomsg peer_ifi = {.ifi_family = AF_UNSPEC};
    nl_put_raw(&m, &peer_ifi, sizeof peer_ifi);
    nl_put_str(&m, IFLA_IFNAME, a[1]);
    nl_put_u32(&m, IFLA_MTU, mtu);
    nl_put_u32(&m, IFLA_NET_NS_FD, (uint32_t)ns);
    if (has_mac) nl_put(&m, IFLA_ADDRESS, mac, sizeof mac);
    nl_nest_end(&m, peer);
    nl_nest_end(&m, data);
    nl_nest_end(&m, info);
    int r = talk(c, &m, NULL, 0, f);
    close(ns);
    return r < 0 ? -1 : 0;
}

/* addr and addr-del: the same message, RTM_NEWADDR or RTM_DELADDR; 0 or -errno (f set). */
static int address(struct netctx *c, char **a, uint16_t type, struct failure *f)
{
    struct cidr cidr;
    int idx = ifindex(a[0], f);
    if (idx < 0 || parse_cidr(a[1], &cidr, f) < 0) return -EINVAL;
    size_t alen = cidr.family == AF_INET ? 4 : 16;
    struct nlmsg m;
    uint16_t create = type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0;
    struct ifaddrmsg *ifa = nl_begin(&m, type, NLM_F_REQUEST | NLM_F_ACK | create, sizeof *ifa);
    ifa->ifa_family = (unsigned char)cidr.family;
    ifa->ifa_prefixlen = (unsigned char)cidr.prefix;
    ifa->ifa_index = (unsigned)idx;
    ifa->ifa_scope = RT_SCOPE_UNIVERSE;
    nl_put(&m, IFA_LOCAL, cidr.addr, alen);
    nl_put(&m, IFA_ADDRESS, cidr.addr, alen);
    if (type == RTM_NEWADDR && cidr.family == AF_INET6) {
        /* No duplicate address detection: the address is usable at once. */
        ifa->ifa_flags = IFA_F_NODAD;
        nl_put_u32(&m, IFA_FLAGS, IFA_F_NODAD);
    }
    if (type == RTM_NEWADDR && cidr.family == AF_INET && cidr.prefix < 31) {
        unsigned char brd[4];
        for (int i = 0; i < 4; i++) {
            unsigned bits = cidr.prefix > (unsigned)i * 8 ? cidr.prefix - (unsigned)i * 8 : 0;
            unsigned char host = bits >= 8 ? 0 : (unsigned char)(0xff >> bits);
            brd[i] = cidr.addr[i] | host;
        }
        nl_put(&m, IFA_BROADCAST, brd, sizeof brd);
    }
    return talk(c, &m, NULL, 0, f);
}

static int op_addr(struct netctx *c, char **a, struct failure *f)
{
    int r = address(c, a, RTM_NEWADDR, f);
    return r < 0 && r != -EEXIST ? -1 : 0;
}

static int op_addr_del(struct netctx *c, char **a, struct failure *f)
{
    int r = address(c, a, RTM_DELADDR, f);
    return r < 0 && r != -EADDRNOTAVAIL ? -1 : 0;
}

static int op_route(struct netctx *c, char **a, struct failure *f)
{
    struct cidr dst = {.family = AF_UNSPEC};
    int gw_family = AF_UNSPEC;
    unsigned char gw[16];
    int is_default = strcmp(a[0], "default") == 0;
    int has_gw = strcmp(a[1], "-") != 0;
    if (!is_default && parse_cidr(a[0], &dst, f) < 0) return -1;
    if (has_gw && parse_ip(a[1], &gw_family, gw, f) < 0) return -1;
    if (is_default && !has_gw)
        return fail(f, 0, "a default route needs a gateway (0.0.0.0/0 or ::/0 for a device route)");
    if (is_default) dst.family = gw_family;
    if (has_gw && gw_family != dst.family) return fail(f, 0, "gateway %s is not in the family of %s", a[1], a[0]);
    int idx = ifindex(a[2], f);
    if (idx < 0) return -1;

    size_t alen = dst.family == AF_INET ? 4 : 16;
    struct nlmsg m;
    struct rtmsg *rt = nl_begin(&m, RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, sizeof *rt);
    rt->rtm_family = (unsigned char)dst.family;
    rt->rtm_dst_len = (unsigned char)dst.prefix;
    rt->rtm_table = RT_TABLE_MAIN;
    rt->rtm_protocol = RTPROT_BOOT;
    rt->rtm_type = RTN_UNICAST;
    /* A route without gateway reaches hosts on the link itself (IPv6 routes are always universe). */
    rt->rtm_scope = has_gw || dst.family == AF_INET6 ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK;
    if (dst.prefix > 0) nl_put(&m, RTA_DST, dst.addr, alen);
    if (has_gw) nl_put(&m, RTA_GATEWAY, gw, alen);
    nl_put_u32(&m, RTA_OIF, (uint32_t)idx);
    int r = talk(c, &m, NULL, 0, f);
    return r < 0 && r != -EEXIST ? -1 : 0;
}

static int op_sysctl(struct netctx *c, char **a, struct failure *f)
{
    (void)c;
    char path[512];
    if (parse_sysctl(a[0], path, sizeof path, f) < 0) return -1;
    int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return fail(f, errno, "%s", path);
    size_t len = strlen(a[1]);
    ssize_t n;
    do n = write(fd, a[1], len);
    while (n < 0 && errno == EINTR);
    int err = n < 0 ? errno : (size_t)n != len ? EIO : 0;
    close(fd);
    return err ? fail(f, err, "%s", path) : 0;
}

static int op_enter(struct netctx *c, char **a, struct failure *f)
{
    if (parse_path(a[0], f) < 0) return -1;
    int fd = open(a[0], O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail(f, errno, "%s", a[0]);
    int r = setns(fd, CLONE_NEWNET);
    int err = errno;
    close(fd);
    if (r < 0) return fail(f, err, "setns %s", a[0]);
    c->entered = 1;
    if (c->ns_sock >= 0) close(c->ns_sock);
    c->ns_sock = -1;
    return 0;
}

void leave_namespace(struct netctx *c)
{
    if (!c->entered) return;
    if (setns(c->host_ns, CLONE_NEWNET) < 0) {
        /* Every later batch would run in the wrong namespace: stop, the client restarts us. */
        perror("berth-netlink: cannot return to the original network namespace");
        exit(3);
    }
    if (c->ns_sock >= 0) close(c->ns_sock);
    c->ns_sock = -1;
    c->entered = 0;
}

/* A new network namespace with lo up, as an fd; the current namespace does not change. */
static int new_namespace(struct failure *f)
{
    int back = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
    if (back < 0) return fail(f, errno, "/proc/self/ns/net");
    int ns = -1;
    if (unshare(CLONE_NEWNET) < 0) {
        fail(f, errno, "unshare");
    } else {
        ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
        if (ns < 0) fail(f, errno, "/proc/self/ns/net of the new namespace");
        int s = ns < 0 ? -1 : nl_open();
        if (ns >= 0 && s < 0) fail(f, errno, "rtnetlink socket");
        if (s >= 0 && set_up(s, "lo", 1, f) < 0) {
            close(ns);
            ns = -1;
        }
        if (s >= 0) close(s);
        if (setns(back, CLONE_NEWNET) < 0) {
            perror("berth-netlink: cannot return from a new network namespace");
            exit(3);
        }
    }
    close(back);
    return ns;
}

/* Makes the namespace that the next netns-create hands out, so that the unshare and lo's setup
 * happen while no container waits for them. One at most: a second call does nothing. */
static int op_netns_prepare(struct netctx *c, char **a, struct failure *f)
{
    (void)a;
    if (c->spare_ns >= 0) return 0;
    c->spare_ns = new_namespace(f);
    return c->spare_ns < 0 ? -1 : 0;
}

static int op_netns_create(struct netctx *c, char **a, struct failure *f)
{
    if (parse_path(a[0], f) < 0) return -1;
    int fd = open(a[0], O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
    if (fd < 0) return fail(f, errno, "%s", a[0]);
    close(fd);

    /* The prepared namespace if there is one, else a new one; either way it is used once. */
    int ns = c->spare_ns;
    c->spare_ns = -1;
    if (ns < 0) ns = new_namespace(f);
    int r = -1;
    if (ns >= 0) {
        char source[64];
        snprintf(source, sizeof source, "/proc/self/fd/%d", ns);
        if (mount(source, a[0], "none", MS_BIND, NULL) < 0) fail(f, errno, "bind mount on %s", a[0]);
        else r = 0;
        close(ns);
    }
    if (r < 0) unlink(a[0]);
    return r;
}

static int op_netns_delete(struct netctx *c, char **a, struct failure *f)
{
    (void)c;
    if (parse_path(a[0], f) < 0) return -1;
    /* EINVAL: not a mount point (a half-created namespace); the file still goes. */
    if (umount2(a[0], MNT_DETACH | UMOUNT_NOFOLLOW) < 0 && errno != EINVAL && errno != ENOENT)
        return fail(f, errno, "unmount %s", a[0]);
    if (unlink(a[0]) < 0 && errno != ENOENT) return fail(f, errno, "unlink %s", a[0]);
    return 0;
}

static const struct op ops[] = {
    {"netns-create", 1, 1, op_netns_create},
    {"netns-delete", 1, 1, op_netns_delete},
    {"netns-prepare", 0, 0, op_netns_prepare},
    {"enter", 1, 1, op_enter},
    {"bridge", 2, 3, op_bridge},
    {"veth", 4, 5, op_veth},
    {"master", 2, 2, op_master},
    {"hairpin", 1, 1, op_hairpin},
    {"up", 1, 1, op_up},
    {"down", 1, 1, op_down},
    {"link-delete", 1, 1, op_link_delete},
    {"mtu", 2, 2, op_mtu},
    {"rename", 2, 2, op_rename},
    {"addr", 2, 2, op_addr},
    {"addr-del", 2, 2, op_addr_del},
    {"route", 3, 3, op_route},
    {"sysctl", 2, 2, op_sysctl},
};

const struct op *op_find(const char *name)
{
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (strcmp(ops[i].name, name) == 0) return &ops[i];
    return NULL;
}

/* Strict parsing of operation arguments: anything unexpected is an error naming the value. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "net.h"

int parse_path(const char *s, struct failure *f)
{
    /* Relative paths would depend on this program's working directory. */
    if (s[0] != '/') return fail(f, 0, "path %s is not absolute", s);
    return 0;
}

int parse_ifname(const char *s, struct failure *f)
{
    size_t len = strlen(s);
    if (len == 0 || len >= IFNAMSIZ || strchr(s, '/') != NULL || strchr(s, ':') != NULL ||
        strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return fail(f, 0, "invalid interface name %s", s);
    return 0;
}

/* A decimal number without sign or leading zeros, at most max. */
static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    if (s[0] < '0' || s[0] > '9' || (s[0] == '0' && s[1] != 0)) return -1;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        v = v * 10 + (unsigned long)(*p - '0');
        if (v > max) return -1;
    }
    *out = v;
    return 0;
}

int parse_mtu(const char *s, uint32_t *mtu, struct failure *f)
{
    unsigned long v;
    if (parse_uint(s, 65536, &v) < 0 || v == 0) return fail(f, 0, "invalid mtu %s", s);
    *mtu = (uint32_t)v;
    return 0;
}

static int hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int parse_mac(const char *s, unsigned char mac[6], struct failure *f)
{
    if (strlen(s) != 17) return fail(f, 0, "invalid mac address %s", s);
    for (int i = 0; i < 6; i++) {
        const char *p = s + i * 3;
        int hi = hex(p[0]), lo = hex(p[1]);
        if (hi < 0 || lo < 0 || (i < 5 && p[2] != ':')) return fail(f, 0, "invalid mac address %s", s);
        mac[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

int parse_ip(const char *s, int *family, unsigned char addr[16], struct failure *f)
{
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, s, addr) == 1) *family = AF_INET;
    else if (inet_pton(AF_INET6, s, addr) == 1) *family = AF_INET6;
    else return fail(f, 0, "invalid ip address %s", s);
    return 0;
}

int parse_cidr(const char *s, struct cidr *c, struct failure *f)
{
    const char *slash = strchr(s, '/');
    char ip[INET6_ADDRSTRLEN];
    size_t len = slash ? (size_t)(slash - s) : 0;
    if (slash == NULL || len == 0 || len >= sizeof ip) return fail(f, 0, "invalid cidr %s", s);
    memcpy(ip, s, len);
    ip[len] = 0;
    if (parse_ip(ip, &c->family, c->addr, f) < 0) return fail(f, 0, "invalid cidr %s", s);
    unsigned long prefix;
    if (parse_uint(slash + 1, c->family == AF_INET ? 32 : 128, &prefix) < 0)
        return fail(f, 0, "invalid prefix length in %s", s);
    c->prefix = (unsigned)prefix;
    return 0;
}

int parse_sysctl(const char *s, char *path, size_t size, struct failure *f)
{
    /* Interface names may contain dots, so a name with a slash is taken as a path as it is. */
    int slashes = strchr(s, '/') != NULL;
    int n = snprintf(path, size, "/proc/sys/%s", s);
    if (n < 0 || (size_t)n >= size) return fail(f, 0, "sysctl name too long");
    char *name = path + strlen("/proc/sys/");
    if (!slashes)
        for (char *p = name; *p; p++)
            if (*p == '.') *p = '/';
    /* Every component non-empty and not . or ..: the path stays below /proc/sys. */
    for (const char *p = name;;) {
        const char *end = strchr(p, '/');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == 0 || (len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
            return fail(f, 0, "invalid sysctl name %s", s);
        if (end == NULL) break;
        p = end + 1;
    }
    return 0;
}

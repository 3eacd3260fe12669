/* Plan decoding: a strict, bounded parser that never trusts a length, followed by the checks
 * that make a plan launchable (EXEC last, terminal and start-fifo ops consistent). */
#include "plan.h"

#include <errno.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

/* Field kinds per op: 's' string, 'b' bytes, 'n' number; "*n" any number of numbers; a trailing
 * '+' repeats the kind before it (at least once); "!" EXEC. */
static const struct op_spec {
    uint16_t code;
    const char *name;
    const char *kinds;
} SPECS[] = {
    {OP_JOIN_NS, "JOIN_NS", "sn"},
    {OP_CLONE_FLAGS, "CLONE_FLAGS", "n"},
    {OP_UID_MAP, "UID_MAP", "s"},
    {OP_GID_MAP, "GID_MAP", "s"},
    {OP_SETGROUPS, "SETGROUPS", "s"},
    {OP_CONSOLE_SOCKET, "CONSOLE_SOCKET", "snn"},
    {OP_TERMINAL_PROXY, "TERMINAL_PROXY", "nn"},
    {OP_EXIT_FILE, "EXIT_FILE", "s"},
    {OP_DETACH, "DETACH", ""},
    {OP_TIME_OFFSETS, "TIME_OFFSETS", "s"},
    {OP_LOG_FILE, "LOG_FILE", "s"},
    {OP_MKFIFO, "MKFIFO", "sn"},
    {OP_STDIO_PIPES, "STDIO_PIPES", ""},
    {OP_OPEN_STDIN, "OPEN_STDIN", ""},
    {OP_LOG_JSON_FILE, "LOG_JSON_FILE", "snn"},
    {OP_ATTACH_SOCKET, "ATTACH_SOCKET", "s"},
    {OP_CGROUP_JOIN, "CGROUP_JOIN", "s"},
    {OP_CLONE_INTO_CGROUP, "CLONE_INTO_CGROUP", "s"},
    {OP_SECCOMP_LISTENER, "SECCOMP_LISTENER", "ss+"},
    {OP_MOUNT, "MOUNT", "sssns"},
    {OP_MOUNT_IN_ROOT, "MOUNT_IN_ROOT", "ssssnsn"},
    {OP_REMOUNT, "REMOUNT", "ssn"},
    {OP_MKNOD_IN_ROOT, "MKNOD_IN_ROOT", "ssnnnnn"},
    {OP_SYMLINK_IN_ROOT, "SYMLINK_IN_ROOT", "sss"},
    {OP_PIVOT_ROOT, "PIVOT_ROOT", "s"},
    {OP_MOVE_ROOT, "MOVE_ROOT", "s"},
    {OP_MASK_PATH, "MASK_PATH", "s"},
    {OP_READONLY_PATH, "READONLY_PATH", "s"},
    {OP_WRITE_FILE, "WRITE_FILE", "ss"},
    {OP_SETHOSTNAME, "SETHOSTNAME", "s"},
    {OP_SETDOMAINNAME, "SETDOMAINNAME", "s"},
    {OP_SETRLIMIT, "SETRLIMIT", "nnn"},
    {OP_SETGROUPS_IDS, "SETGROUPS_IDS", "*n"},
    {OP_SETGID, "SETGID", "n"},
    {OP_SETUID, "SETUID", "n"},
    {OP_UMASK, "UMASK", "n"},
    {OP_CAPS, "CAPS", "nnnnn"},
    {OP_NO_NEW_PRIVS, "NO_NEW_PRIVS", ""},
    {OP_CHDIR, "CHDIR", "s"},
    {OP_SECCOMP, "SECCOMP", "nb"},
    {OP_OPEN_START_FIFO, "OPEN_START_FIFO", "s"},
    {OP_WAIT_START, "WAIT_START", ""},
    {OP_SETUP_TERMINAL, "SETUP_TERMINAL", ""},
    {OP_PRESERVE_FDS, "PRESERVE_FDS", "n"},
    {OP_PERSONALITY, "PERSONALITY", "n"},
    {OP_EXEC, "EXEC", "!"},
    {OP_MKDIR_IN_ROOT, "MKDIR_IN_ROOT", "ssn"},
    {OP_UNSHARE, "UNSHARE", "n"},
    {OP_HOOK, "HOOK", "ssnnns+"},
    {OP_RUNTIME_HOOKS, "RUNTIME_HOOKS", ""},
};

static const struct op_spec *spec_of(unsigned code)
{
    for (size_t i = 0; i < sizeof SPECS / sizeof SPECS[0]; i++)
        if (SPECS[i].code == code) return &SPECS[i];
    return NULL;
}

const char *op_name(unsigned code)
{
    const struct op_spec *spec = spec_of(code);
    return spec ? spec->name : NULL;
}

static const char *kind_name(unsigned kind)
{
    return kind == FIELD_STRING ? "string" : kind == FIELD_BYTES ? "bytes" : "number";
}

static void *seterr(struct plan_error *err, uint32_t index, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void *seterr(struct plan_error *err, uint32_t index, const char *fmt, ...)
{
    va_list ap;
    err->index = index;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* Offset of the first byte that is not valid UTF-8, or len when all are. */
static size_t utf8_invalid_at(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s[i];
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) { i++; continue; }
        if ((c & 0xe0) == 0xc0) n = 1, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0) n = 2, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0) n = 3, cp = c & 0x07, min = 0x10000;
        else return i;
        if (len - i <= n) return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += n + 1;
    }
    return len;
}

struct counts {
    size_t fields, arena;
};

/* Pass 1: walk the whole buffer, validating every length, kind and count. */
static int scan(const uint8_t *buf, size_t len, uint32_t nops, struct counts *c, struct plan_error *err)
{
    size_t pos = 12;
    for (uint32_t i = 0; i < nops; i++) {
        if (len - pos < 4) return seterr(err, i, "op %u: truncated op header at byte %zu", i, pos), -1;
        unsigned code = get16(buf + pos), nf = get16(buf + pos + 2);
        pos += 4;
        const struct op_spec *spec = spec_of(code);
        if (!spec) return seterr(err, i, "op %u: unknown opcode %u", i, code), -1;
        if (nf > PLAN_MAX_FIELDS)
            return seterr(err, i, "op %u (%s): field count %u is more than the limit of %u", i, spec->name, nf,
                          PLAN_MAX_FIELDS), -1;
        size_t nkinds = strlen(spec->kinds);
        int exec = spec->kinds[0] == '!', any = spec->kinds[0] == '*';
        int more = nkinds > 0 && spec->kinds[nkinds - 1] == '+';
        if (exec && nf < 2)
            return seterr(err, i, "op %u (%s): %u fields, expected at least 2 (argc, arg0)", i, spec->name, nf), -1;
        if (more && nf < nkinds - 1)
            return seterr(err, i, "op %u (%s): %u fields, expected at least %zu", i, spec->name, nf, nkinds - 1), -1;
        if (!exec && !any && !more && nf != nkinds)
            return seterr(err, i, "op %u (%s): %u fields, expected %zu", i, spec->name, nf, nkinds), -1;
        for (unsigned j = 0; j < nf; j++) {
            if (len - pos < 5)
                return seterr(err, i, "op %u (%s): field %u: truncated field header at byte %zu", i, spec->name, j,
                              pos), -1;
            unsigned kind = buf[pos];
            uint32_t flen = get32(buf + pos + 1);
            pos += 5;
            if (kind < FIELD_STRING || kind > FIELD_NUMBER)
                return seterr(err, i, "op %u (%s): field %u: unknown field kind %u", i, spec->name, j, kind), -1;
            if (flen > len - pos)
                return seterr(err, i, "op %u (%s): field %u: length %u goes past the end of the plan (%zu bytes left)",
                              i, spec->name, j, flen, len - pos), -1;
            char want = exec   ? (j == 0 ? 'n' : 's')
                        : any  ? spec->kinds[1]
                        : more ? spec->kinds[j < nkinds - 2 ? j : nkinds - 2]
                               : spec->kinds[j];
            unsigned want_kind = want == 's' ? FIELD_STRING : want == 'b' ? FIELD_BYTES : FIELD_NUMBER;
            if (kind != want_kind)
                return seterr(err, i, "op %u (%s): field %u: %s field, expected %s", i, spec->name, j,
                              kind_name(kind), kind_name(want_kind)), -1;
            if (kind == FIELD_NUMBER && flen != 8)
                return seterr(err, i, "op %u (%s): field %u: number field has length %u, expected 8", i, spec->name,
                              j, flen), -1;
            if (kind == FIELD_STRING) {
                const uint8_t *nul = memchr(buf + pos, 0, flen);
                if (nul)
                    return seterr(err, i, "op %u (%s): field %u: NUL byte in string at offset %zu", i, spec->name, j,
                                  (size_t)(nul - (buf + pos))), -1;
                size_t bad = utf8_invalid_at(buf + pos, flen);
                if (bad != flen)
                    return seterr(err, i, "op %u (%s): field %u: string is not valid UTF-8 at offset %zu", i,
                                  spec->name, j, bad), -1;
                c->arena += (size_t)flen + 1;
            } else if (kind == FIELD_BYTES) {
                c->arena += flen;
            }
            if (exec && j == 0) {
                uint64_t argc = get64(buf + pos);
                if (argc < 1 || argc > nf - 1)
                    return seterr(err, i, "op %u (%s): argc %llu does not fit the %u strings that follow (need 1..%u)",
                                  i, spec->name, (unsigned long long)argc, nf - 1, nf - 1), -1;
            }
            pos += flen;
        }
        c->fields += nf;
    }
    if (pos != len) return seterr(err, nops, "%zu trailing bytes after the last op", len - pos), -1;
    return 0;
}

/* Pass 2: copy into one allocation (ops, fields, then strings and bytes), no checks left to fail. */
static struct plan *build(const uint8_t *buf, uint32_t nops, const struct counts *c)
{
    size_t size = sizeof(struct plan) + nops * sizeof(struct plan_op) + c->fields * sizeof(struct plan_field) +
                  c->arena;
    struct plan *plan = malloc(size);
    if (!plan) return NULL;
    plan->nops = nops;
    plan->ops = (struct plan_op *)(plan + 1);
    struct plan_field *field = (struct plan_field *)(plan->ops + nops);
    char *arena = (char *)(field + c->fields);
    size_t pos = 12;
    for (uint32_t i = 0; i < nops; i++) {
        struct plan_op *op = &plan->ops[i];
        op->code = get16(buf + pos);
        op->nfields = get16(buf + pos + 2);
        op->f = field;
        pos += 4;
        for (unsigned j = 0; j < op->nfields; j++, field++) {
            field->kind = buf[pos];
            field->len = get32(buf + pos + 1);
            pos += 5;
            if (field->kind == FIELD_NUMBER) {
                field->n = get64(buf + pos);
            } else {
                memcpy(arena, buf + pos, field->len);
                if (field->kind == FIELD_STRING) {
                    arena[field->len] = 0;
                    field->s = arena;
                    arena += field->len + 1;
                } else {
                    field->b = (const uint8_t *)arena;
                    arena += field->len;
                }
            }
            pos += field->len;
        }
    }
    return plan;
}

#define SUN_PATH_SIZE sizeof(((struct sockaddr_un *)0)->sun_path)
#define NS_CLONE_FLAGS (CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP)

/* The checks that need the whole plan: they keep launch from starting something it cannot finish. */
static int check(const struct plan *plan, struct plan_error *err)
{
    int first[OP_LAST + 1];
    int listener_at = -1; /* the SECCOMP op that asks for a listener fd */
    for (size_t k = 0; k < sizeof first / sizeof first[0]; k++) first[k] = -1;
    if (plan->nops == 0 || plan->ops[plan->nops - 1].code != OP_EXEC)
        return seterr(err, plan->nops ? plan->nops - 1 : 0, "the plan must end with EXEC"), -1;
    for (uint32_t i = 0; i < plan->nops; i++) {
        unsigned code = plan->ops[i].code;
        int once = code < OP_FIRST_CONTAINER ? code != OP_JOIN_NS && code != OP_CGROUP_JOIN
                                             : code == OP_EXEC || code == OP_OPEN_START_FIFO || code == OP_WAIT_START ||
                                                   code == OP_SETUP_TERMINAL || code == OP_PRESERVE_FDS ||
                                                   code == OP_RUNTIME_HOOKS;
        if (once && first[code] >= 0)
            return seterr(err, i, "op %u (%s): may appear only once (also op %d)", i, op_name(code), first[code]), -1;
        if (first[code] < 0) first[code] = (int)i;
        if (code == OP_SECCOMP && plan->ops[i].f[0].n & SECCOMP_FILTER_FLAG_NEW_LISTENER) {
            if (listener_at >= 0)
                return seterr(err, i, "op %u (SECCOMP): only one filter may ask for a listener (also op %d)", i,
                              listener_at), -1;
            listener_at = (int)i;
        }
    }
    /* The listener fd must go somewhere, and the listener needs a fd to be sent. */
    if (listener_at >= 0 && first[OP_SECCOMP_LISTENER] < 0)
        return seterr(err, (uint32_t)listener_at, "op %d (SECCOMP): NEW_LISTENER needs SECCOMP_LISTENER",
                      listener_at), -1;
    if (first[OP_SECCOMP_LISTENER] >= 0 && listener_at < 0)
        return seterr(err, (uint32_t)first[OP_SECCOMP_LISTENER],
                      "op %d (SECCOMP_LISTENER): needs a SECCOMP op with NEW_LISTENER", first[OP_SECCOMP_LISTENER]), -1;
    if (first[OP_CONSOLE_SOCKET] >= 0 && first[OP_TERMINAL_PROXY] >= 0)
        return seterr(err, (uint32_t)first[OP_TERMINAL_PROXY], "op %d (TERMINAL_PROXY): conflicts with CONSOLE_SOCKET",
                      first[OP_TERMINAL_PROXY]), -1;
    /* The shim holds the container's stdio, so a pty master must come to it, not to a console socket. */
    if (first[OP_STDIO_PIPES] >= 0 && first[OP_CONSOLE_SOCKET] >= 0)
        return seterr(err, (uint32_t)first[OP_STDIO_PIPES], "op %d (STDIO_PIPES): conflicts with CONSOLE_SOCKET",
                      first[OP_STDIO_PIPES]), -1;
    for (uint32_t i = 0; i < plan->nops; i++) {
        const struct plan_op *op = &plan->ops[i];
        const struct plan_field *f = op->f;
        const char *name = op_name(op->code);
        switch (op->code) {
        case OP_JOIN_NS:
            if (f[1].n != 0 && ((f[1].n & ~(uint64_t)(NS_CLONE_FLAGS | CLONE_NEWTIME)) || __builtin_popcountll(f[1].n) != 1))
                return seterr(err, i, "op %u (%s): nstype 0x%llx is not one namespace flag", i, name,
                              (unsigned long long)f[1].n), -1;
            break;
        case OP_CLONE_FLAGS:
            if (f[0].n & ~(uint64_t)NS_CLONE_FLAGS)
                return seterr(err, i, "op %u (%s): flags 0x%llx include non-namespace flags 0x%llx", i, name,
                              (unsigned long long)f[0].n, (unsigned long long)(f[0].n & ~(uint64_t)NS_CLONE_FLAGS)), -1;
            break;
        case OP_CGROUP_JOIN:
        case OP_CLONE_INTO_CGROUP:
            if (f[0].len == 0 || f[0].s[0] != '/')
                return seterr(err, i, "op %u (%s): path must be absolute", i, name), -1;
            break;
        case OP_UNSHARE:
            if (f[0].n & ~(uint64_t)(NS_CLONE_FLAGS | CLONE_NEWTIME))
                return seterr(err, i, "op %u (%s): flags 0x%llx include non-namespace flags", i, name,
                              (unsigned long long)f[0].n), -1;
            break;
        case OP_SETGROUPS:
            if (strcmp(f[0].s, "allow") != 0 && strcmp(f[0].s, "deny") != 0)
                return seterr(err, i, "op %u (%s): value must be \"allow\" or \"deny\"", i, name), -1;
            break;
        case OP_CONSOLE_SOCKET:
        case OP_TERMINAL_PROXY: {
            const struct plan_field *size = op->code == OP_CONSOLE_SOCKET ? f + 1 : f;
            if (size[0].n > 0xffff || size[1].n > 0xffff)
                return seterr(err, i, "op %u (%s): rows and cols must be at most 65535", i, name), -1;
            break;
        }
        case OP_MOUNT_IN_ROOT:
            if (f[6].n > CREATE_FILE)
                return seterr(err, i, "op %u (%s): create must be 0, 1 or 2, not %llu", i, name,
                              (unsigned long long)f[6].n), -1;
            break;
        case OP_MKNOD_IN_ROOT:
            if (f[2].n > 0xffffffffu || f[3].n > 0xffffffffu || f[4].n > 0xffffffffu || f[5].n >= 0xffffffffu ||
                f[6].n >= 0xffffffffu)
                return seterr(err, i, "op %u (%s): mode, major, minor, uid or gid out of range", i, name), -1;
            break;
        case OP_SETGROUPS_IDS:
        case OP_SETGID:
        case OP_SETUID:
            for (unsigned j = 0; j < op->nfields; j++)
                if (f[j].n >= 0xffffffffu)
                    return seterr(err, i, "op %u (%s): id %llu is out of range", i, name, (unsigned long long)f[j].n),
                           -1;
            break;
        case OP_PRESERVE_FDS:
            if (f[0].n > 65536)
                return seterr(err, i, "op %u (%s): count %llu is more than 65536", i, name,
                              (unsigned long long)f[0].n), -1;
            break;
        case OP_SECCOMP:
            if (f[1].len == 0 || f[1].len % 8 != 0 || f[1].len > 4096 * 8)
                return seterr(err, i, "op %u (%s): program is %u bytes, expected 1 to 4096 instructions of 8 bytes",
                              i, name, f[1].len), -1;
            break;
        case OP_SECCOMP_LISTENER:
            if (f[0].len == 0 || f[0].s[0] != '/' || f[0].len >= SUN_PATH_SIZE)
                return seterr(err, i, "op %u (%s): path must be absolute and at most %zu bytes (a unix socket address)",
                              i, name, SUN_PATH_SIZE - 1), -1;
            break;
        case OP_HOOK: {
            uint64_t argc = f[3].n, envc = f[4].n, strings = op->nfields - HOOK_FIXED_FIELDS;
            if (f[0].len == 0 || f[1].len == 0 || f[1].s[0] != '/')
                return seterr(err, i, "op %u (%s): needs a name and an absolute path", i, name), -1;
            if (f[2].n > HOOK_MAX_TIMEOUT)
                return seterr(err, i, "op %u (%s): timeout %llu is more than %u seconds", i, name,
                              (unsigned long long)f[2].n, HOOK_MAX_TIMEOUT), -1;
            if (argc < 1 || argc >= strings || envc >= strings - argc)
                return seterr(err, i, "op %u (%s): argc %llu and envc %llu do not fit the %llu strings that follow "
                              "(need 1 or more arguments and a state)", i, name, (unsigned long long)argc,
                              (unsigned long long)envc, (unsigned long long)strings), -1;
            break;
        }
        case OP_OPEN_STDIN:
        case OP_LOG_JSON_FILE:
        case OP_ATTACH_SOCKET:
            if (first[OP_STDIO_PIPES] < 0)
                return seterr(err, i, "op %u (%s): needs STDIO_PIPES", i, name), -1;
            if (op->code == OP_LOG_JSON_FILE && (f[0].len == 0 || f[2].n < 1 || f[2].n > LOG_MAX_FILES))
                return seterr(err, i, "op %u (%s): needs a path and maxFiles from 1 to %u", i, name, LOG_MAX_FILES),
                       -1;
            if (op->code == OP_ATTACH_SOCKET && (f[0].len == 0 || f[0].len >= SUN_PATH_SIZE))
                return seterr(err, i, "op %u (%s): path must be 1 to %zu bytes (a unix socket address)", i, name,
                              SUN_PATH_SIZE - 1), -1;
            break;
        case OP_WAIT_START:
            if (first[OP_OPEN_START_FIFO] < 0 || (uint32_t)first[OP_OPEN_START_FIFO] > i)
                return seterr(err, i, "op %u (%s): needs an earlier OPEN_START_FIFO", i, name), -1;
            break;
        case OP_RUNTIME_HOOKS: /* the caller stops listening on fd 4 at WAIT_START's `created` */
            if (first[OP_WAIT_START] >= 0 && (uint32_t)first[OP_WAIT_START] < i)
                return seterr(err, i, "op %u (%s): must come before WAIT_START", i, name), -1;
            break;
        case OP_SETUP_TERMINAL:
            if (first[OP_CONSOLE_SOCKET] < 0 && first[OP_TERMINAL_PROXY] < 0)
                return seterr(err, i, "op %u (%s): needs CONSOLE_SOCKET or TERMINAL_PROXY", i, name), -1;
            break;
        }
    }
    return 0;
}

struct plan *plan_decode(const uint8_t *buf, size_t len, struct plan_error *err)
{
    if (len > PLAN_MAX_BYTES)
        return seterr(err, 0, "plan is %zu bytes, more than the limit of %u", len, PLAN_MAX_BYTES);
    if (len < 12) return seterr(err, 0, "truncated header: %zu bytes, need 12", len);
    if (memcmp(buf, "BSP1", 4) != 0)
        return seterr(err, 0, "bad magic %02x %02x %02x %02x, expected \"BSP1\"", buf[0], buf[1], buf[2], buf[3]);
    uint32_t version = get32(buf + 4), nops = get32(buf + 8);
    if (version != 1) return seterr(err, 0, "unsupported plan version %u, expected 1", version);
    if (nops > PLAN_MAX_OPS) return seterr(err, 0, "op count %u is more than the limit of %u", nops, PLAN_MAX_OPS);
    struct counts c = {0, 0};
    if (scan(buf, len, nops, &c, err) < 0) return NULL;
    struct plan *plan = build(buf, nops, &c);
    if (!plan) return seterr(err, 0, "out of memory decoding %zu bytes", len);
    if (check(plan, err) < 0) {
        plan_free(plan);
        return NULL;
    }
    return plan;
}

void plan_free(struct plan *plan) { free(plan); }

int plan_read(int fd, uint8_t **bufp, size_t *lenp)
{
    const size_t limit = PLAN_MAX_BYTES + 1; /* one byte past the limit, so the decoder can report the size */
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return -1;
    for (;;) {
        if (len == cap) {
            if (cap == limit) break;
            size_t grown_cap = cap * 2 < limit ? cap * 2 : limit;
            uint8_t *grown = realloc(buf, grown_cap);
            if (!grown) goto fail;
            buf = grown;
            cap = grown_cap;
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) goto fail;
        if (n == 0) break;
        len += (size_t)n;
    }
    *bufp = buf;
    *lenp = len;
    return 0;
fail:;
    int saved = errno;
    free(buf);
    errno = saved;
    return -1;
}

/* Strings as JSON.stringify writes them, so the listing matches describePlan(). */
static void print_json(const char *s, FILE *out)
{
    fputc('"', out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"': fputs("\\\"", out); break;
        case '\\': fputs("\\\\", out); break;
        case '\b': fputs("\\b", out); break;
        case '\f': fputs("\\f", out); break;
        case '\n': fputs("\\n", out); break;
        case '\r': fputs("\\r", out); break;
        case '\t': fputs("\\t", out); break;
        default:
            if (c < 0x20) fprintf(out, "\\u%04x", c);
            else fputc(c, out);
        }
    }
    fputc('"', out);
}

void plan_print(const struct plan *plan, FILE *out)
{
    for (uint32_t i = 0; i < plan->nops; i++) {
        const struct plan_op *op = &plan->ops[i];
        fprintf(out, "%u %s ", i, op_name(op->code)); /* describePlan() has the space even with no fields */
        for (unsigned j = 0; j < op->nfields; j++) {
            const struct plan_field *f = &op->f[j];
            if (j > 0) fputc(' ', out);
            if (f->kind == FIELD_STRING) print_json(f->s, out);
            else if (f->kind == FIELD_BYTES) fprintf(out, "<%u bytes>", f->len);
            else fprintf(out, "0x%llx", (unsigned long long)f->n);
        }
        fputc('\n', out);
    }
}

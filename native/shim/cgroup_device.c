/* berth-shim cgroup-device-attach: see cgroup_device.h. The program comes from TypeScript; this
 * file only moves it into the kernel, deciding nothing about which devices are allowed. */
#include "cgroup_device.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PROGRAM_MAX_BYTES (1u << 23) /* 1M instructions, the kernel's own limit */
#define QUERY_MAX_PROGRAMS 64
#define VERIFIER_LOG_BYTES (1u << 16)

static const char *const self = "berth-shim cgroup-device-attach";

static long bpf_call(int cmd, union bpf_attr *attr)
{
    return syscall(SYS_bpf, cmd, attr, sizeof(*attr));
}

static void report(const char *step, const char *path)
{
    fprintf(stderr, "%s: %s %s: %s\n", self, step, path, strerror(errno));
}

/* Reads all of stdin into a new buffer; returns NULL with errno set (EFBIG when too large). */
static unsigned char *read_program(size_t *len)
{
    size_t cap = 4096, used = 0;
    unsigned char *buf = malloc(cap);
    if (buf == NULL)
        return NULL;
    for (;;) {
        if (used == cap) {
            if (cap >= PROGRAM_MAX_BYTES) {
                free(buf);
                errno = EFBIG;
                return NULL;
            }
            unsigned char *bigger = realloc(buf, cap * 2);
            if (bigger == NULL) {
                free(buf);
                return NULL;
            }
            buf = bigger;
            cap *= 2;
        }
        ssize_t n = read(STDIN_FILENO, buf + used, cap - used);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            return NULL;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    *len = used;
    return buf;
}

static int load_program(const unsigned char *insns, size_t len, char *log, unsigned log_size)
{
    static const char license[] = "Apache-2.0";
    union bpf_attr attr;
    memset(&attr, 0, sizeof(attr));
    attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
    attr.insns = (uint64_t)(uintptr_t)insns;
    attr.insn_cnt = (uint32_t)(len / sizeof(struct bpf_insn));
    attr.license = (uint64_t)(uintptr_t)license;
    strncpy(attr.prog_name, "berth_devices", sizeof(attr.prog_name) - 1);
    if (log != NULL) {
        attr.log_level = 1;
        attr.log_buf = (uint64_t)(uintptr_t)log;
        attr.log_size = log_size;
    }
    return (int)bpf_call(BPF_PROG_LOAD, &attr);
}

int berth_cgroup_device_attach(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '\0') {
        fprintf(stderr, "usage: %s <cgroup-dir> < program\n", self);
        return 2;
    }
    const char *dir = argv[1];

    size_t len = 0;
    unsigned char *insns = read_program(&len);
    if (insns == NULL) {
        report("reading the program from stdin for", dir);
        return 1;
    }
    if (len == 0 || len % sizeof(struct bpf_insn) != 0) {
        fprintf(stderr, "%s: the program on stdin is %zu bytes, not a whole number of %zu-byte instructions\n",
                self, len, sizeof(struct bpf_insn));
        free(insns);
        return 1;
    }

    int status = 1;
    int prog_fd = -1;
    int cgroup_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (cgroup_fd < 0) {
        report("open", dir);
        goto out;
    }

    prog_fd = load_program(insns, len, NULL, 0);
    if (prog_fd < 0) {
        int saved = errno;
        char *log = calloc(1, VERIFIER_LOG_BYTES);
        if (log != NULL) {
            int again = load_program(insns, len, log, VERIFIER_LOG_BYTES);
            if (again >= 0)
                close(again); /* the first failure stands; its log is lost */
        }
        errno = saved;
        report("BPF_PROG_LOAD for", dir);
        if (log != NULL && log[0] != '\0')
            fprintf(stderr, "%s: verifier log:\n%s\n", self, log);
        free(log);
        prog_fd = -1;
        goto out;
    }

    /* The programs attached before, to detach once the new one is in place. */
    uint32_t old_ids[QUERY_MAX_PROGRAMS];
    union bpf_attr query;
    memset(&query, 0, sizeof(query));
    query.query.target_fd = (uint32_t)cgroup_fd;
    query.query.attach_type = BPF_CGROUP_DEVICE;
    query.query.prog_ids = (uint64_t)(uintptr_t)old_ids;
    query.query.prog_cnt = QUERY_MAX_PROGRAMS;
    if (bpf_call(BPF_PROG_QUERY, &query) < 0) {
        report("BPF_PROG_QUERY on", dir);
        goto out;
    }

    union bpf_attr attach;
    memset(&attach, 0, sizeof(attach));
    attach.target_fd = (uint32_t)cgroup_fd;
    attach.attach_bpf_fd = (uint32_t)prog_fd;
    attach.attach_type = BPF_CGROUP_DEVICE;
    attach.attach_flags = BPF_F_ALLOW_MULTI;
    if (bpf_call(BPF_PROG_ATTACH, &attach) < 0) {
        report("BPF_PROG_ATTACH to", dir);
        goto out;
    }

    status = 0;
    for (uint32_t i = 0; i < query.query.prog_cnt; i++) {
        union bpf_attr get;
        memset(&get, 0, sizeof(get));
        get.prog_id = old_ids[i];
        int old_fd = (int)bpf_call(BPF_PROG_GET_FD_BY_ID, &get);
        if (old_fd < 0) {
            if (errno == ENOENT)
                continue; /* detached and freed meanwhile */
            report("BPF_PROG_GET_FD_BY_ID for a program of", dir);
            status = 1;
            continue;
        }
        union bpf_attr detach;
        memset(&detach, 0, sizeof(detach));
        detach.target_fd = (uint32_t)cgroup_fd;
        detach.attach_bpf_fd = (uint32_t)old_fd;
        detach.attach_type = BPF_CGROUP_DEVICE;
        if (bpf_call(BPF_PROG_DETACH, &detach) < 0 && errno != ENOENT) {
            report("BPF_PROG_DETACH of an old program from", dir);
            status = 1;
        }
        close(old_fd);
    }

out:
    if (prog_fd >= 0)
        close(prog_fd);
    if (cgroup_fd >= 0)
        close(cgroup_fd);
    free(insns);
    return status;
}

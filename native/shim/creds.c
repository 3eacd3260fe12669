/* Credentials, capabilities, no_new_privs and seccomp. Raw syscalls act on this (only) thread,
 * which is what a single-threaded init wants. */
#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim.h"

int op_setgroups_ids(const struct plan_op *op, struct failure *f)
{
    gid_t gids[PLAN_MAX_FIELDS];
    for (unsigned i = 0; i < op->nfields; i++) gids[i] = (gid_t)op->f[i].n;
    if (syscall(SYS_setgroups, (int)op->nfields, gids) < 0)
        return fail(f, errno, "setgroups (%u groups)", op->nfields);
    return 0;
}

int op_setgid(const struct plan_op *op, struct failure *f)
{
    gid_t gid = (gid_t)op->f[0].n;
    if (syscall(SYS_setresgid, gid, gid, gid) < 0) return fail(f, errno, "setresgid %u", gid);
    return 0;
}

int op_setuid(const struct plan_op *op, struct failure *f)
{
    uid_t uid = (uid_t)op->f[0].n;
    if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0) return fail(f, errno, "PR_SET_KEEPCAPS");
    if (syscall(SYS_setresuid, uid, uid, uid) < 0) return fail(f, errno, "setresuid %u", uid);
    return 0;
}

/* Root of the user namespace init was created in or joined (what runc's nsexec does too). */
int become_ns_root(struct failure *f)
{
    if (syscall(SYS_setresgid, 0, 0, 0) < 0) return fail(f, errno, "setresgid 0 in the user namespace");
    if (syscall(SYS_setresuid, 0, 0, 0) < 0) return fail(f, errno, "setresuid 0 in the user namespace");
    return 0;
}

static int capset3(const uint64_t eff, uint64_t prm, uint64_t inh)
{
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct data[2] = {
        {.effective = (uint32_t)eff, .permitted = (uint32_t)prm, .inheritable = (uint32_t)inh},
        {.effective = (uint32_t)(eff >> 32), .permitted = (uint32_t)(prm >> 32), .inheritable = (uint32_t)(inh >> 32)},
    };
    return (int)syscall(SYS_capset, &hdr, data);
}

int op_caps(const struct plan_op *op, struct failure *f)
{
    uint64_t bounding = op->f[0].n, effective = op->f[1].n, permitted = op->f[2].n, inheritable = op->f[3].n,
             ambient = op->f[4].n;
    struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct cur[2];
    if (syscall(SYS_capget, &hdr, cur) < 0) return fail(f, errno, "capget");
    uint64_t cur_prm = cur[0].permitted | (uint64_t)cur[1].permitted << 32;
    uint64_t cur_inh = cur[0].inheritable | (uint64_t)cur[1].inheritable << 32;
    /* After SETUID the kernel has emptied the effective set; CAP_SETPCAP must be effective to drop. */
    if (capset3(cur_prm, cur_prm, cur_inh) < 0) return fail(f, errno, "capset (raising the effective set)");
    for (unsigned cap = 0; cap < 64 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) >= 0; cap++)
        if (!(bounding >> cap & 1) && prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
            return fail(f, errno, "dropping capability %u from the bounding set", cap);
    if (capset3(effective, permitted, inheritable) < 0)
        return fail(f, errno, "capset effective 0x%llx permitted 0x%llx inheritable 0x%llx",
                    (unsigned long long)effective, (unsigned long long)permitted, (unsigned long long)inheritable);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0) return fail(f, errno, "clearing ambient capabilities");
    for (unsigned cap = 0; cap < 64; cap++)
        if (ambient >> cap & 1 && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
            return fail(f, errno, "raising ambient capability %u", cap);
    return 0;
}

int op_no_new_privs(struct failure *f)
{
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) return fail(f, errno, "PR_SET_NO_NEW_PRIVS");
    return 0;
}

int op_seccomp(const struct plan_op *op, int *listener, struct failure *f)
{
    *listener = -1;
    unsigned flags = (unsigned)op->f[0].n;
    size_t count = op->f[1].len / sizeof(struct sock_filter);
    struct sock_filter *filter = malloc(op->f[1].len); /* aligned copy of the packed program */
    if (!filter) return fail(f, ENOMEM, "seccomp program");
    memcpy(filter, op->f[1].b, op->f[1].len);
    struct sock_fprog prog = {.len = (unsigned short)count, .filter = filter};
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (r < 0 && errno == ENOSYS && flags == 0) r = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
    int err = errno;
    free(filter);
    if (r < 0) return fail(f, err, "loading the seccomp filter (%zu instructions, flags 0x%x)", count, flags);
    if (r > 0) *listener = (int)r;
    return 0;
}

/* Mount operations. Paths inside the container's root are resolved with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_MAGICLINKS), so no symlink in the rootfs can lead outside it; the mount is then made
 * onto /proc/self/fd/<fd> of the resolved target. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "shim.h"

static const char *or_null(const char *s) { return *s ? s : NULL; }

static int open_in_root(int rootfd, const char *path)
{
    struct open_how how = {
        .flags = O_PATH | O_CLOEXEC,
        .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof how);
}

static int open_root(const char *root, struct failure *f)
{
    int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) fail(f, errno, "opening root %s", root);
    return fd;
}

#define MAX_SYMLINK_HOPS 40

static int resolve_depth(int rootfd, const char *root, const char *path, int create, mode_t mode,
                         struct failure *f, int hops);

/* A component that exists as a symlink whose target is missing: continue with the target (inside
 * the root: RESOLVE_IN_ROOT treats an absolute target as relative to it) followed by the rest. */
static int follow_dangling(int rootfd, const char *root, const char *path, int parent, const char *name,
                           const char *prefix, size_t plen, size_t clen, const char *rest, int create,
                           mode_t mode, struct failure *f, int hops)
{
    char target[PATH_MAX];
    ssize_t tlen = readlinkat(parent, name, target, sizeof target - 1);
    if (tlen < 0) return -2; /* not a symlink */
    target[tlen] = 0;
    if (hops >= MAX_SYMLINK_HOPS) return fail(f, ELOOP, "resolving %s in %s", path, root);
    char next[PATH_MAX];
    int n;
    if (target[0] == '/')
        n = snprintf(next, sizeof next, "%s%s%s", target, *rest ? "/" : "", rest);
    else
        n = snprintf(next, sizeof next, "%.*s/%s%s%s", (int)(plen - clen - 1), prefix, target, *rest ? "/" : "", rest);
    if (n < 0 || (size_t)n >= sizeof next) return fail(f, ENAMETOOLONG, "resolving %s in %s", path, root);
    return resolve_depth(rootfd, root, next, create, mode, f, hops + 1);
}

/* Resolve path under rootfd; when create is CREATE_DIR or CREATE_FILE, missing components are made
 * (directories 0755, a final file 0644, a final directory `mode`) one at a time and re-resolved.
 * A dangling symlink on the way is followed inside the root and its target created. */
static int resolve(int rootfd, const char *root, const char *path, int create, mode_t mode, struct failure *f)
{
    return resolve_depth(rootfd, root, path, create, mode, f, 0);
}

static int resolve_depth(int rootfd, const char *root, const char *path, int create, mode_t mode,
                         struct failure *f, int hops)
{
    int fd = open_in_root(rootfd, path);
    if (fd >= 0) return fd;
    if (errno != ENOENT || create == CREATE_NONE) return fail(f, errno, "resolving %s in %s", path, root);

    char prefix[PATH_MAX];
    size_t plen = 0;
    int parent = open_in_root(rootfd, "/");
    if (parent < 0) return fail(f, errno, "opening %s", root);
    mode_t old_umask = umask(0);
    const char *p = path;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) break;
        size_t clen = strcspn(p, "/");
        const char *next = p + clen;
        while (*next == '/') next++;
        int last = *next == 0;
        if (plen + clen + 2 > sizeof prefix) {
            fail(f, ENAMETOOLONG, "resolving %s in %s", path, root);
            goto out;
        }
        char name[NAME_MAX + 1];
        if (clen > NAME_MAX) {
            fail(f, ENAMETOOLONG, "resolving %s in %s", path, root);
            goto out;
        }
        memcpy(name, p, clen);
        name[clen] = 0;
        prefix[plen++] = '/';
        memcpy(prefix + plen, p, clen);
        plen += clen;
        prefix[plen] = 0;
        fd = open_in_root(rootfd, prefix);
        if (fd < 0 && errno == ENOENT) {
            int made = !last || create == CREATE_DIR ? mkdirat(parent, name, last ? mode : 0755)
                                                     : mknodat(parent, name, S_IFREG | 0644, 0);
            if (made < 0 && errno != EEXIST) {
                fail(f, errno, "creating %s in %s", prefix, root);
                goto out;
            }
            fd = open_in_root(rootfd, prefix);
            if (fd < 0 && errno == ENOENT && made < 0) {
                umask(old_umask);
                int followed = follow_dangling(rootfd, root, path, parent, name, prefix, plen, clen, next,
                                               create, mode, f, hops);
                if (followed != -2) {
                    close(parent);
                    return followed;
                }
                umask(0);
                errno = ENOENT;
            }
        }
        if (fd < 0) {
            fail(f, errno, "resolving %s in %s", prefix, root);
            goto out;
        }
        close(parent);
        parent = fd;
        p = next;
    }
    umask(old_umask);
    return parent;
out:
    umask(old_umask);
    close(parent);
    return -1;
}

/* Resolve the parent of path (creating it) and return its fd; *name points at the last component. */
static int resolve_parent(int rootfd, const char *root, const char *path, char *name, struct failure *f)
{
    char dir[PATH_MAX];
    size_t len = strlen(path);
    while (len > 1 && path[len - 1] == '/') len--;
    if (len >= sizeof dir) return fail(f, ENAMETOOLONG, "resolving %s in %s", path, root);
    memcpy(dir, path, len);
    dir[len] = 0;
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : dir;
    if (!*base || strcmp(base, ".") == 0 || strcmp(base, "..") == 0 || strlen(base) > NAME_MAX)
        return fail(f, EINVAL, "%s has no file name", path);
    strcpy(name, base);
    if (slash) slash[1] = 0;
    else strcpy(dir, "/");
    return resolve(rootfd, root, dir, CREATE_DIR, 0755, f);
}

static void fd_path(char *buf, size_t size, int fd) { snprintf(buf, size, "/proc/self/fd/%d", fd); }

/* MS_* flags of the mount at path, for remounts that must keep them (locked ones in a user namespace). */
static int current_flags(const char *path, unsigned long *flags, struct failure *f, const char *what)
{
    static const struct {
        unsigned long st, ms;
    } map[] = {
        {ST_RDONLY, MS_RDONLY},       {ST_NOSUID, MS_NOSUID},     {ST_NODEV, MS_NODEV},
        {ST_NOEXEC, MS_NOEXEC},       {ST_SYNCHRONOUS, MS_SYNCHRONOUS}, {ST_MANDLOCK, MS_MANDLOCK},
        {ST_NOATIME, MS_NOATIME},     {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
    };
    struct statvfs sv;
    if (statvfs(path, &sv) < 0) return fail(f, errno, "statvfs %s", what);
    *flags = 0;
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (sv.f_flag & map[i].st) *flags |= map[i].ms;
    return 0;
}

int op_mount(const struct plan_op *op, struct failure *f)
{
    const struct plan_field *a = op->f;
    if (mount(or_null(a[0].s), a[1].s, or_null(a[2].s), a[3].n, or_null(a[4].s)) < 0)
        return fail(f, errno, "mount %s on %s (type %s, flags 0x%llx)", a[0].s, a[1].s, a[2].s,
                    (unsigned long long)a[3].n);
    return 0;
}

int op_mount_in_root(const struct plan_op *op, struct failure *f)
{
    const struct plan_field *a = op->f;
    const char *root = a[0].s, *dest = a[1].s;
    int create = (int)a[6].n;
    int rootfd = open_root(root, f);
    if (rootfd < 0) return -1;
    int fd = resolve(rootfd, root, dest, create, 0755, f);
    close(rootfd);
    if (fd < 0) return -1;
    char target[64];
    fd_path(target, sizeof target, fd);
    int r = mount(or_null(a[2].s), target, or_null(a[3].s), a[4].n, or_null(a[5].s));
    int err = errno;
    close(fd);
    if (r < 0)
        return fail(f, err, "mount %s on %s in %s (type %s, flags 0x%llx)", a[2].s, dest, root, a[3].s,
                    (unsigned long long)a[4].n);
    return 0;
}

int op_remount(const struct plan_op *op, struct failure *f)
{
    const char *root = op->f[0].s, *dest = op->f[1].s;
    char target[PATH_MAX];
    int fd = -1;
    if (*root) {
        int rootfd = open_root(root, f);
        if (rootfd < 0) return -1;
        fd = resolve(rootfd, root, dest, CREATE_NONE, 0, f);
        close(rootfd);
        if (fd < 0) return -1;
        fd_path(target, sizeof target, fd);
    } else {
        snprintf(target, sizeof target, "%s", dest);
    }
    unsigned long flags;
    int r = current_flags(target, &flags, f, dest);
    if (r == 0 && mount(NULL, target, NULL, MS_REMOUNT | MS_BIND | op->f[2].n | flags, NULL) < 0)
        r = fail(f, errno, "remount %s%s with flags 0x%llx", root, dest, (unsigned long long)(op->f[2].n | flags));
    if (fd >= 0) close(fd);
    return r;
}

int op_mknod_in_root(const struct plan_op *op, struct failure *f)
{
    const struct plan_field *a = op->f;
    const char *root = a[0].s, *dest = a[1].s;
    char name[NAME_MAX + 1];
    int rootfd = open_root(root, f);
    if (rootfd < 0) return -1;
    int dir = resolve_parent(rootfd, root, dest, name, f);
    close(rootfd);
    if (dir < 0) return -1;
    int r = 0;
    if (unlinkat(dir, name, 0) < 0 && errno != ENOENT) r = fail(f, errno, "replacing %s in %s", dest, root);
    if (r == 0) {
        mode_t old = umask(0);
        if (mknodat(dir, name, (mode_t)a[2].n, makedev(a[3].n, a[4].n)) < 0)
            r = fail(f, errno, "mknod %s in %s (mode 0%llo, %llu:%llu)", dest, root, (unsigned long long)a[2].n,
                     (unsigned long long)a[3].n, (unsigned long long)a[4].n);
        umask(old);
    }
    if (r == 0 && fchownat(dir, name, (uid_t)a[5].n, (gid_t)a[6].n, AT_SYMLINK_NOFOLLOW) < 0)
        r = fail(f, errno, "chown %s in %s to %llu:%llu", dest, root, (unsigned long long)a[5].n,
                 (unsigned long long)a[6].n);
    close(dir);
    return r;
}

int op_symlink_in_root(const struct plan_op *op, struct failure *f)
{
    const char *root = op->f[0].s, *linkpath = op->f[1].s, *target = op->f[2].s;
    char name[NAME_MAX + 1];
    int rootfd = open_root(root, f);
    if (rootfd < 0) return -1;
    int dir = resolve_parent(rootfd, root, linkpath, name, f);
    close(rootfd);
    if (dir < 0) return -1;
    int r = 0;
    if (symlinkat(target, dir, name) < 0 && errno != EEXIST)
        r = fail(f, errno, "symlink %s -> %s in %s", linkpath, target, root);
    close(dir);
    return r;
}

int op_mkdir_in_root(const struct plan_op *op, struct failure *f)
{
    const char *root = op->f[0].s;
    int rootfd = open_root(root, f);
    if (rootfd < 0) return -1;
    int fd = resolve(rootfd, root, op->f[1].s, CREATE_DIR, (mode_t)op->f[2].n & 07777, f);
    close(rootfd);
    if (fd < 0) return -1;
    close(fd);
    return 0;
}

int op_pivot_root(const struct plan_op *op, struct failure *f)
{
    const char *root = op->f[0].s;
    if (chdir(root) < 0) return fail(f, errno, "chdir %s", root);
    if (syscall(SYS_pivot_root, ".", ".") < 0) return fail(f, errno, "pivot_root %s", root);
    /* The old root is now stacked on the new one: keep its unmount from reaching the host, then drop it. */
    if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0) return fail(f, errno, "making the old root rslave");
    if (umount2(".", MNT_DETACH) < 0) return fail(f, errno, "unmounting the old root");
    if (chdir("/") < 0) return fail(f, errno, "chdir /");
    return 0;
}

int op_move_root(const struct plan_op *op, struct failure *f)
{
    const char *root = op->f[0].s;
    if (chdir(root) < 0) return fail(f, errno, "chdir %s", root);
    if (mount(root, "/", NULL, MS_MOVE, NULL) < 0) return fail(f, errno, "moving %s to /", root);
    if (chroot(".") < 0) return fail(f, errno, "chroot %s", root);
    if (chdir("/") < 0) return fail(f, errno, "chdir /");
    return 0;
}

int op_mask_path(const struct plan_op *op, struct failure *f)
{
    const char *path = op->f[0].s;
    struct stat st;
    if (stat(path, &st) < 0) return errno == ENOENT ? 0 : fail(f, errno, "stat %s", path);
    int r = S_ISDIR(st.st_mode) ? mount("tmpfs", path, "tmpfs", MS_RDONLY, NULL)
                                : mount("/dev/null", path, NULL, MS_BIND, NULL);
    if (r < 0 && errno != ENOENT) return fail(f, errno, "masking %s", path);
    return 0;
}

int op_readonly_path(const struct plan_op *op, struct failure *f)
{
    const char *path = op->f[0].s;
    if (mount(path, path, NULL, MS_BIND | MS_REC, NULL) < 0)
        return errno == ENOENT ? 0 : fail(f, errno, "bind-mounting %s onto itself", path);
    unsigned long flags;
    if (current_flags(path, &flags, f, path) < 0) return -1;
    if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | flags, NULL) < 0)
        return fail(f, errno, "remounting %s read-only", path);
    return 0;
}

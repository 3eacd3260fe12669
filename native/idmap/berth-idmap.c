/*
 * berth-idmap: idmapped bind mounts for user-namespace remapping (docs/userns.md).
 *
 *   berth-idmap <uid-map> <gid-map> <source> <target> [<source> <target>]...
 *
 * A map is "container:host:size[,container:host:size]..." as in /proc/<pid>/uid_map. The
 * program makes a user namespace with these maps (a child that unshares and waits), then for
 * each pair clones the mount at <source> (open_tree), attaches the namespace's idmapping to the
 * clone (mount_setattr MOUNT_ATTR_IDMAP) and moves it onto <target>. Either every pair is mounted
 * or none is: on a failure the mounts already made are detached. Node.js has no binding for
 * these syscalls and util-linux learned X-mount.idmap only in 2.39.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_PAIRS 512
#define MAP_TEXT_MAX 4096

static int fail(const char *what, const char *path) {
    fprintf(stderr, "berth-idmap: %s %s: %s\n", what, path, strerror(errno));
    return -1;
}

/* "0:100000:65536,..." -> "0 100000 65536\n..."; only digits, ':' and ',' are accepted. */
static int map_text(const char *spec, char *out, size_t size) {
    size_t n = 0;
    int fields = 0;
    if (*spec == '\0') return -1;
    for (const char *p = spec; *p; p++) {
        char c = *p;
        if (n + 2 >= size) return -1;
        if (c >= '0' && c <= '9') out[n++] = c;
        else if (c == ':' && fields < 2 && p[1] >= '0' && p[1] <= '9') { out[n++] = ' '; fields++; }
        else if (c == ',' && fields == 2 && p[1] >= '0' && p[1] <= '9') { out[n++] = '\n'; fields = 0; }
        else return -1;
    }
    if (fields != 2) return -1;
    out[n++] = '\n';
    out[n] = '\0';
    return 0;
}

static int write_file(pid_t pid, const char *name, const char *text) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail("open", path);
    ssize_t len = (ssize_t)strlen(text);
    ssize_t written = write(fd, text, (size_t)len);
    int saved = errno;
    close(fd);
    errno = saved;
    if (written != len) return fail("write", path);
    return 0;
}

/* A user namespace with the maps, as an fd; its only process is gone when this returns. */
static int make_userns(const char *uid_map, const char *gid_map) {
    int ready[2], done[2];
    if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(done, O_CLOEXEC) < 0) return fail("pipe", "");
    pid_t pid = fork();
    if (pid < 0) return fail("fork", "");
    if (pid == 0) {
        close(ready[0]);
        close(done[1]);
        char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1) _exit(1);
        /* Wait until the parent holds the namespace (or is gone). */
        ssize_t r = read(done[0], &c, 1);
        _exit(r < 0 ? 1 : 0);
    }
    close(ready[1]);
    close(done[0]);
    char c = 'n';
    int fd = -1;
    if (read(ready[0], &c, 1) != 1 || c != 'y') {
        errno = c == 'n' ? EPERM : EIO;
        fail("unshare", "CLONE_NEWUSER");
    } else if (write_file(pid, "uid_map", uid_map) == 0 && write_file(pid, "gid_map", gid_map) == 0) {
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/ns/user", (int)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) fail("open", path);
    }
    close(done[1]);
    close(ready[0]);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    return fd;
}

static int idmapped_mount(int userns, const char *source, const char *target) {
    int tree = (int)syscall(SYS_open_tree, AT_FDCWD, source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (tree < 0) return fail("open_tree", source);
    struct mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (__u64)userns};
    int rc = 0;
    if (syscall(SYS_mount_setattr, tree, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
        rc = fail("mount_setattr MOUNT_ATTR_IDMAP", source);
    else if (syscall(SYS_move_mount, tree, "", AT_FDCWD, target, MOVE_MOUNT_F_EMPTY_PATH) < 0)
        rc = fail("move_mount to", target);
    close(tree);
    return rc;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        puts("berth-idmap 1");
        return 0;
    }
    if (argc < 5 || (argc - 3) % 2 != 0 || (argc - 3) / 2 > MAX_PAIRS) {
        fprintf(stderr, "usage: berth-idmap <uid-map> <gid-map> <source> <target> [<source> <target>]...\n");
        return 2;
    }
    char uid_map[MAP_TEXT_MAX], gid_map[MAP_TEXT_MAX];
    if (map_text(argv[1], uid_map, sizeof uid_map) < 0 || map_text(argv[2], gid_map, sizeof gid_map) < 0) {
        fprintf(stderr, "berth-idmap: a map is container:host:size[,container:host:size]...\n");
        return 2;
    }
    int userns = make_userns(uid_map, gid_map);
    if (userns < 0) return 1;
    int pairs = (argc - 3) / 2;
    for (int i = 0; i < pairs; i++) {
        if (idmapped_mount(userns, argv[3 + 2 * i], argv[4 + 2 * i]) == 0) continue;
        for (int j = i - 1; j >= 0; j--) umount2(argv[4 + 2 * j], MNT_DETACH);
        return 1;
    }
    close(userns);
    return 0;
}

/*
 * probe: performs one confinement attempt from inside a container and prints `ok` (sometimes
 * followed by a detail) or the errno name of the failure, then exits 0. Usage errors exit 2.
 * Built statically by test/helpers/probes/probe.ts; never committed as a binary.
 *
 * Every attempt is harmless even where it succeeds: the dangerous calls (reboot, kexec_load,
 * init_module, swapon, clock_settime) are made with arguments the kernel rejects (EINVAL,
 * ENOEXEC, ENOENT) after its permission checks, so a result other than EPERM proves that
 * seccomp and the capability checks let the call through without it doing anything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/keyctl.h>
#include <linux/perf_event.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/reboot.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

static const char *errno_name(int err) {
  switch (err) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case ESRCH: return "ESRCH";
    case EIO: return "EIO";
    case ENXIO: return "ENXIO";
    case ENOEXEC: return "ENOEXEC";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case ENOSPC: return "ENOSPC";
    case EROFS: return "EROFS";
    case ENOSYS: return "ENOSYS";
    case ENOKEY: return "ENOKEY";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ELOOP: return "ELOOP";
    default: return NULL;
  }
}

/* Prints the outcome of a call that returned `rc` (negative: failure with errno). */
static int report(long rc) {
  if (rc >= 0) {
    puts("ok");
    return 0;
  }
  int err = errno;
  const char *name = errno_name(err);
  if (name)
    puts(name);
  else
    printf("errno %d\n", err);
  return 0;
}

static int usage(void) {
  fputs("usage: probe <attempt> [args]\n", stderr);
  return 2;
}

/* Reads up to 64 bytes; prints `ok <bytes read>`. */
static int read_file(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return report(-1);
  char buf[64];
  ssize_t n = read(fd, buf, sizeof buf);
  int err = errno;
  close(fd);
  if (n < 0) {
    errno = err;
    return report(-1);
  }
  printf("ok %zd\n", n);
  return 0;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return report(-1);
  ssize_t n = write(fd, text, strlen(text));
  int err = errno;
  close(fd);
  errno = err;
  return report(n < 0 ? -1 : 0);
}

static int perf_event(void) {
  struct perf_event_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_SOFTWARE;
  attr.config = PERF_COUNT_SW_TASK_CLOCK;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  long fd = syscall(SYS_perf_event_open, &attr, 0, -1, -1, 0);
  if (fd >= 0) close((int)fd);
  return report(fd);
}

static int bpf_map(void) {
  union bpf_attr attr;
  memset(&attr, 0, sizeof attr);
  attr.map_type = BPF_MAP_TYPE_ARRAY;
  attr.key_size = 4;
  attr.value_size = 4;
  attr.max_entries = 1;
  long fd = syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
  if (fd >= 0) close((int)fd);
  return report(fd);
}

/* A handle needs a filesystem that exports them (not overlayfs): `path` is on a bind mount. */
static int open_by_handle(const char *path) {
  struct {
    struct file_handle handle;
    unsigned char bytes[MAX_HANDLE_SZ];
  } h;
  int mount_id;
  h.handle.handle_bytes = MAX_HANDLE_SZ;
  /* name_to_handle_at is allowed; open_by_handle_at needs CAP_DAC_READ_SEARCH and seccomp's leave. */
  if (name_to_handle_at(AT_FDCWD, path, &h.handle, &mount_id, 0) < 0) {
    fputs("name_to_handle_at ", stdout);
    return report(-1);
  }
  int mount_fd = open(path, O_RDONLY | O_CLOEXEC);
  if (mount_fd < 0) return report(-1);
  int fd = open_by_handle_at(mount_fd, &h.handle, O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
  return report(fd);
}

static int set_ns(const char *path) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return report(-1);
  return report(setns(fd, 0));
}

/* Raises the hard limit of RLIMIT_NOFILE by one. */
static int raise_rlimit(void) {
  struct rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) < 0) return report(-1);
  if (limit.rlim_max == RLIM_INFINITY) {
    puts("unlimited");
    return 0;
  }
  limit.rlim_max += 1;
  return report(setrlimit(RLIMIT_NOFILE, &limit));
}

/* Creates a block device node, then opens it read-only: `mknod-open <path> <major> <minor>`. */
static int mknod_open(const char *path, const char *major, const char *minor) {
  dev_t dev = makedev((unsigned)atoi(major), (unsigned)atoi(minor));
  if (mknod(path, S_IFBLK | 0600, dev) < 0) {
    fputs("mknod ", stdout);
    return report(-1);
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  fputs("mknod ok open ", stdout);
  if (fd >= 0) close(fd);
  return report(fd);
}

int main(int argc, char **argv) {
  if (argc < 2) return usage();
  const char *what = argv[1];
  const char *arg = argc > 2 ? argv[2] : "";
  struct timespec ts = {0, 0};

  if (!strcmp(what, "mount-tmpfs")) return report(mount("probe", arg, "tmpfs", 0, "size=64k"));
  if (!strcmp(what, "umount")) return report(umount2(arg, MNT_DETACH));
  if (!strcmp(what, "unshare-user")) return report(unshare(CLONE_NEWUSER));
  if (!strcmp(what, "unshare-mount")) return report(unshare(CLONE_NEWNS));
  if (!strcmp(what, "setns")) return set_ns(arg);
  if (!strcmp(what, "keyctl")) return report(syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0L));
  if (!strcmp(what, "add_key")) {
    if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, 0L) < 0 && errno != EPERM) return report(-1);
    return report(syscall(SYS_add_key, "user", "berth-probe", "x", 1L, (long)KEY_SPEC_SESSION_KEYRING));
  }
  if (!strcmp(what, "request_key"))
    return report(syscall(SYS_request_key, "user", "berth-probe-missing", 0L, 0L));
  /* 1000 segments is more than KEXEC_SEGMENT_MAX: EINVAL once the permission checks pass. */
  if (!strcmp(what, "kexec_load")) return report(syscall(SYS_kexec_load, 0L, 1000L, 0L, 0L));
  if (!strcmp(what, "bpf")) return bpf_map();
  if (!strcmp(what, "perf_event_open")) return perf_event();
  if (!strcmp(what, "open_by_handle_at")) return open_by_handle(arg);
  /* An empty image: ENOEXEC once the permission checks pass. */
  if (!strcmp(what, "init_module")) return report(syscall(SYS_init_module, 0L, 0L, ""));
  /* A wrong magic: EINVAL once the CAP_SYS_BOOT check passes. */
  if (!strcmp(what, "reboot")) return report(syscall(SYS_reboot, 0L, 0L, 0L, 0L));
  /* A missing file: ENOENT once the CAP_SYS_ADMIN check passes. */
  if (!strcmp(what, "swapon")) return report(swapon("/berth-probe-no-such-swap", 0));
  /* CLOCK_MONOTONIC cannot be set: EINVAL once seccomp lets the call through. */
  if (!strcmp(what, "clock_settime")) return report(syscall(SYS_clock_settime, CLOCK_MONOTONIC, &ts));
  if (!strcmp(what, "ptrace")) return report(ptrace(PTRACE_ATTACH, (pid_t)atoi(arg), 0, 0));
  if (!strcmp(what, "kill0")) return report(kill((pid_t)atoi(arg), 0));
  if (!strcmp(what, "read")) return read_file(arg);
  if (!strcmp(what, "write")) return argc > 3 ? write_file(arg, argv[3]) : usage();
  if (!strcmp(what, "mknod-open")) return argc > 4 ? mknod_open(arg, argv[3], argv[4]) : usage();
  if (!strcmp(what, "open")) {
    int fd = open(arg, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) close(fd);
    return report(fd);
  }
  if (!strcmp(what, "raise-rlimit")) return raise_rlimit();
  if (!strcmp(what, "ids")) {
    printf("uid %d euid %d\n", (int)getuid(), (int)geteuid());
    return 0;
  }
  return usage();
}

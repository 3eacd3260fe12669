/* berth-shim: executes a launch plan computed by berth's TypeScript code and then stays as the
 * container's monitor. It decides nothing; see docs/shim-plan.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cgroup_device.h"
#include "shim.h"

#define BERTH_SHIM_VERSION "0.1.0"

/* Replaced by cgroup_device.c when it is built in. */
__attribute__((weak)) int berth_cgroup_device_attach(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "berth-shim: cgroup-device-attach is not built into this binary\n");
    return 2;
}

static int cmd_decode(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    uint8_t *buf;
    size_t len;
    if (fd < 0 || plan_read(fd, &buf, &len) < 0) {
        fprintf(stderr, "berth-shim: decode %s: %s\n", path, strerror(errno));
        return 1;
    }
    close(fd);
    struct plan_error err;
    struct plan *plan = plan_decode(buf, len, &err);
    free(buf);
    if (!plan) {
        fprintf(stderr, "berth-shim: decode %s: %s\n", path, err.msg);
        return 1;
    }
    plan_print(plan, stdout);
    plan_free(plan);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
        printf("berth-shim version %s\n", BERTH_SHIM_VERSION);
        return 0;
    }
    if (argc == 2 && strcmp(argv[1], "launch") == 0) return cmd_launch();
    if (argc == 3 && strcmp(argv[1], "decode") == 0) return cmd_decode(argv[2]);
    if (argc >= 2 && strcmp(argv[1], "cgroup-device-attach") == 0)
        return berth_cgroup_device_attach(argc - 1, argv + 1);
    fprintf(stderr, "berth-shim: usage: berth-shim --version | launch | decode FILE | cgroup-device-attach DIR\n");
    return 2;
}

/* The launch plan: binary decoding and validation (docs/shim-plan.md, src/runtime/plan.ts). */
#ifndef BERTH_PLAN_H
#define BERTH_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PLAN_MAX_BYTES (16u << 20)
#define PLAN_MAX_OPS 4096u
#define PLAN_MAX_FIELDS 1024u

enum field_kind { FIELD_STRING = 1, FIELD_BYTES = 2, FIELD_NUMBER = 3 };

enum op_code {
    OP_JOIN_NS = 1,
    OP_CLONE_FLAGS = 2,
    OP_UID_MAP = 3,
    OP_GID_MAP = 4,
    OP_SETGROUPS = 5,
    OP_CONSOLE_SOCKET = 6,
    OP_TERMINAL_PROXY = 7,
    OP_EXIT_FILE = 8,
    OP_DETACH = 9,
    OP_TIME_OFFSETS = 10,
    OP_LOG_FILE = 11,
    OP_MKFIFO = 12,
    OP_STDIO_PIPES = 13,
    OP_OPEN_STDIN = 14,
    OP_LOG_JSON_FILE = 15,
    OP_ATTACH_SOCKET = 16,
    OP_CGROUP_JOIN = 17,
    OP_CLONE_INTO_CGROUP = 18,
    OP_SECCOMP_LISTENER = 19,
    OP_MOUNT = 100,
    OP_MOUNT_IN_ROOT = 101,
    OP_REMOUNT = 102,
    OP_MKNOD_IN_ROOT = 103,
    OP_SYMLINK_IN_ROOT = 104,
    OP_PIVOT_ROOT = 105,
    OP_MOVE_ROOT = 106,
    OP_MASK_PATH = 107,
    OP_READONLY_PATH = 108,
    OP_WRITE_FILE = 109,
    OP_SETHOSTNAME = 110,
    OP_SETDOMAINNAME = 111,
    OP_SETRLIMIT = 112,
    OP_SETGROUPS_IDS = 113,
    OP_SETGID = 114,
    OP_SETUID = 115,
    OP_UMASK = 116,
    OP_CAPS = 117,
    OP_NO_NEW_PRIVS = 118,
    OP_CHDIR = 119,
    OP_SECCOMP = 120,
    OP_OPEN_START_FIFO = 121,
    OP_WAIT_START = 122,
    OP_SETUP_TERMINAL = 123,
    OP_PRESERVE_FDS = 124,
    OP_PERSONALITY = 125,
    OP_EXEC = 126,
    OP_MKDIR_IN_ROOT = 127,
    OP_UNSHARE = 128,
    OP_HOOK = 129,
    OP_RUNTIME_HOOKS = 130,
    OP_FIRST_CONTAINER = 100,
    OP_LAST = OP_RUNTIME_HOOKS,
};

/* LOG_JSON_FILE keeps at most this many files (Docker's max-file). */
#define LOG_MAX_FILES 1000u

/* HOOK's fields before its strings (name, path, timeout, argc, envc), and its longest timeout in
 * seconds (poll(2) takes milliseconds in an int). */
#define HOOK_FIXED_FIELDS 5u
#define HOOK_MAX_TIMEOUT 2147483u

/* MOUNT_IN_ROOT's `create` field. */
enum { CREATE_NONE = 0, CREATE_DIR = 1, CREATE_FILE = 2 };

struct plan_field {
    uint8_t kind;
    uint32_t len;  /* bytes, without the terminating NUL of strings */
    union {
        const char *s; /* NUL-terminated */
        const uint8_t *b;
        uint64_t n;
    };
};

struct plan_op {
    uint16_t code;
    uint16_t nfields;
    const struct plan_field *f;
};

struct plan {
    uint32_t nops;
    struct plan_op *ops;
};

struct plan_error {
    uint32_t index; /* the op at fault; 0 for the header */
    char msg[256];
};

/* Decode and validate a plan; NULL (with err filled) when it is malformed. One free() releases it. */
struct plan *plan_decode(const uint8_t *buf, size_t len, struct plan_error *err);
void plan_free(struct plan *plan);

/* Read a whole plan from fd (at most PLAN_MAX_BYTES + 1 bytes, so oversize is detected); -1 and errno on failure. */
int plan_read(int fd, uint8_t **buf, size_t *len);

/* "MOUNT", "EXEC", ... or NULL for an unknown code. */
const char *op_name(unsigned code);

/* One line per op, the same format as describePlan() in src/runtime/plan.ts. */
void plan_print(const struct plan *plan, FILE *out);

#endif

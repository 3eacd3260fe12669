/* Replays corpus files through the fuzz entry point without libFuzzer (CI builds it with the
 * system compiler and sanitizers). Files named valid-* must decode; bad-* must be rejected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16;
    uint8_t *buf = malloc(cap);
    *len = 0;
    while (buf) {
        size_t n = fread(buf + *len, 1, cap - *len, f);
        *len += n;
        if (*len < cap) break;
        uint8_t *grown = realloc(buf, cap *= 2);
        if (!grown) free(buf);
        buf = grown;
    }
    fclose(f);
    return buf;
}

int main(int argc, char **argv)
{
    int failures = 0;
    for (int i = 1; i < argc; i++) {
        size_t len;
        uint8_t *buf = slurp(argv[i], &len);
        if (!buf) {
            fprintf(stderr, "%s: cannot read\n", argv[i]);
            failures++;
            continue;
        }
        LLVMFuzzerTestOneInput(buf, len);
        const char *base = strrchr(argv[i], '/') ? strrchr(argv[i], '/') + 1 : argv[i];
        struct plan_error err;
        struct plan *plan = plan_decode(buf, len, &err);
        int want_valid = strncmp(base, "valid-", 6) == 0, want_bad = strncmp(base, "bad-", 4) == 0;
        if ((want_valid && !plan) || (want_bad && plan)) {
            fprintf(stderr, "%s: expected %s, got %s\n", argv[i], want_valid ? "a valid plan" : "a rejection",
                    plan ? "a valid plan" : err.msg);
            failures++;
        }
        plan_free(plan);
        free(buf);
    }
    printf("replayed %d corpus files, %d unexpected\n", argc - 1, failures);
    return failures ? 1 : 0;
}

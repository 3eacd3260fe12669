/* libFuzzer entry point for the plan decoder: any byte string must either decode (and print) or be
 * rejected with a message, never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *sink;
    if (!sink) sink = fopen("/dev/null", "w");
    struct plan_error err;
    struct plan *plan = plan_decode(data, size, &err);
    if (plan) {
        if (sink) plan_print(plan, sink);
        plan_free(plan);
    } else if (err.msg[0] == 0 || strchr(err.msg, '\n')) {
        __builtin_trap(); /* a rejection must come with a one-line message */
    }
    return 0;
}

/* berth-shim: executes a launch plan computed by berth's TypeScript code and then stays as the
 * container's monitor. It decides nothing; see docs/shim-plan.md. */
#include <stdio.h>
#include <string.h>

#define BERTH_SHIM_VERSION "0.1.0"

int main(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
        printf("berth-shim version %s\n", BERTH_SHIM_VERSION);
        return 0;
    }
    fprintf(stderr, "berth-shim: usage: berth-shim --version\n");
    return 2;
}

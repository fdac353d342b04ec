/* libFuzzer entry point for one target, chosen at build time with
 * -DPS_FUZZ_TARGET=name (one executable per target: each gets its own
 * corpus and coverage). */
#include "fuzz.h"

#include <stdlib.h>
#include <string.h>

#ifndef PS_FUZZ_TARGET
#error "PS_FUZZ_TARGET must name a target of targets.c"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int (*run)(const uint8_t *, size_t);
    if (run == NULL) {
        for (const ps_fuzz_target *t = ps_fuzz_targets; t->name; t++)
            if (strcmp(t->name, PS_FUZZ_TARGET) == 0)
                run = t->run;
        if (run == NULL)
            abort();
    }
    run(data, size);
    return 0;
}

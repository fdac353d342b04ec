/* fuzz_replay DIR: feeds every file of DIR/corpus/NAME and
 * DIR/regressions/NAME through fuzz target NAME, without libFuzzer, so the
 * committed seeds and every input that once crashed run in the normal
 * build (and under ASan/UBSan in CI's sanitizer build). Fails when a
 * target has no corpus (a replay of nothing proves nothing) or a file
 * cannot be read; a crash is the test crashing. */
#include "fuzz.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPLAY_MAX_INPUT (1u << 20)

/* Runs target t on every file in dir; returns files run, -1 on an I/O
 * error. A missing dir counts as empty. */
static long replay_dir(const ps_fuzz_target *t, const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    static uint8_t buf[REPLAY_MAX_INPUT];
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
            n = -1;
            break;
        }
        size_t len = fread(buf, 1, sizeof(buf), f);
        int bad = ferror(f) || !feof(f);
        fclose(f);
        if (bad) {
            fprintf(stderr, "fuzz_replay: %s: unreadable or over %u bytes\n",
                    path, REPLAY_MAX_INPUT);
            n = -1;
            break;
        }
        t->run(buf, len);
        n++;
    }
    closedir(d);
    return n;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_replay DIR (tests/fuzz)\n");
        return 2;
    }
    int failed = 0;
    for (const ps_fuzz_target *t = ps_fuzz_targets; t->name; t++) {
        char dir[4096];
        snprintf(dir, sizeof(dir), "%s/corpus/%s", argv[1], t->name);
        long seeds = replay_dir(t, dir);
        snprintf(dir, sizeof(dir), "%s/regressions/%s", argv[1], t->name);
        long regressions = replay_dir(t, dir);
        printf("fuzz_replay: %-12s corpus=%ld regressions=%ld\n", t->name,
               seeds, regressions);
        if (seeds <= 0 || regressions < 0)
            failed = 1;
    }
    if (failed)
        fprintf(stderr, "fuzz_replay: a target has no corpus or a file "
                        "could not be read\n");
    return failed;
}

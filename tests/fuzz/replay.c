/*
 * replay.c — standalone driver for a fuzz target (the libvips/zstd idea):
 * run the files named on the command line, then the target's seeds and
 * TSR_FUZZ_ROUNDS (default 3000) deterministic mutations of them: bit flips,
 * byte changes, truncations, insertions and splices.  A crash, a sanitizer
 * report or a hang (ctest timeout) fails the test.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static uint64_t state = 0x9E3779B97F4A7C15u;

static uint64_t next(void)
{
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static void run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(1);
    }
    uint8_t *buf = malloc(1 << 20);
    size_t n = fread(buf, 1, 1 << 20, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
}

/* --write-seeds DIR: save the seeds as a starting corpus for libFuzzer. */
static int write_seeds(const char *dir, uint8_t **seeds, const size_t *lens, size_t ns)
{
    for (size_t s = 0; s < ns; s++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/seed-%zu", dir, s);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(seeds[s], 1, lens[s], f) != lens[s]) {
            fprintf(stderr, "replay: cannot write %s\n", path);
            return 1;
        }
        fclose(f);
    }
    return 0;
}

int main(int argc, char **argv)
{
    uint8_t *seeds[16];
    size_t lens[16];
    size_t ns = tsr_fuzz_seeds(seeds, lens, 16);
    if (argc == 3 && strcmp(argv[1], "--write-seeds") == 0) {
        int rc = write_seeds(argv[2], seeds, lens, ns);
        for (size_t s = 0; s < ns; s++)
            free(seeds[s]);
        return rc;
    }
    for (int i = 1; i < argc; i++)
        run_file(argv[i]);
    const char *r = getenv("TSR_FUZZ_ROUNDS");
    long rounds = r ? atol(r) : 3000;
    size_t cap = 1;
    for (size_t s = 0; s < ns; s++)
        cap = lens[s] + 64 > cap ? lens[s] + 64 : cap;
    uint8_t *buf = malloc(cap);
    for (size_t s = 0; s < ns; s++)
        LLVMFuzzerTestOneInput(seeds[s], lens[s]);
    for (long k = 0; k < rounds && ns > 0; k++) {
        size_t s = next() % ns, n = lens[s];
        memcpy(buf, seeds[s], n);
        int edits = 1 + (int)(next() % 4);
        for (int e = 0; e < edits; e++) {
            switch (next() % 5) {
            case 0: /* flip a bit */
                if (n)
                    buf[next() % n] ^= (uint8_t)(1u << (next() % 8));
                break;
            case 1: /* set an interesting byte */
                if (n) {
                    static const uint8_t v[] = {0, 1, 0x7f, 0x80, 0xff, '(', ')', ',', '\'', ':'};
                    buf[next() % n] = v[next() % sizeof v];
                }
                break;
            case 2: /* truncate */
                if (n)
                    n = next() % n;
                break;
            case 3: /* insert a byte */
                if (n + 1 < cap) {
                    size_t at = n ? next() % n : 0;
                    memmove(buf + at + 1, buf + at, n - at);
                    buf[at] = (uint8_t)next();
                    n++;
                }
                break;
            default: /* overwrite 4 bytes with a big number */
                if (n >= 4) {
                    uint32_t big = 0xFFFFFFF0u + (uint32_t)(next() % 16);
                    memcpy(buf + next() % (n - 3), &big, 4);
                }
                break;
            }
        }
        LLVMFuzzerTestOneInput(buf, n);
    }
    for (size_t s = 0; s < ns; s++)
        free(seeds[s]);
    free(buf);
    printf("replay: %zu seeds, %ld mutations, no crash\n", ns, rounds);
    return 0;
}

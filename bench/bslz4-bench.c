/*
 * bslz4-bench.c — bitshuffle-LZ4 decoding speed on one core: frames of
 * detector-like counts (mostly 0-2, some larger) encoded as DECTRIS
 * detectors write them (8 KiB blocks), decoded again and again by
 * tsr__bshuf_decode with each bit-transpose kernel this CPU has, and the
 * transpose alone.  Prints a table and one JSON line (GB/s of decoded
 * output; best of 5 rounds of about 0.3 s each).
 *
 * Usage: bslz4-bench [frame_side=512] [elem_bytes=4]
 */
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/codecs/codecs.h"
#include "platform/os.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* Encode n elements of es bytes as a bitshuffle-LZ4 chunk. */
static size_t encode(const uint8_t *in, size_t n, size_t es, uint8_t *out, size_t cap)
{
    size_t block = 8192 / es, at = 12, done = 0;
    uint8_t *tmp = malloc(block * es);
    put_be32(out, (uint32_t)((uint64_t)(n * es) >> 32));
    put_be32(out + 4, (uint32_t)(n * es));
    put_be32(out + 8, (uint32_t)(block * es));
    while (n - done >= 8) {
        size_t m = n - done >= block ? block : (n - done) / 8 * 8;
        tsr__bitshuffle_ref(in + done * es, tmp, m, es);
        int c = LZ4_compress_default((const char *)tmp, (char *)out + at + 4, (int)(m * es),
                                     (int)(cap - at - 4));
        put_be32(out + at, (uint32_t)c);
        at += 4 + (size_t)c;
        done += m;
    }
    memcpy(out + at, in + done * es, (n - done) * es);
    free(tmp);
    return at + (n - done) * es;
}

typedef void (*work_fn)(void *arg);

/* Best of 5 rounds of ~0.3 s: seconds per call. */
static double time_it(work_fn fn, void *arg)
{
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        int calls = 0;
        double t0 = tsr__now(), t;
        do {
            fn(arg);
            calls++;
            t = tsr__now() - t0;
        } while (t < 0.3);
        if (t / calls < best)
            best = t / calls;
    }
    return best;
}

typedef struct job {
    const uint8_t *enc, *sh;
    size_t enc_n, bytes, n, es;
    uint8_t *out, *tmp;
    tsr__simd_t kernel;
} job_t;

static void decode_job(void *arg)
{
    job_t *j = arg;
    size_t got;
    char err[256];
    if (tsr__bshuf_decode(j->enc, j->enc_n, j->out, j->bytes, j->es, TSR_BSHUF_LZ4, 0, j->tmp, &got,
                          err, sizeof err)) {
        fprintf(stderr, "bslz4-bench: %s\n", err);
        exit(1);
    }
}

static void untrans_job(void *arg)
{
    job_t *j = arg;
    tsr__bitunshuffle_with(j->kernel, j->sh, j->out, j->n, j->es);
}

int main(int argc, char **argv)
{
    size_t side = argc > 1 ? (size_t)atol(argv[1]) : 512, es = argc > 2 ? (size_t)atol(argv[2]) : 4;
    size_t n = side * side, bytes = n * es, cap = LZ4_compressBound((int)bytes) + bytes / 8 + 64;
    uint8_t *orig = calloc(1, bytes), *enc = malloc(cap), *out = malloc(bytes), *sh = malloc(bytes);
    uint8_t *tmp = malloc(bytes);
    static const char *names[] = {"scalar", "sse2", "avx2", "best"};

    for (size_t i = 0; i < n; i++) {
        uint32_t r = next_u32() % 100, v = r < 60 ? 0 : r < 85 ? 1 : r < 97 ? 2 : next_u32() % 4000;
        memcpy(orig + i * es, &v, es < 4 ? es : 4);
    }
    size_t enc_n = encode(orig, n, es, enc, cap);
    tsr__bitshuffle_ref(orig, sh, n, es);
    job_t j = {enc, sh, enc_n, bytes, n, es, out, tmp, TSR_SIMD_BEST};
    decode_job(&j);
    if (memcmp(out, orig, bytes) != 0) {
        fprintf(stderr, "bslz4-bench: the decoded frame differs from the original\n");
        return 1;
    }
    double dec = bytes / time_it(decode_job, &j) / 1e9;
    printf("bitshuffle-LZ4 decode, %zux%zu frame of %zu-byte counts (ratio %.1f): %.2f GB/s of "
           "output per core\n",
           side, side, es, (double)bytes / (double)enc_n, dec);
    printf("{\"case\": \"bslz4_decode\", \"frame\": [%zu, %zu], \"elem_bytes\": %zu, "
           "\"ratio\": %.2f, \"gbps_per_core\": %.3f",
           side, side, es, (double)bytes / (double)enc_n, dec);
    for (int k = TSR_SIMD_SCALAR; k <= TSR_SIMD_AVX2; k++) {
        if (!tsr__simd_available((tsr__simd_t)k))
            continue;
        j.kernel = (tsr__simd_t)k;
        double g = bytes / time_it(untrans_job, &j) / 1e9;
        printf(", \"untranspose_%s_gbps\": %.3f", names[k], g);
        fprintf(stderr, "  bit untranspose alone, %-6s kernel: %.2f GB/s\n", names[k], g);
    }
    printf("}\n");
    free(orig);
    free(enc);
    free(out);
    free(sh);
    free(tmp);
    return 0;
}

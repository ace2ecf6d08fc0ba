/* fuzz_frms6.c — the FRMS6 reader: its .hdr, file headers, frame layout and
 * the MAT-file gain map.  The first input byte chooses which file the rest
 * becomes, beside valid others: 0 the .hdr, 1 the dark file _000, 2 the
 * signal file _001, 3 the gain map (.mat).  Malformed files must give a
 * clean error; an opened data set must read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "fuzz.h"
#include "io/dataset.h"

enum { W = 8, H = 2, NDARK = 2, NSIG = 3, FH = 64, FILEH = 1024 };

static void put16(uint8_t *b, uint16_t v)
{
    b[0] = (uint8_t)v;
    b[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *b, uint32_t v)
{
    put16(b, (uint16_t)v);
    put16(b + 2, (uint16_t)(v >> 16));
}

static const char hdr_text[] = "[measurementInfo]\n"
                               "darkFrames=2\nsignalFrames=3\n"
                               "readoutMode=\"bin: 1, windowing: 4 x 4 \"\n"
                               "stemImageSize=1x3\ngain=1\n";

/* A .frms6 file of n frames. */
static uint8_t *frms6(int n, size_t *len)
{
    size_t stride = FH + W * H * 2, sz = FILEH + (size_t)n * stride;
    uint8_t *b = calloc(1, sz);
    put16(b, FILEH);
    put16(b + 2, FH);
    b[7] = 6;
    put16(b + 88, W);
    put16(b + 90, H);
    put32(b + 1020, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        uint8_t *f = b + FILEH + (size_t)i * stride;
        put32(f + 12, (uint32_t)i);
        for (int p = 0; p < W * H; p++)
            put16(f + FH + 2 * p, (uint16_t)(i * 100 + p));
    }
    *len = sz;
    return b;
}

/* A MAT-file with GainMap, a 4 x 4 double array; compressed if asked. */
static uint8_t *mat(int compressed, size_t *len)
{
    uint8_t el[192] = {0};
    put32(el, 14);
    put32(el + 4, 184);
    put32(el + 8, 6); /* array flags */
    put32(el + 12, 8);
    put32(el + 16, 6); /* mxDOUBLE_CLASS */
    put32(el + 24, 5); /* dimensions */
    put32(el + 28, 8);
    put32(el + 32, 4);
    put32(el + 36, 4);
    put32(el + 40, 1); /* name */
    put32(el + 44, 7);
    memcpy(el + 48, "GainMap", 7);
    put32(el + 56, 9); /* real part */
    put32(el + 60, 128);
    for (int i = 0; i < 16; i++) {
        double d = 1.0 + i / 16.0;
        memcpy(el + 64 + 8 * i, &d, 8);
    }
    uint8_t *b = calloc(1, 128 + 8 + compressBound(sizeof el));
    memset(b, ' ', 116);
    memcpy(b, "MATLAB 5.0 MAT-file", 19);
    put16(b + 124, 0x0100);
    b[126] = 'I';
    b[127] = 'M';
    if (!compressed) {
        memcpy(b + 128, el, sizeof el);
        *len = 128 + sizeof el;
        return b;
    }
    uLongf clen = compressBound(sizeof el);
    compress(b + 136, &clen, el, sizeof el);
    put32(b + 128, 15);
    put32(b + 132, (uint32_t)clen);
    *len = 136 + clen;
    return b;
}

static void write_all(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        if (n)
            fwrite(d, 1, n, f);
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 4;
    char dir[64], path[4][96];
    snprintf(dir, sizeof dir, "/tmp/tsr-fuzz-frms6-%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(path[0], sizeof path[0], "%s/s.hdr", dir);
    snprintf(path[1], sizeof path[1], "%s/s_000.frms6", dir);
    snprintf(path[2], sizeof path[2], "%s/s_001.frms6", dir);
    snprintf(path[3], sizeof path[3], "%s/gain.mat", dir);
    for (int i = 0; i < 4; i++) {
        if (i == which) {
            write_all(path[i], data + 1, size - 1);
            continue;
        }
        size_t n;
        uint8_t *b = i == 0 ? NULL : i == 3 ? mat(0, &n) : frms6(i == 1 ? NDARK : NSIG, &n);
        if (i == 0)
            write_all(path[i], (const uint8_t *)hdr_text, strlen(hdr_text));
        else
            write_all(path[i], b, n);
        free(b);
    }
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_params_t *p = NULL;
        tsr_params_new(ctx, &p);
        tsr_params_add(p, "gain_map_path", path[3]);
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, "frms6", path[0], p, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
            if (n > 8)
                n = 8;
            if (px <= (1 << 16)) {
                float *buf = malloc((size_t)px * sizeof(float));
                char err[256];
                for (int64_t i = 0; i < n && buf; i++) {
                    tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F32, buf, NULL, err, sizeof err);
                    if (px > 3)
                        tsr__dataset_read(ds, &io, i, 1, 1, px - 3, TSR_U16, buf, NULL, err,
                                          sizeof err);
                }
                free(buf);
            }
            tsr__io_destroy(&io);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        } else if (getenv("TSR_FUZZ_VERBOSE")) {
            fprintf(stderr, "%s\n", tsr_ctx_errmsg(ctx));
        }
        tsr_params_free(p);
        tsr_ctx_free(ctx);
    }
    for (int i = 0; i < 4; i++)
        unlink(path[i]);
    rmdir(dir);
    return 0;
}

static uint8_t *with_tag(uint8_t tag, const void *d, size_t n, size_t *len)
{
    uint8_t *b = malloc(n + 1);
    b[0] = tag;
    memcpy(b + 1, d, n);
    *len = n + 1;
    return b;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    size_t k = 0, n;
    uint8_t *b;
    if (k < max) {
        seeds[k] = with_tag(0, hdr_text, strlen(hdr_text), &lens[k]);
        k++;
    }
    for (int i = 1; i <= 2 && k < max; i++, k++) {
        b = frms6(i == 1 ? NDARK : NSIG, &n);
        seeds[k] = with_tag((uint8_t)i, b, n, &lens[k]);
        free(b);
    }
    for (int c = 0; c < 2 && k < max; c++, k++) {
        b = mat(c, &n);
        seeds[k] = with_tag(3, b, n, &lens[k]);
        free(b);
    }
    return k;
}

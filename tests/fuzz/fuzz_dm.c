/* fuzz_dm.c — whole DM3/DM4 files through auto-detection, open and reads of
 * every frame (whole frames and a band of pixels, both I/O paths of the
 * signal-first layout): malformed files must give a clean error.
 *
 * The seeds are small valid files built here from the published layout: a
 * DM3 image stack (thumbnail + 3-D int16, C order), a DM4 4D-STEM file
 * (uint8, signal-first, with calibrations and a struct tag) and the latter
 * as a big-endian DM3. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/tmp/tsr-fuzz-dm-%d.dm4", (int)getpid());
    FILE *f = fopen(path, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        /* alternate between the mapped and the direct (span read) paths */
        tsr_ctx_set(ctx, TSR_OPT_IO_BACKEND, size & 1 ? TSR_IO_DIRECT : TSR_IO_PREAD);
        tsr_ctx_set(ctx, TSR_OPT_TILE_BYTES, 256);
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, NULL, path, NULL, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
            if (n > 64)
                n = 64;
            if (px <= (1 << 16)) {
                double *buf = malloc((size_t)px * 4 * sizeof(double));
                char err[256];
                for (int64_t i = 0; i < n && buf; i++)
                    tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F64, buf, NULL, err, sizeof err);
                if (buf && n >= 4 && px >= 2)
                    tsr__dataset_read(ds, &io, 0, 4, 1, px - 1, TSR_F64, buf, NULL, err,
                                      sizeof err);
                free(buf);
            }
            tsr__io_destroy(&io);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        }
        tsr_ctx_free(ctx);
    }
    unlink(path);
    return 0;
}

/* ---- seeds: a tiny DM writer ------------------------------------------- */

typedef struct out {
    uint8_t *b;
    size_t n, cap;
    int w;    /* 4 (DM3) or 8 (DM4) */
    bool big; /* values big-endian */
} out_t;

static void put(out_t *o, const void *p, size_t n)
{
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2;
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}

static void be(out_t *o, uint64_t v, int w)
{
    uint8_t b[8];
    for (int i = 0; i < w; i++)
        b[i] = (uint8_t)(v >> (8 * (w - 1 - i)));
    put(o, b, (size_t)w);
}

/* A value in the file's byte order. */
static void le(out_t *o, uint64_t v, int w)
{
    uint8_t b[8];
    for (int i = 0; i < w; i++)
        b[o->big ? w - 1 - i : i] = (uint8_t)(v >> (8 * i));
    put(o, b, (size_t)w);
}

/* A tag header; DM4's size field is written as 0 (readers ignore it). */
static void tag(out_t *o, int kind, const char *name)
{
    uint8_t k = (uint8_t)kind;
    put(o, &k, 1);
    be(o, strlen(name), 2);
    put(o, name, strlen(name));
    if (o->w == 8)
        be(o, 0, 8);
}

static void group(out_t *o, const char *name, uint64_t ntags)
{
    tag(o, 20, name);
    put(o, "\1\0", 2);
    be(o, ntags, o->w);
}

static void info(out_t *o, const char *name, int n, const uint64_t *codes)
{
    tag(o, 21, name);
    put(o, "%%%%", 4);
    be(o, (uint64_t)n, o->w);
    for (int i = 0; i < n; i++)
        be(o, codes[i], o->w);
}

static void long_tag(out_t *o, const char *name, uint32_t v)
{
    info(o, name, 1, (const uint64_t[]){3});
    le(o, v, 4);
}

static void float_tag(out_t *o, const char *name, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    info(o, name, 1, (const uint64_t[]){6});
    le(o, u, 4);
}

static void text_tag(out_t *o, const char *name, const char *s)
{
    info(o, name, 3, (const uint64_t[]){20, 4, strlen(s)});
    for (const char *p = s; *p; p++)
        le(o, (uint8_t)*p, 2);
}

/* One ImageList entry: ImageData (Calibrations, Data, DataType,
 * Dimensions) and ImageTags (Meta Data/Format). */
static void image(out_t *o, int nd, const uint32_t *dims, int dm_type, int el, size_t es,
                  const char *format)
{
    size_t count = 1;
    for (int i = 0; i < nd; i++)
        count *= dims[i];
    group(o, "", 2);
    group(o, "ImageData", 4);
    group(o, "Calibrations", 1);
    group(o, "Dimension", (uint64_t)nd);
    for (int i = 0; i < nd; i++) {
        group(o, "", 3);
        float_tag(o, "Origin", (float)i);
        float_tag(o, "Scale", 0.5f);
        text_tag(o, "Units", "nm");
    }
    info(o, "Data", 3, (const uint64_t[]){20, (uint64_t)el, count});
    for (size_t i = 0; i < count; i++)
        le(o, i * 37 + 11, (int)es);
    long_tag(o, "DataType", (uint32_t)dm_type);
    group(o, "Dimensions", (uint64_t)nd);
    for (int i = 0; i < nd; i++)
        long_tag(o, "", dims[i]);
    group(o, "ImageTags", 2);
    group(o, "Meta Data", 1);
    text_tag(o, "Format", format);
    group(o, "Acquisition", 1);
    /* a struct: (name length 0, 2 fields of float) */
    info(o, "Pixel Size (um)", 7, (const uint64_t[]){15, 0, 2, 0, 6, 0, 6});
    le(o, 0x425C0000u, 4);
    le(o, 0x425C0000u, 4);
}

static size_t dm_file(uint8_t **dst, int version, int four_d, bool big)
{
    out_t o = {0};
    o.w = version == 4 ? 8 : 4;
    o.big = big;
    be(&o, (uint64_t)version, 4);
    be(&o, 0, o.w);
    be(&o, big ? 0 : 1, 4);
    put(&o, "\1\0", 2);
    be(&o, 2, o.w); /* root: ImageList, Thumbnails */
    group(&o, "ImageList", 2);
    image(&o, 2, (const uint32_t[]){4, 4}, 23, 5, 4, "Image"); /* the thumbnail */
    if (four_d)
        image(&o, 4, (const uint32_t[]){3, 2, 5, 4}, 6, 10, 1, "Diffraction image");
    else
        image(&o, 3, (const uint32_t[]){5, 4, 3}, 1, 2, 2, "Image");
    group(&o, "Thumbnails", 1);
    group(&o, "", 1);
    long_tag(&o, "ImageIndex", 0);
    be(&o, 0, 8);
    *dst = o.b;
    return o.n;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    size_t n = 0;
    if (n < max)
        lens[n] = dm_file(&seeds[n], 3, 0, false), n++;
    if (n < max)
        lens[n] = dm_file(&seeds[n], 4, 1, false), n++;
    if (n < max)
        lens[n] = dm_file(&seeds[n], 3, 1, true), n++;
    return n;
}

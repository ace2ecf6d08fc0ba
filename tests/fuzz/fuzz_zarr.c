/* fuzz_zarr.c — Zarr array metadata and chunks: the input is the text of a
 * .zarray, a NUL byte, then the bytes of the chunk at grid position 0.
 * Both go through the parser and the decoder directly, then into a store
 * on disk that the reader opens and reads (every frame, up to 64).
 * Malformed input must give a clean error. */
#include <blosc.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "fuzz.h"
#include "io/dataset.h"
#include "io/formats/zarr/zarr.h"

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t mlen = nul ? (size_t)(nul - data) : size;
    const uint8_t *chunk = nul ? nul + 1 : data + size;
    size_t clen = nul ? size - mlen - 1 : 0;

    tsr__zarr_meta_t m;
    char err[256];
    if (tsr__zarr_parse_meta((const char *)data, mlen, &m, err, sizeof err) != 0) {
        if (!err[0])
            abort();
        return 0;
    }
    if (m.chunk_bytes <= (1u << 20)) {
        void *dst = malloc(m.chunk_bytes ? m.chunk_bytes : 1);
        if (dst && tsr__zarr_decode(&m, chunk, clen, dst, err, sizeof err) != 0 && !err[0])
            abort();
        free(dst);
    }

    /* a store with this metadata and this chunk at position 0 */
    char dir[96], path[256];
    snprintf(dir, sizeof dir, "/tmp/tsr-fuzz-zarr-%d", (int)getpid());
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/.zarray", dir);
    write_file(path, data, mlen);
    size_t off = (size_t)snprintf(path, sizeof path, "%s/", dir);
    for (int i = 0; i < m.ndim; i++) {
        if (i && m.sep == '/') {
            path[off] = 0;
            mkdir(path, 0700);
        }
        off += (size_t)snprintf(path + off, sizeof path - off, "%s0",
                                i ? (m.sep == '/' ? "/" : ".") : "");
    }
    write_file(path, chunk, clen);

    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, "zarr", dir, NULL, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
            if (n > 64)
                n = 64;
            if (px <= (1 << 16)) {
                double *buf = malloc((size_t)px * sizeof(double));
                for (int64_t i = 0; i < n && buf; i++)
                    tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F64, buf, NULL, err, sizeof err);
                free(buf);
            }
            tsr__io_destroy(&io);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        }
        tsr_ctx_free(ctx);
    }
    /* remove the store (the nested path's directories too) */
    unlink(path);
    for (char *s = strrchr(path, '/'); s && s > path + strlen(dir); s = strrchr(path, '/')) {
        *s = 0;
        rmdir(path);
    }
    snprintf(path, sizeof path, "%s/.zarray", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* A seed: .zarray text for a (3, 4, 5) u2 array in chunks of (2, 4, 5),
 * then chunk 0 encoded with the compressor. */
static uint8_t *seed(const char *compressor, const char *sep, const char *dtype, int codec,
                     size_t *len)
{
    char meta[512];
    int ml = snprintf(meta, sizeof meta,
                      "{\"zarr_format\": 2, \"shape\": [3, 4, 5], \"chunks\": [2, 4, 5], "
                      "\"dtype\": \"%s\", \"order\": \"C\", \"fill_value\": 3, "
                      "\"filters\": null, \"dimension_separator\": \"%s\", "
                      "\"compressor\": %s}",
                      dtype, sep, compressor);
    uint16_t raw[40];
    for (int i = 0; i < 40; i++)
        raw[i] = (uint16_t)(i * 37 % 11);
    size_t cap = 4096, cl = 0;
    uint8_t *c = malloc(cap);
    switch (codec) {
    case 0:
        memcpy(c, raw, sizeof raw);
        cl = sizeof raw;
        break;
    case 1: cl = ZSTD_compress(c, cap, raw, sizeof raw, 3); break;
    case 2: {
        uint32_t n = sizeof raw;
        memcpy(c, &n, 4);
        cl = 4 + (size_t)LZ4_compress_default((const char *)raw, (char *)c + 4, sizeof raw,
                                              (int)cap - 4);
        break;
    }
    case 3: {
        uLongf dl = cap;
        compress2(c, &dl, (const Bytef *)raw, sizeof raw, 5);
        cl = dl;
        break;
    }
    case 4: cl = (size_t)blosc_compress_ctx(5, 1, 2, sizeof raw, raw, c, cap, "lz4", 0, 1); break;
    case 5: { /* gzip framing */
        z_stream z;
        memset(&z, 0, sizeof z);
        deflateInit2(&z, 5, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
        z.next_in = (Bytef *)raw;
        z.avail_in = sizeof raw;
        z.next_out = c;
        z.avail_out = (uInt)cap;
        deflate(&z, Z_FINISH);
        cl = z.total_out;
        deflateEnd(&z);
        break;
    }
    }
    uint8_t *out = malloc((size_t)ml + 1 + cl);
    memcpy(out, meta, (size_t)ml);
    out[ml] = 0;
    memcpy(out + ml + 1, c, cl);
    free(c);
    *len = (size_t)ml + 1 + cl;
    return out;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    if (max < 6)
        return 0;
    seeds[0] = seed("null", ".", "<u2", 0, &lens[0]);
    seeds[1] = seed("{\"id\": \"zstd\", \"level\": 3}", "/", "<u2", 1, &lens[1]);
    seeds[2] = seed("{\"id\": \"lz4\", \"acceleration\": 1}", ".", "<u2", 2, &lens[2]);
    seeds[3] = seed("{\"id\": \"zlib\", \"level\": 5}", ".", ">u2", 3, &lens[3]);
    seeds[4] = seed("{\"id\": \"blosc\", \"cname\": \"lz4\", \"clevel\": 5, \"shuffle\": 1, "
                    "\"blocksize\": 0}",
                    "/", "<u2", 4, &lens[4]);
    seeds[5] = seed("{\"id\": \"gzip\", \"level\": 5}", ".", "<i2", 5, &lens[5]);
    return 6;
}

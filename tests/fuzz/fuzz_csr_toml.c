/* fuzz_csr_toml.c — the TOML subset parser, then the raw_csr reader on the
 * same text: the input is written as a .toml file beside three small CSR
 * arrays (c.indptr <i4, c.indices <i4, c.data <u2: 4 frames of 3 × 4), the
 * dataset is opened and every frame read densely and as sparse rows.
 * Malformed input must give a clean error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"
#include "io/formats/raw_csr/toml.h"

static char dir[64];

static void write_file(const char *name, const void *p, size_t n)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(p, 1, n, f);
        fclose(f);
    }
}

static void cleanup(void)
{
    const char *names[] = {"c.indptr", "c.indices", "c.data", "f.toml"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void setup(void)
{
    if (dir[0])
        return;
    atexit(cleanup);
    snprintf(dir, sizeof dir, "/tmp/tsr-fuzz-csr-%d", (int)getpid());
    mkdir(dir, 0700);
    const int32_t indptr[5] = {0, 2, 2, 5, 6};
    const int32_t indices[6] = {1, 11, 0, 4, 5, 7};
    const uint16_t data[6] = {3, 4, 5, 6, 7, 8};
    write_file("c.indptr", indptr, sizeof indptr);
    write_file("c.indices", indices, sizeof indices);
    write_file("c.data", data, sizeof data);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) != 0)
        return 0;
    tsr__toml_t t;
    char err[256];
    if (tsr__toml_parse(ctx, (const char *)data, size, &t, err, sizeof err) == 0) {
        for (int i = 0; i < t.n; i++) /* every entry is well formed */
            if (strlen(t.e[i].key) >= TSR__TOML_MAX_NAME ||
                (t.e[i].type == TSR__TOML_STRING && !t.e[i].str) || t.e[i].n > TSR__TOML_MAX_ARRAY)
                abort();
        tsr__toml_get(&t, "params", "filetype");
        tsr__toml_free(ctx, &t);
    } else if (!err[0]) {
        abort();
    }

    write_file("f.toml", data, size);
    char path[128];
    snprintf(path, sizeof path, "%s/f.toml", dir);
    tsr_dataset_t *ds;
    if (tsr_dataset_open(ctx, "raw_csr", path, NULL, &ds) == 0) {
        tsr__io_t io;
        tsr__io_init(&io, ctx, ds);
        tsr__sparse_t sp = {0};
        int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
        if (n > 64)
            n = 64;
        if (px <= (1 << 16)) {
            double *buf = malloc((size_t)px * sizeof(double));
            for (int64_t i = 0; i < n && buf; i++) {
                tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F64, buf, NULL, err, sizeof err);
                tsr__dataset_read_sparse(ds, &io, i, 1, 0, px, TSR_F32, &sp, err, sizeof err);
            }
            free(buf);
        }
        tsr__sparse_free(ctx, &sp);
        tsr__io_destroy(&io);
        tsr_dataset_close(ds);
    } else if (!tsr_ctx_errmsg(ctx)[0]) {
        abort();
    }
    tsr_ctx_free(ctx);
    return 0;
}

static uint8_t *dup_text(const char *s, size_t *len)
{
    *len = strlen(s);
    uint8_t *p = malloc(*len);
    memcpy(p, s, *len);
    return p;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    static const char *const texts[] = {
        "# LiberTEM raw_csr\n[params]\nfiletype = \"raw_csr\"\nnav_shape = [2, 2]\n"
        "sig_shape = [3, 4]\n\n[raw_csr]\nindptr_file = \"c.indptr\"\nindptr_dtype = \"<i4\"\n"
        "indices_file = \"c.indices\"\nindices_dtype = \"<i4\"\ndata_file = \"c.data\"\n"
        "data_dtype = \"<u2\"\n",
        "[params]\r\nfiletype = 'RAW_CSR'\r\nnav_shape = [\r\n  4, # frames\r\n]\r\n"
        "sig_shape = [12]\r\nsync_offset = -1\r\n[RAW_CSR]\r\nindptr_file = \"c.indptr\"\r\n"
        "indptr_dtype = \"|u1\"\r\nindices_file = \"c.indices\"\r\nindices_dtype = \">u2\"\r\n"
        "data_file = \"c.data\"\r\ndata_dtype = \"<f4\"\r\n",
        "title = \"x\\u00e9\\n\"\nratio = 1.5e3\nflag = true\nbig = 1_000_000\n"
        "[a.\"b c\"]\nlist = [1, 2.5, \"s\", false]\n'lit' = 'C:\\path'\n",
        "[params]\nfiletype = \"raw_csr\"\nnav_shape = [2, 2]\nsig_shape = [3, 4]\n"
        "[raw_csr]\nindptr_file = \"c.indptr\"\nindptr_dtype = \"<i8\"\n"
        "indices_file = \"c.indices\"\nindices_dtype = \"<i4\"\ndata_file = \"c.data\"\n"
        "data_dtype = \"<u2\"\n",
    };
    size_t n = sizeof texts / sizeof texts[0];
    if (max < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        seeds[i] = dup_text(texts[i], &lens[i]);
    return n;
}

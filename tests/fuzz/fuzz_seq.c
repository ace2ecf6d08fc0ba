/* fuzz_seq.c — the SEQ reader and its companion-file parsers.  The first
 * byte of the input chooses which file the rest becomes: 0 the .seq itself;
 * 1 the bad-pixel XML, 2 the DE .metadata, 3 the dark reference (MRC),
 * each beside a small valid sequence.  Malformed files must give a clean
 * error, and an opened dataset must read. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

enum { W = 6, H = 4, N = 3, FOOTER = 8, HDR = 8192 };

static void put32(uint8_t *b, size_t off, uint32_t v)
{
    b[off] = (uint8_t)v;
    b[off + 1] = (uint8_t)(v >> 8);
    b[off + 2] = (uint8_t)(v >> 16);
    b[off + 3] = (uint8_t)(v >> 24);
}

/* A version-5 sequence of N frames H × W uint16 with FOOTER-byte footers. */
static uint8_t *make_seq(size_t *len)
{
    size_t frame = W * H * 2, stride = frame + FOOTER, n = HDR + N * stride;
    uint8_t *b = calloc(1, n);
    put32(b, 0, 0xFEED);
    const char *name = "Norpix seq";
    for (size_t i = 0; name[i]; i++)
        b[4 + 2 * i] = (uint8_t)name[i];
    put32(b, 28, 5);
    put32(b, 32, 1024);
    put32(b, 548, W);
    put32(b, 552, H);
    put32(b, 556, 16);
    put32(b, 560, 12);
    put32(b, 564, (uint32_t)frame);
    put32(b, 568, 100);
    put32(b, 572, N);
    put32(b, 580, (uint32_t)stride);
    for (size_t i = HDR; i < n; i++)
        b[i] = (uint8_t)(i * 13);
    *len = n;
    return b;
}

static void write_file(const char *path, const uint8_t *d, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(d, 1, n, f);
        fclose(f);
    }
}

static const char *const suffixes[4] = {"", ".Config.Metadata.xml", ".metadata", ".dark.mrc"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int which = data[0] % 4;
    char seq[64], comp[96];
    snprintf(seq, sizeof seq, "/tmp/tsr-fuzz-seq-%d.seq", (int)getpid());
    snprintf(comp, sizeof comp, "%s%s", seq, suffixes[which]);
    if (which == 0) {
        write_file(seq, data + 1, size - 1);
    } else {
        size_t n;
        uint8_t *s = make_seq(&n);
        write_file(seq, s, n);
        free(s);
        write_file(comp, data + 1, size - 1);
        if (which == 1) { /* the XML is placed with the .metadata when there is one */
            uint8_t md[400] = {0};
            put32(md, 282 + 16, 2); /* offset x */
            put32(md, 282 + 20, 2); /* offset y */
            put32(md, 282 + 24, 1); /* binning */
            snprintf(comp, sizeof comp, "%s.metadata", seq);
            write_file(comp, md, sizeof md);
        } else if (which == 2) { /* the .metadata is read only beside an XML */
            const char *xml = "<BadPixels><BadPixelMap Rows=\"16\" Columns=\"16\">"
                              "<Defect Row=\"3\"/></BadPixelMap></BadPixels>";
            snprintf(comp, sizeof comp, "%s.Config.Metadata.xml", seq);
            write_file(comp, (const uint8_t *)xml, strlen(xml));
        }
    }
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, "seq", seq, NULL, &ds) == 0) {
            tsr__io_t io;
            tsr__io_init(&io, ctx, ds);
            int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
            if (n > 16)
                n = 16;
            if (px <= (1 << 16)) {
                float *buf = malloc((size_t)px * sizeof(float));
                char err[256];
                for (int64_t i = 0; i < n && buf; i++)
                    tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F32, buf, NULL, err, sizeof err);
                free(buf);
            }
            tsr__io_destroy(&io);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        }
        tsr_ctx_free(ctx);
    }
    for (int i = 0; i < 4; i++) {
        snprintf(comp, sizeof comp, "%s%s", seq, suffixes[i]);
        unlink(comp);
    }
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
    if (k < max) {
        uint8_t *s = make_seq(&n);
        seeds[k] = with_tag(0, s, n, &lens[k]);
        free(s);
        k++;
    }
    if (k < max) {
        const char *xml = "<?xml version=\"1.0\"?><BadPixels>"
                          "<BadPixelMap Rows=\"16\" Columns=\"16\">"
                          "<Defect Rows=\"3-4\"/><Defect Column='5'/>"
                          "<Defect Row=\"2\" Column=\"7\"/></BadPixelMap>"
                          "<BadPixelMap Binning=\"2\" Rows=\"8\" Columns=\"8\"/>"
                          "</BadPixels>";
        seeds[k] = with_tag(1, xml, strlen(xml), &lens[k]);
        k++;
    }
    if (k < max) {
        uint8_t md[400] = {0};
        put32(md, 282 + 24, 1);
        seeds[k] = with_tag(2, md, sizeof md, &lens[k]);
        k++;
    }
    if (k < max) {
        uint8_t mrc[1024 + W * H * 4] = {0};
        put32(mrc, 0, W);
        put32(mrc, 4, H);
        put32(mrc, 8, 1);
        put32(mrc, 12, 2);
        memcpy(mrc + 208, "MAP ", 4);
        mrc[212] = 0x44;
        mrc[213] = 0x44;
        seeds[k] = with_tag(3, mrc, sizeof mrc, &lens[k]);
        k++;
    }
    return k;
}

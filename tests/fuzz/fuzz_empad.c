/* fuzz_empad.c — EMPAD .xml files (and so the XML reader) through
 * auto-detection and the empad format, then reads: malformed files must
 * give a clean error.  The input is the .xml; beside it lie two valid .raw
 * files it may name, scan_x2_y2.raw (4 frames) and series_x3.raw (3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

static const char *const seed_xml[] = {
    "<?xml version=\"1.0\"?>\n<!-- v0.51 -->\n<root name=\"acquisition_1\">"
    "<timestamp timestamp=\"1.5\" isoformat=\"2019-06-06T13:30:00\"/>"
    "<software_version>0.51 211118</software_version><type>scan</type><pix_x>2</pix_x>"
    "<pix_y>2</pix_y><raw_file filename=\"/home/empad/scan_x2_y2.raw\"/>"
    "<exposure_time>1</exposure_time><iom_measurements>"
    "<optics.get_full_scan_field_of_view>[4.5e-06, 4.5e-06]</optics.get_full_scan_field_of_view>"
    "<calibrated_pixelsize>1.8e-10</calibrated_pixelsize></iom_measurements></root>",
    "<root name=\"acquisition_11\"><type>series</type><count>3</count>"
    "<raw_file filename='series_x3.raw'/><scan_parameters><series_count>3</series_count>"
    "</scan_parameters></root>",
    "<root name=\"v1.2.2 &amp; &#x41;&#66;\"><software_version><![CDATA[1.2.2]]></software_version>"
    "<raw_file filename=\"scan_x2_y2.raw\"/><scan_parameters mode=\"search\">"
    "<scan_resolution_y>1</scan_resolution_y><scan_resolution_x>4</scan_resolution_x>"
    "</scan_parameters><scan_parameters mode=\"acquire\"><scan_resolution_y>8</scan_resolution_y>"
    "<scan_resolution_x>8</scan_resolution_x></scan_parameters><iom_measurements>"
    "<full_scan_field_of_view><x>1e-6</x><y>2e-6</y></full_scan_field_of_view>"
    "</iom_measurements></root>",
};

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof seed_xml / sizeof seed_xml[0] && n < max; i++, n++) {
        lens[n] = strlen(seed_xml[i]);
        seeds[n] = malloc(lens[n]);
        memcpy(seeds[n], seed_xml[i], lens[n]);
    }
    return n;
}

static char dir[64];

static void path_in(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void cleanup(void)
{
    const char *names[] = {"a.xml", "scan_x2_y2.raw", "series_x3.raw"};
    char p[128];
    for (size_t i = 0; i < 3; i++) {
        path_in(p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

static void write_raw(const char *name, int frames)
{
    char p[128];
    path_in(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    if (!f)
        return;
    static float frame[130 * 128];
    for (int i = 0; i < frames; i++) {
        for (int j = 0; j < 130 * 128; j++)
            frame[j] = j < 128 * 128 ? (float)(i * 1000 + j % 977) : -1.0f;
        fwrite(frame, sizeof frame, 1, f);
    }
    fclose(f);
}

static void try_open(tsr_ctx_t *ctx, const char *format, const char *path)
{
    tsr_dataset_t *ds;
    ctx->errmsg[0] = 0;
    if (tsr_dataset_open(ctx, format, path, NULL, &ds) != 0) {
        if (!tsr_ctx_errmsg(ctx)[0])
            abort();
        return;
    }
    tsr_dataset_meta_json(ds);
    tsr__io_t io;
    tsr__io_init(&io, ctx, ds);
    int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
    float *buf = malloc((size_t)px * sizeof(float));
    char err[256];
    for (int64_t i = 0; i < n && buf; i++)
        tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F32, buf, NULL, err, sizeof err);
    free(buf);
    tsr__io_destroy(&io);
    tsr_dataset_close(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/tsr-fuzz-empad-%d", (int)getpid());
        mkdir(dir, 0700);
        write_raw("scan_x2_y2.raw", 4);
        write_raw("series_x3.raw", 3);
        atexit(cleanup);
    }
    char xml[128];
    path_in(xml, sizeof xml, "a.xml");
    FILE *f = fopen(xml, "wb");
    if (!f)
        return 0;
    fwrite(data, 1, size, f);
    fclose(f);
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        try_open(ctx, NULL, xml);
        try_open(ctx, "empad", xml);
        tsr_ctx_free(ctx);
    }
    return 0;
}

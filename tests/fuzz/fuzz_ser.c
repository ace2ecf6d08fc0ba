/* fuzz_ser.c — TIA .ser files (and .emi metadata) through auto-detection,
 * open and reads: malformed files must give a clean error.
 *
 * An input starting with 'E' is an .emi (the rest of it) beside a fixed,
 * valid <stem>_1.ser; any other input is a .ser.  Every frame opened is read
 * whole, in one multi-frame read, and in a pixel range that starts and ends
 * inside rows; the three must agree (the reader flips rows, so partial rows
 * are its own arithmetic). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "io/dataset.h"

/* ---- seed files -------------------------------------------------------- */

static void put16(uint8_t **p, unsigned v)
{
    (*p)[0] = (uint8_t)v;
    (*p)[1] = (uint8_t)(v >> 8);
    *p += 2;
}
static void put32(uint8_t **p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        (*p)[i] = (uint8_t)(v >> (8 * i));
    *p += 4;
}
static void put64(uint8_t **p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p, (uint32_t)(v >> 32));
}
static void putf64(uint8_t **p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    put64(p, u);
}

/* A .ser: `valid` of `total` elements, 2-D (ny × nx) or 1-D (nx), of DataType
 * `type` (element size es), with `gap` bytes after element i times i. */
static size_t build_ser(uint8_t *buf, unsigned version, int two_d, int total, int valid, int ndim,
                        const int *dims, int nx, int ny, int type, int es, int gap)
{
    uint8_t *p = buf;
    int wide = version >= 0x220;
    put16(&p, 0x4949);
    put16(&p, 0x0197);
    put16(&p, version);
    put32(&p, two_d ? 0x4122 : 0x4120);
    put32(&p, 0x4152);
    put32(&p, (uint32_t)total);
    put32(&p, (uint32_t)valid);
    uint8_t *oao = p;
    p += wide ? 8 : 4;
    put32(&p, (uint32_t)ndim);
    for (int d = 0; d < ndim; d++) {
        put32(&p, (uint32_t)dims[d]);
        putf64(&p, -1.0);
        putf64(&p, 0.5);
        put32(&p, 0);
        put32(&p, 8);
        memcpy(p, "Position", 8);
        p += 8;
        put32(&p, 6);
        memcpy(p, "meters", 6);
        p += 6;
    }
    uint64_t arr = (uint64_t)(p - buf);
    if (wide)
        put64(&oao, arr);
    else
        put32(&oao, (uint32_t)arr);
    uint8_t *offs = p;
    p += (size_t)total * 2 * (wide ? 8 : 4);
    for (int i = 0; i < valid; i++) {
        uint64_t at = (uint64_t)(p - buf);
        uint8_t *o = offs + (size_t)i * (wide ? 8 : 4);
        if (wide)
            put64(&o, at);
        else
            put32(&o, (uint32_t)at);
        for (int k = 0; k < (two_d ? 2 : 1); k++) {
            putf64(&p, 1e-9 * (k + 1));
            putf64(&p, 2e-10);
            put32(&p, (uint32_t)k);
        }
        put16(&p, (unsigned)type);
        put32(&p, (uint32_t)nx);
        if (two_d)
            put32(&p, (uint32_t)ny);
        size_t bytes = (size_t)nx * (size_t)(two_d ? ny : 1) * (size_t)es;
        for (size_t j = 0; j < bytes; j++)
            *p++ = (uint8_t)(j * 7 + (size_t)i * 13);
        put16(&p, 0x4152);
        put16(&p, 0);
        put32(&p, (uint32_t)i);
        memset(p, 0xEE, (size_t)(gap * i));
        p += gap * i;
    }
    return (size_t)(p - buf);
}

static const char emi_xml[] =
    "JK\x01\x02junk<ObjectInfo><Uuid>1</Uuid><ExperimentalConditions><MicroscopeConditions>"
    "<AcceleratingVoltage>300000</AcceleratingVoltage></MicroscopeConditions>"
    "</ExperimentalConditions><ExperimentalDescription><Root><Data><Label>Mode</Label>"
    "<Value>STEM nP Diffraction &amp; more</Value><Unit></Unit></Data><Data><Label>High "
    "tension</Label><Value>300</Value><Unit>kV</Unit></Data></Root></ExperimentalDescription>"
    "<TrueImageHeaderInfo>&lt;Root&gt;&lt;/Root&gt;</TrueImageHeaderInfo>"
    "<AcquireDate>Mon Feb 22 18:18:34 2016</AcquireDate><AcquireInfo><CameraNamePath>BM-Ceta"
    "</CameraNamePath><DwellTimePath>0.01</DwellTimePath></AcquireInfo></ObjectInfo>"
    "<ObjectInfo><Uuid>2</Uuid></ObjectInfo>tail";

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    size_t n = 0;
    if (max < 4)
        return 0;
    int d1[] = {4}, d2[] = {3, 2};
    seeds[n] = malloc(4096);
    lens[n] = build_ser(seeds[n], 0x210, 1, 4, 3, 1, d1, 5, 4, 2, 2, 0); /* u16 4x5, 3 of 4 */
    n++;
    seeds[n] = malloc(4096);
    lens[n] = build_ser(seeds[n], 0x220, 0, 6, 6, 2, d2, 8, 1, 6, 4, 0); /* i32 spectra 2x3 */
    n++;
    seeds[n] = malloc(4096);
    lens[n] = build_ser(seeds[n], 0x210, 1, 3, 3, 1, (int[]){3}, 3, 3, 7, 4, 5); /* uneven */
    n++;
    seeds[n] = malloc(sizeof emi_xml + 1);
    seeds[n][0] = 'E';
    memcpy(seeds[n] + 1, emi_xml, sizeof emi_xml - 1);
    lens[n] = sizeof emi_xml;
    n++;
    return n;
}

/* ---- the target -------------------------------------------------------- */

static char dir[64];

static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof p, "%s/x_1.ser", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/x.emi", dir);
    unlink(p);
    rmdir(dir);
}

static int write_file(const char *path, const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    fwrite(data, 1, size, f);
    fclose(f);
    return 0;
}

static void read_all(tsr_ctx_t *ctx, tsr_dataset_t *ds)
{
    tsr__io_t io;
    tsr__io_init(&io, ctx, ds);
    int64_t n = tsr_shape_size(&ds->nav), px = tsr_shape_size(&ds->sig);
    if (n > 16)
        n = 16;
    if (px > (1 << 14) || px < 1) {
        tsr__io_destroy(&io);
        return;
    }
    double *all = malloc((size_t)(n * px) * sizeof(double));
    double *one = malloc((size_t)px * sizeof(double));
    char err[256];
    if (all && one &&
        tsr__dataset_read(ds, &io, 0, n, 0, px, TSR_F64, all, NULL, err, sizeof err) == 0) {
        int64_t s0 = px / 3, sl = px / 2 > 0 ? px / 2 : 1;
        for (int64_t i = 0; i < n; i++) {
            if (tsr__dataset_read(ds, &io, i, 1, 0, px, TSR_F64, one, NULL, err, sizeof err))
                abort(); /* the same frame read before */
            if (memcmp(one, all + i * px, (size_t)px * sizeof(double)))
                abort();
            if (tsr__dataset_read(ds, &io, i, 1, s0, sl, TSR_F64, one, NULL, err, sizeof err))
                abort();
            if (memcmp(one, all + i * px + s0, (size_t)sl * sizeof(double)))
                abort();
        }
    }
    free(all);
    free(one);
    tsr__io_destroy(&io);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        snprintf(dir, sizeof dir, "/tmp/tsr-fuzz-ser-%d", (int)getpid());
        mkdir(dir, 0700);
        atexit(cleanup);
    }
    char ser[128], emi[128];
    snprintf(ser, sizeof ser, "%s/x_1.ser", dir);
    snprintf(emi, sizeof emi, "%s/x.emi", dir);
    const char *path = ser;
    if (size > 0 && data[0] == 'E') {
        static uint8_t good[4096];
        int d1[] = {4};
        size_t n = build_ser(good, 0x210, 1, 4, 3, 1, d1, 5, 4, 2, 2, 0);
        if (write_file(ser, good, n) || write_file(emi, data + 1, size - 1))
            return 0;
        path = emi;
    } else {
        unlink(emi);
        if (write_file(ser, data, size))
            return 0;
    }
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx) == 0) {
        tsr_dataset_t *ds;
        if (tsr_dataset_open(ctx, NULL, path, NULL, &ds) == 0) {
            tsr_dataset_meta_json(ds);
            read_all(ctx, ds);
            tsr_dataset_close(ds);
        } else if (!tsr_ctx_errmsg(ctx)[0]) {
            abort();
        }
        tsr_ctx_free(ctx);
    }
    return 0;
}

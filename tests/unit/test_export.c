/*
 * test_export.c — unit tests of the export layer (src/export/).
 *
 * Arrays are built by hand (a tsr_results_t cannot be made here; the
 * results round trip through the CLI is the integration suite's), written
 * with tsr_export_array() or the internal HDF5 writer, and read back with
 * an independent reader: the NPY bytes are compared with the format's
 * specification, PNG files are decoded with libpng, TIFF files with libtiff
 * and HDF5 files with libhdf5.  Colormap oracles are matplotlib's published
 * end colours (viridis #440154 / #fde725, magma #000004 / #fcfdbf), not
 * this code's tables.  Every test works in its own temporary directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "export/export.h"
#include "tessera.h"

#include <hdf5.h>
#include <png.h>
#include <tiffio.h>

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct fixture {
    tsr_ctx_t *ctx;
    char dir[64];
    char path[256];
} fixture_t;

static const uint8_t VIRIDIS_FIRST[3] = {68, 1, 84};
static const uint8_t VIRIDIS_LAST[3] = {253, 231, 37};
static const uint8_t MAGMA_FIRST[3] = {0, 0, 4};
static const uint8_t MAGMA_LAST[3] = {252, 253, 191};
static const uint8_t BLACK[3] = {0, 0, 0};

/* ---- fixture and helpers ------------------------------------------- */

static int setup(void **state)
{
    fixture_t *fx = calloc(1, sizeof *fx);

    assert_non_null(fx);
    assert_int_equal(tsr_ctx_new(&fx->ctx), 0);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/tsr-test-export-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    *state = fx;
    return 0;
}

/* Remove dir and everything below it (files and directories only). */
static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];

    if (d == NULL)
        return;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0)
            remove_tree(p);
    }
    closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    fixture_t *fx = *state;

    remove_tree(fx->dir);
    tsr_ctx_free(fx->ctx);
    free(fx);
    return 0;
}

/* fx->path = "<tmpdir>/<name>" */
static const char *at(fixture_t *fx, const char *name)
{
    snprintf(fx->path, sizeof fx->path, "%s/%s", fx->dir, name);
    return fx->path;
}

static bool exists(const char *path)
{
    return access(path, F_OK) == 0;
}

static bool tmp_exists(const char *path)
{
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    return exists(tmp);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf;
    long len;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    assert_true(len >= 0);
    rewind(f);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static tsr_array_t array(tsr_buf_kind_t kind, tsr_dtype_t dt, const void *data, int ndim, ...)
{
    tsr_array_t a;
    va_list ap;

    memset(&a, 0, sizeof a);
    a.udf = "test";
    a.name = "data";
    a.kind = kind;
    a.dtype = dt;
    a.data = data;
    a.shape.ndim = ndim;
    /* NAV test arrays have a scan of up to two dimensions, then extras */
    a.nav_ndim = kind == TSR_KIND_NAV ? (ndim < 2 ? ndim : 2) : 0;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++)
        a.shape.dims[i] = va_arg(ap, int64_t);
    va_end(ap);
    return a;
}

static bool has(const char *haystack, const char *needle)
{
    if (strstr(haystack, needle) == NULL) {
        print_error("'%s' does not contain '%s'\n", haystack, needle);
        return false;
    }
    return true;
}

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

/* ---- NPY ------------------------------------------------------------ */

/* Check an NPY file: magic, version, header text, padding, alignment, and
 * the data bytes. */
static void check_npy(const char *path, const char *dict, const void *data, size_t n_bytes)
{
    size_t n, hlen, dict_len = strlen(dict);
    uint8_t *b = slurp(path, &n);

    assert_true(n >= 10);
    assert_memory_equal(b, "\x93NUMPY\x01\x00", 8);
    hlen = (size_t)b[8] | (size_t)b[9] << 8;
    assert_int_equal((10 + hlen) % 64, 0);
    assert_int_equal(n, 10 + hlen + n_bytes);
    assert_true(hlen > dict_len);
    if (memcmp(b + 10, dict, dict_len) != 0) {
        print_error("header '%.*s'\nexpected '%s'\n", (int)dict_len, (const char *)b + 10, dict);
        fail();
    }
    for (size_t i = 10 + dict_len; i < 10 + hlen - 1; i++)
        assert_int_equal(b[i], ' ');
    assert_int_equal(b[10 + hlen - 1], '\n');
    if (n_bytes > 0)
        assert_memory_equal(b + 10 + hlen, data, n_bytes);
    free(b);
}

static void test_npy_f32(void **state)
{
    fixture_t *fx = *state;
    const float v[6] = {0.0f, 1.5f, -2.0f, 3.25f, 1e30f, -0.0f};
    tsr_array_t a = array(TSR_KIND_SIG, TSR_F32, v, 2, (int64_t)2, (int64_t)3);
    const char *p = at(fx, "a.npy");

    assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
    check_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", v, sizeof v);
    assert_false(tmp_exists(p));
}

static void test_npy_dtypes_and_shapes(void **state)
{
    fixture_t *fx = *state;
    static const struct {
        tsr_dtype_t dt;
        const char *descr;
    } cases[] = {
        {TSR_U8, "|u1"},  {TSR_U16, "<u2"}, {TSR_U32, "<u4"}, {TSR_U64, "<u8"},
        {TSR_I8, "|i1"},  {TSR_I16, "<i2"}, {TSR_I32, "<i4"}, {TSR_I64, "<i8"},
        {TSR_F32, "<f4"}, {TSR_F64, "<f8"}, {TSR_C64, "<c8"}, {TSR_BOOL, "|b1"},
    };
    uint8_t data[5 * 8];
    char dict[160];

    if (!host_little_endian())
        skip();
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i % 2); /* valid bools too */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t es = tsr_dtype_size(cases[c].dt);
        tsr_array_t a = array(TSR_KIND_NAV, cases[c].dt, data, 1, (int64_t)5);
        const char *p = at(fx, "t.npy");
        assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (5,), }",
                 cases[c].descr);
        check_npy(p, dict, data, 5 * es);
    }

    /* 0-d: '()' and one element. */
    {
        const double x = 42.0;
        tsr_array_t a = array(TSR_KIND_SINGLE, TSR_F64, &x, 0);
        const char *p = at(fx, "s.npy");
        assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
        check_npy(p, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }", &x, 8);
    }
    /* Size-1 dimensions are kept; 4-D. */
    {
        const int16_t x[6] = {1, -2, 3, -4, 5, -6};
        tsr_array_t a =
            array(TSR_KIND_SIG, TSR_I16, x, 4, (int64_t)2, (int64_t)1, (int64_t)3, (int64_t)1);
        const char *p = at(fx, "d.NPY"); /* extension case does not matter */
        assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
        check_npy(p, "{'descr': '<i2', 'fortran_order': False, 'shape': (2, 1, 3, 1), }", x,
                  sizeof x);
    }
    /* An empty array: shape with a 0, no data. */
    {
        tsr_array_t a = array(TSR_KIND_SINGLE, TSR_U16, NULL, 2, (int64_t)0, (int64_t)3);
        const char *p = at(fx, "e.npy");
        assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
        check_npy(p, "{'descr': '<u2', 'fortran_order': False, 'shape': (0, 3), }", NULL, 0);
    }
}

static void test_npy_replaces_old_file(void **state)
{
    fixture_t *fx = *state;
    const uint8_t v[3] = {7, 8, 9};
    tsr_array_t a = array(TSR_KIND_SIG, TSR_U8, v, 1, (int64_t)3);
    const char *p = at(fx, "old.npy");
    FILE *f = fopen(p, "wb");

    assert_non_null(f);
    fputs("an older, longer file that must be replaced entirely ......................", f);
    fclose(f);
    assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
    check_npy(p, "{'descr': '|u1', 'fortran_order': False, 'shape': (3,), }", v, 3);
}

/* ---- PNG ------------------------------------------------------------ */

typedef struct rgb_image {
    uint32_t width, height;
    uint8_t *px;
} rgb_image_t;

static rgb_image_t read_png(const char *path)
{
    png_image img;
    rgb_image_t out;

    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&img, path)) {
        print_error("libpng: %s\n", img.message);
        fail();
    }
    img.format = PNG_FORMAT_RGB;
    out.width = img.width;
    out.height = img.height;
    out.px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(out.px);
    if (!png_image_finish_read(&img, NULL, out.px, 0, NULL)) {
        print_error("libpng: %s\n", img.message);
        fail();
    }
    return out;
}

static void assert_px(const rgb_image_t *im, uint32_t r, uint32_t c, const uint8_t want[3])
{
    const uint8_t *p = im->px + ((size_t)r * im->width + c) * 3;
    if (memcmp(p, want, 3) != 0) {
        print_error("pixel (%u, %u) is (%u, %u, %u), expected (%u, %u, %u)\n", r, c, p[0], p[1],
                    p[2], want[0], want[1], want[2]);
        fail();
    }
}

static void test_png_viridis(void **state)
{
    fixture_t *fx = *state;
    double v[20] = {0};
    tsr_array_t a = array(TSR_KIND_SIG, TSR_F64, v, 2, (int64_t)4, (int64_t)5);
    const char *p = at(fx, "img.png");
    rgb_image_t im;

    for (int i = 0; i < 20; i++)
        v[i] = 100.0 - 1.5 * i; /* max at (0, 0), min at (3, 4) */
    v[7] = NAN;
    v[8] = INFINITY; /* not finite: black, and not the maximum */
    assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
    assert_false(tmp_exists(p));
    im = read_png(p);
    assert_int_equal(im.width, 5);
    assert_int_equal(im.height, 4);
    assert_px(&im, 0, 0, VIRIDIS_LAST);
    assert_px(&im, 3, 4, VIRIDIS_FIRST);
    assert_px(&im, 1, 2, BLACK);
    assert_px(&im, 1, 3, BLACK);
    /* A middle value is neither end colour. */
    assert_memory_not_equal(im.px + 9 * 3, VIRIDIS_FIRST, 3);
    assert_memory_not_equal(im.px + 9 * 3, VIRIDIS_LAST, 3);
    free(im.px);
}

static void test_png_valid_mask(void **state)
{
    fixture_t *fx = *state;
    /* NAV u16 3 x 4; positions 5 and 10 are invalid and hold extremes that
     * must not set the scale. */
    const uint16_t v[12] = {10, 11, 12, 13, 14, 60000, 16, 17, 18, 19, 0, 21};
    const uint8_t valid[12] = {1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 1};
    tsr_array_t a = array(TSR_KIND_NAV, TSR_U16, v, 2, (int64_t)3, (int64_t)4);
    const char *p = at(fx, "nav.png");
    rgb_image_t im;

    a.valid = valid;
    assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), 0);
    im = read_png(p);
    assert_int_equal(im.width, 4);
    assert_int_equal(im.height, 3);
    assert_px(&im, 0, 0, VIRIDIS_FIRST); /* 10 */
    assert_px(&im, 2, 3, VIRIDIS_LAST);  /* 21 */
    assert_px(&im, 1, 1, BLACK);
    assert_px(&im, 2, 2, BLACK);
    free(im.px);
}

static void test_png_colormaps_log_1d_complex(void **state)
{
    fixture_t *fx = *state;
    const tsr_export_opts_t magma = {"magma", false};
    const tsr_export_opts_t gray_log = {"gray", true};
    const tsr_export_opts_t gray = {"gray", false};
    /* 1-D: a 1 x 3 image.  With log, e^1.2 - 1 sits at 1.2 / 2 = 0.6 of the
     * way from 0 to e^2 - 1: gray level floor(0.6 * 256) = 153. */
    const float v[3] = {0.0f, (float)(exp(1.2) - 1.0), (float)(exp(2.0) - 1.0)};
    tsr_array_t a = array(TSR_KIND_NAV, TSR_F32, v, 1, (int64_t)3);
    /* complex: modulus 5 and 0. */
    const float z[4] = {3.0f, 4.0f, 0.0f, 0.0f};
    tsr_array_t c = array(TSR_KIND_SINGLE, TSR_C64, z, 2, (int64_t)2, (int64_t)1);
    rgb_image_t im;
    const uint8_t mid[3] = {153, 153, 153};

    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "m.png"), &magma), 0);
    im = read_png(fx->path);
    assert_int_equal(im.width, 3);
    assert_int_equal(im.height, 1);
    assert_px(&im, 0, 0, MAGMA_FIRST);
    assert_px(&im, 0, 2, MAGMA_LAST);
    free(im.px);

    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "g.png"), &gray_log), 0);
    im = read_png(fx->path);
    assert_px(&im, 0, 1, mid);
    free(im.px);

    /* Linear: (e^1.2 - 1) / (e^2 - 1) = 0.3631 of the way: level 92. */
    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "g.png"), &gray), 0);
    im = read_png(fx->path);
    {
        const uint8_t lin[3] = {92, 92, 92};
        assert_px(&im, 0, 1, lin);
    }
    free(im.px);

    /* Complex (2, 1): one column of two rows. */
    assert_int_equal(tsr_export_array(fx->ctx, &c, at(fx, "c.png"), NULL), 0);
    im = read_png(fx->path);
    assert_int_equal(im.width, 1);
    assert_int_equal(im.height, 2);
    assert_px(&im, 0, 0, VIRIDIS_LAST);
    assert_px(&im, 1, 0, VIRIDIS_FIRST);
    free(im.px);

    /* Constant: every pixel the first colour; all NaN: black. */
    {
        const float k[2] = {3.0f, 3.0f}, n[2] = {NAN, NAN};
        tsr_array_t ka = array(TSR_KIND_SIG, TSR_F32, k, 2, (int64_t)1, (int64_t)2);
        tsr_array_t na = array(TSR_KIND_SIG, TSR_F32, n, 2, (int64_t)1, (int64_t)2);
        assert_int_equal(tsr_export_array(fx->ctx, &ka, at(fx, "k.png"), NULL), 0);
        im = read_png(fx->path);
        assert_px(&im, 0, 1, VIRIDIS_FIRST);
        free(im.px);
        assert_int_equal(tsr_export_array(fx->ctx, &na, at(fx, "n.png"), NULL), 0);
        im = read_png(fx->path);
        assert_px(&im, 0, 0, BLACK);
        free(im.px);
    }
}

static void test_png_refuses(void **state)
{
    fixture_t *fx = *state;
    float v[24] = {0};
    tsr_array_t a =
        array(TSR_KIND_SIG, TSR_F32, v, 4, (int64_t)2, (int64_t)1, (int64_t)3, (int64_t)4);
    const tsr_export_opts_t bad = {"jet", false};
    tsr_array_t ok = array(TSR_KIND_SIG, TSR_F32, v, 2, (int64_t)2, (int64_t)3);
    const char *p = at(fx, "bad.png");

    assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), TSR_EINVAL);
    assert_true(has(tsr_ctx_errmsg(fx->ctx), "2, 1, 3, 4"));
    assert_true(has(tsr_ctx_errmsg(fx->ctx), ".npy"));
    assert_true(has(tsr_ctx_errmsg(fx->ctx), ".h5"));
    assert_false(exists(p));
    assert_false(tmp_exists(p));

    assert_int_equal(tsr_export_array(fx->ctx, &ok, p, &bad), TSR_EINVAL);
    assert_true(has(tsr_ctx_errmsg(fx->ctx), "jet"));
    assert_false(exists(p));
}

/* ---- TIFF ----------------------------------------------------------- */

/* Read page `page` of a float32 TIFF into out (h x w). */
static void read_tiff_page(const char *path, int page, uint32_t w, uint32_t h, float *out,
                           int *n_pages)
{
    TIFF *t = TIFFOpen(path, "r");
    uint32_t tw = 0, th = 0;
    uint16_t bps = 0, fmt = 0, spp = 0;
    int pages = 0;

    assert_non_null(t);
    do {
        pages++;
    } while (TIFFReadDirectory(t));
    *n_pages = pages;
    assert_int_equal(TIFFSetDirectory(t, (tdir_t)page), 1);
    assert_int_equal(TIFFGetField(t, TIFFTAG_IMAGEWIDTH, &tw), 1);
    assert_int_equal(TIFFGetField(t, TIFFTAG_IMAGELENGTH, &th), 1);
    assert_int_equal(TIFFGetField(t, TIFFTAG_BITSPERSAMPLE, &bps), 1);
    assert_int_equal(TIFFGetField(t, TIFFTAG_SAMPLEFORMAT, &fmt), 1);
    TIFFGetFieldDefaulted(t, TIFFTAG_SAMPLESPERPIXEL, &spp);
    assert_int_equal(tw, w);
    assert_int_equal(th, h);
    assert_int_equal(bps, 32);
    assert_int_equal(fmt, SAMPLEFORMAT_IEEEFP);
    assert_int_equal(spp, 1);
    for (uint32_t r = 0; r < h; r++)
        assert_int_equal(TIFFReadScanline(t, out + (size_t)r * w, r, 0), 1);
    TIFFClose(t);
}

static void assert_float_eq(float got, float want)
{
    if (!(got == want || (isnan(got) && isnan(want)))) {
        print_error("got %.9g, expected %.9g\n", (double)got, (double)want);
        fail();
    }
}

static void test_tiff_2d(void **state)
{
    fixture_t *fx = *state;
    const uint16_t v[12] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 65535, 11};
    tsr_array_t a = array(TSR_KIND_SIG, TSR_U16, v, 2, (int64_t)3, (int64_t)4);
    float got[12];
    int pages;

    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "a.tif"), NULL), 0);
    assert_false(tmp_exists(fx->path));
    read_tiff_page(fx->path, 0, 4, 3, got, &pages);
    assert_int_equal(pages, 1);
    for (int i = 0; i < 12; i++)
        assert_float_eq(got[i], (float)v[i]);
}

static void test_tiff_pages(void **state)
{
    fixture_t *fx = *state;
    float v[12] = {0}, got[6];
    int pages;

    for (int i = 0; i < 12; i++)
        v[i] = (float)i * 0.5f - 1.0f;

    /* SIG buffer with extra_shape (2,): shape (2, 1, 3, 2) squeezes to
     * (2, 3, 2); page k is v[..., k]. */
    {
        tsr_array_t a =
            array(TSR_KIND_SIG, TSR_F32, v, 4, (int64_t)2, (int64_t)1, (int64_t)3, (int64_t)2);
        assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "sig.tiff"), NULL), 0);
        for (int k = 0; k < 2; k++) {
            read_tiff_page(fx->path, k, 3, 2, got, &pages);
            assert_int_equal(pages, 2);
            for (int r = 0; r < 2; r++)
                for (int c = 0; c < 3; c++)
                    assert_float_eq(got[r * 3 + c], v[(r * 3 + c) * 2 + k]);
        }
    }
    /* SINGLE (2, 2, 3): a stack, page k is v[k]. */
    {
        tsr_array_t a = array(TSR_KIND_SINGLE, TSR_F32, v, 3, (int64_t)2, (int64_t)2, (int64_t)3);
        assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "stack.tif"), NULL), 0);
        for (int k = 0; k < 2; k++) {
            read_tiff_page(fx->path, k, 3, 2, got, &pages);
            assert_int_equal(pages, 2);
            for (int i = 0; i < 6; i++)
                assert_float_eq(got[i], v[k * 6 + i]);
        }
    }
    /* Size-1 dimensions anywhere are dropped: (2, 1, 2, 3) is a stack. */
    {
        tsr_array_t a =
            array(TSR_KIND_SINGLE, TSR_F32, v, 4, (int64_t)2, (int64_t)1, (int64_t)2, (int64_t)3);
        assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "stack4.tif"), NULL), 0);
        read_tiff_page(fx->path, 1, 3, 2, got, &pages);
        assert_int_equal(pages, 2);
        for (int i = 0; i < 6; i++)
            assert_float_eq(got[i], v[6 + i]);
    }
    /* Four dimensions longer than 1: refused. */
    {
        static float big[16];
        tsr_array_t a =
            array(TSR_KIND_SINGLE, TSR_F32, big, 4, (int64_t)2, (int64_t)2, (int64_t)2, (int64_t)2);
        assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "four.tif"), NULL), TSR_EINVAL);
        assert_true(has(tsr_ctx_errmsg(fx->ctx), ".npy"));
        assert_false(exists(fx->path));
    }
}

static void test_tiff_nav_invalid_and_complex(void **state)
{
    fixture_t *fx = *state;
    const int32_t v[4] = {-5, 0, 7, 8};
    const uint8_t valid[4] = {1, 0, 1, 1};
    tsr_array_t a = array(TSR_KIND_NAV, TSR_I32, v, 2, (int64_t)2, (int64_t)2);
    const float z[4] = {3.0f, -4.0f, 1.0f, 0.0f};
    tsr_array_t c = array(TSR_KIND_SIG, TSR_C64, z, 1, (int64_t)2);
    float got[4];
    int pages;

    a.valid = valid;
    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "nav.tif"), NULL), 0);
    read_tiff_page(fx->path, 0, 2, 2, got, &pages);
    assert_float_eq(got[0], -5.0f);
    assert_float_eq(got[1], NAN);
    assert_float_eq(got[2], 7.0f);
    assert_float_eq(got[3], 8.0f);

    assert_int_equal(tsr_export_array(fx->ctx, &c, at(fx, "z.tif"), NULL), 0);
    read_tiff_page(fx->path, 0, 2, 1, got, &pages);
    assert_float_eq(got[0], 5.0f);
    assert_float_eq(got[1], 1.0f);
}

/* ---- errors --------------------------------------------------------- */

static void test_unknown_extension(void **state)
{
    fixture_t *fx = *state;
    const float v[2] = {1, 2};
    tsr_array_t a = array(TSR_KIND_SIG, TSR_F32, v, 1, (int64_t)2);

    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "out.xyz"), NULL), TSR_EINVAL);
    assert_true(has(tsr_ctx_errmsg(fx->ctx), ".xyz"));
    assert_true(has(tsr_ctx_errmsg(fx->ctx), ".npy"));
    assert_true(has(tsr_ctx_errmsg(fx->ctx), ".png"));
    assert_false(exists(fx->path));
    assert_false(tmp_exists(fx->path));

    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "noext"), NULL), TSR_EINVAL);
    assert_true(has(tsr_ctx_errmsg(fx->ctx), "no extension"));
    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "sub.npy/"), NULL), TSR_EINVAL);
    assert_int_equal(tsr_export_array(fx->ctx, NULL, at(fx, "x.npy"), NULL), TSR_EINVAL);
    assert_int_equal(tsr_export_array(NULL, &a, at(fx, "x.npy"), NULL), TSR_EINVAL);

    a.dtype = (tsr_dtype_t)99;
    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "x.npy"), NULL), TSR_EINVAL);
    a.dtype = TSR_F32;
    a.shape.dims[0] = -1;
    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "x.npy"), NULL), TSR_EINVAL);
    a.shape.dims[0] = INT64_MAX;
    assert_int_equal(tsr_export_array(fx->ctx, &a, at(fx, "x.npy"), NULL), TSR_EOVERFLOW);
}

static void test_write_error_is_eio(void **state)
{
    fixture_t *fx = *state;
    const float v[4] = {1, 2, 3, 4};
    tsr_array_t a = array(TSR_KIND_SIG, TSR_F32, v, 2, (int64_t)2, (int64_t)2);
    const char *names[] = {"missing/x.npy", "missing/x.png", "missing/x.tif", "missing/x.h5"};

    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *p = at(fx, names[i]);
        assert_int_equal(tsr_export_array(fx->ctx, &a, p, NULL), TSR_EIO);
        assert_true(has(tsr_ctx_errmsg(fx->ctx), p));
        assert_true(has(tsr_ctx_errmsg(fx->ctx), strerror(ENOENT)));
        assert_false(exists(p));
    }
}

/* ---- HDF5 ----------------------------------------------------------- */

static void read_dataset(hid_t file, const char *name, hid_t mem_type, void *out, int ndim,
                         const hsize_t *dims)
{
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    hid_t s;
    hsize_t got[8];

    if (d < 0) {
        print_error("no dataset %s\n", name);
        fail();
    }
    s = H5Dget_space(d);
    assert_int_equal(H5Sget_simple_extent_ndims(s), ndim);
    H5Sget_simple_extent_dims(s, got, NULL);
    for (int i = 0; i < ndim; i++)
        assert_int_equal(got[i], dims[i]);
    assert_true(H5Dread(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out) >= 0);
    H5Sclose(s);
    H5Dclose(d);
}

static void test_h5_roundtrip(void **state)
{
    fixture_t *fx = *state;
    /* NAV (2, 3, 2): 2-D nav with extra_shape (2,), valid mask (2, 3). */
    float nav[12] = {0};
    const uint8_t valid[6] = {1, 1, 0, 1, 0, 1};
    const float cz[4] = {1.0f, -1.0f, 2.5f, 0.5f};
    const uint8_t flags[3] = {1, 0, 1};
    const uint16_t scalar = 4242;
    const int64_t other[2] = {-7, 1LL << 40};
    tsr_array_t arrs[5];
    hid_t f;

    for (int i = 0; i < 12; i++)
        nav[i] = (float)i * 1.25f;
    arrs[0] = array(TSR_KIND_NAV, TSR_F32, nav, 3, (int64_t)2, (int64_t)3, (int64_t)2);
    arrs[0].udf = "masks";
    arrs[0].name = "intensity";
    arrs[0].valid = valid;
    arrs[1] = array(TSR_KIND_SIG, TSR_C64, cz, 2, (int64_t)1, (int64_t)2);
    arrs[1].udf = "masks";
    arrs[1].name = "z";
    arrs[2] = array(TSR_KIND_SINGLE, TSR_BOOL, flags, 1, (int64_t)3);
    arrs[2].udf = "pick";
    arrs[2].udf_index = 1;
    arrs[2].name = "flags";
    arrs[3] = array(TSR_KIND_SINGLE, TSR_U16, &scalar, 0);
    arrs[3].udf = "pick";
    arrs[3].udf_index = 1;
    arrs[3].name = "count";
    /* A second UDF named "masks" at run position 2. */
    arrs[4] = array(TSR_KIND_SINGLE, TSR_I64, other, 1, (int64_t)2);
    arrs[4].udf = "masks";
    arrs[4].udf_index = 2;
    arrs[4].name = "intensity";

    /* Overwrite: an older file must be replaced. */
    {
        FILE *old = fopen(at(fx, "r.h5"), "wb");
        assert_non_null(old);
        fputs("not an HDF5 file", old);
        fclose(old);
    }
    assert_int_equal(tsr__h5_write_arrays(fx->ctx, arrs, 5, at(fx, "r.h5")), 0);
    assert_false(tmp_exists(fx->path));

    f = H5Fopen(fx->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    {
        float got[12];
        uint8_t gv[6];
        const hsize_t d3[3] = {2, 3, 2}, d2[2] = {2, 3};
        read_dataset(f, "/masks/intensity", H5T_NATIVE_FLOAT, got, 3, d3);
        assert_memory_equal(got, nav, sizeof nav);
        read_dataset(f, "/masks/intensity_valid", H5T_NATIVE_UINT8, gv, 2, d2);
        assert_memory_equal(gv, valid, sizeof valid);
    }
    {
        /* complex64 as h5py writes it: compound {r, i} of float32. */
        hid_t d = H5Dopen2(f, "/masks/z", H5P_DEFAULT);
        hid_t t = H5Dget_type(d);
        hid_t mt = H5Tcreate(H5T_COMPOUND, 8);
        float got[4];
        char *m0, *m1;
        assert_int_equal(H5Tget_class(t), H5T_COMPOUND);
        assert_int_equal(H5Tget_nmembers(t), 2);
        m0 = H5Tget_member_name(t, 0);
        m1 = H5Tget_member_name(t, 1);
        assert_string_equal(m0, "r");
        assert_string_equal(m1, "i");
        H5free_memory(m0);
        H5free_memory(m1);
        H5Tinsert(mt, "r", 0, H5T_NATIVE_FLOAT);
        H5Tinsert(mt, "i", 4, H5T_NATIVE_FLOAT);
        assert_true(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
        assert_memory_equal(got, cz, sizeof cz);
        H5Tclose(mt);
        H5Tclose(t);
        H5Dclose(d);
    }
    {
        /* bool as h5py's enum of int8. */
        hid_t d = H5Dopen2(f, "/pick/flags", H5P_DEFAULT);
        hid_t t = H5Dget_type(d);
        int8_t got[3];
        assert_int_equal(H5Tget_class(t), H5T_ENUM);
        assert_true(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, got) >= 0);
        assert_memory_equal(got, flags, 3);
        H5Tclose(t);
        H5Dclose(d);
    }
    {
        uint16_t got = 0;
        read_dataset(f, "/pick/count", H5T_NATIVE_UINT16, &got, 0, NULL);
        assert_int_equal(got, 4242);
        assert_true(H5Lexists(f, "/pick/flags_valid", H5P_DEFAULT) == 0);
    }
    {
        int64_t got[2];
        const hsize_t d1[1] = {2};
        read_dataset(f, "/masks_2/intensity", H5T_NATIVE_INT64, got, 1, d1);
        assert_memory_equal(got, other, sizeof other);
    }
    H5Fclose(f);

    /* Through the public entry point: one array, /<udf>/<buffer>. */
    assert_int_equal(tsr_export_array(fx->ctx, &arrs[2], at(fx, "one.hdf5"), NULL), 0);
    f = H5Fopen(fx->path, H5F_ACC_RDONLY, H5P_DEFAULT);
    assert_true(f >= 0);
    assert_true(H5Lexists(f, "/pick", H5P_DEFAULT) > 0);
    assert_true(H5Lexists(f, "/pick/flags", H5P_DEFAULT) > 0);
    H5Fclose(f);
}

/* ---- helpers -------------------------------------------------------- */

static void test_labels_and_pages(void **state)
{
    tsr_array_t arrs[3];
    char buf[64];
    tsr__export_pages_t pg;
    fixture_t *fx = *state;

    arrs[0] = array(TSR_KIND_NAV, TSR_F32, NULL, 0);
    arrs[0].udf = "a/b c";
    arrs[0].udf_index = 0;
    arrs[1] = arrs[0];
    arrs[1].udf_index = 3;
    arrs[2] = arrs[0];
    arrs[2].udf = "..x";
    assert_string_equal(tsr__export_udf_label(arrs, 3, 0, buf, sizeof buf), "a_b_c");
    assert_string_equal(tsr__export_udf_label(arrs, 3, 1, buf, sizeof buf), "a_b_c_3");
    assert_string_equal(tsr__export_udf_label(arrs, 3, 2, buf, sizeof buf), "_.x");
    assert_string_equal(tsr__export_name(NULL, buf, sizeof buf), "data");

    /* NAV (4, 5, 3): pages along the trailing extra dimension. */
    arrs[0] = array(TSR_KIND_NAV, TSR_F32, NULL, 3, (int64_t)4, (int64_t)5, (int64_t)3);
    assert_int_equal(tsr__export_pages(fx->ctx, &arrs[0], "p", 3, &pg), 0);
    assert_int_equal(pg.pages, 3);
    assert_int_equal(pg.height, 4);
    assert_int_equal(pg.width, 5);
    assert_int_equal(pg.page_step, 1);
    assert_int_equal(pg.row_step, 15);
    assert_int_equal(pg.col_step, 3);
    arrs[0].valid = (const uint8_t *)"";
    assert_int_equal(tsr__export_valid_stride(&arrs[0]), 3);
    assert_int_equal(tsr__export_pages(fx->ctx, &arrs[0], "p", 2, &pg), TSR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_npy_f32, setup, teardown),
        cmocka_unit_test_setup_teardown(test_npy_dtypes_and_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_npy_replaces_old_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_viridis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_valid_mask, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_colormaps_log_1d_complex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_png_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiff_2d, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiff_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tiff_nav_invalid_and_complex, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unknown_extension, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_error_is_eio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_h5_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_labels_and_pages, setup, teardown),
    };
    return cmocka_run_group_tests_name("export", tests, NULL, NULL);
}

/* fuzz_maskgen.c — mask generator specs (disk, ring, point, rect, polygon)
 * from arbitrary text, rendered plain and anti-aliased, unshifted and with
 * a shift taken from the input: a spec is accepted with every value in
 * [0, 1] and a sum within the frame's area, or rejected with a message. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fuzz.h"
#include "udf/builtin/maskgen.h"

#define H 13
#define W 11

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    const tsr_shape_t sig = {.ndim = 2, .dims = {H, W}};
    float m[H * W];
    char err[256];
    for (int aa = 0; aa < 2; aa++) {
        int rc = tsr__mask_generate_aa(text, &sig, aa, m, err, sizeof err);
        if (rc < 0 && !err[0])
            abort();
        if (rc < 0)
            continue;
        for (int i = 0; i < H * W; i++)
            if (!(m[i] >= 0.0f && m[i] <= 1.0f))
                abort();
        tsr__mask_shape_t s;
        if (tsr__mask_parse(text, &sig, aa, &s, err, sizeof err) != 0)
            abort();
        /* a shift from the first bytes: [-20, 20) pixels */
        const double dy = size > 0 ? data[0] / 6.4 - 20 : 0.5,
                     dx = size > 1 ? data[1] / 6.4 - 20 : 0;
        int64_t y0, y1, x0, x1;
        tsr__mask_bbox(&s, dy, dx, H, W, &y0, &y1, &x0, &x1);
        if (y0 < 0 || y1 > H || x0 < 0 || x1 > W)
            abort();
        for (int64_t y = y0; y < y1 && x0 < x1; y++) {
            tsr__mask_render(&s, dy, dx, y, x0, x1, m);
            for (int64_t x = 0; x < x1 - x0; x++)
                if (!(m[x] >= 0.0f && m[x] <= 1.0f))
                    abort();
        }
    }
    free(text);
    return 0;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    static const char *t[] = {
        "disk:5,6,3.5",
        "ring:5,6,1.5,4",
        "point:3.5,2.5",
        "rect:-2,3,4,20",
        "polygon:1,1,9,2,5,11,0.5,7",
        "polygon:0,0,10,0,10,12,5,3,0,12",
        "disk:1e300,2,3",
        "polygon:1,1,1,1,1,1",
    };
    size_t n = 0;
    for (; n < max && n < sizeof t / sizeof t[0]; n++) {
        lens[n] = strlen(t[n]);
        seeds[n] = malloc(lens[n]);
        memcpy(seeds[n], t[n], lens[n]);
    }
    return n;
}

/* fuzz_npy_header.c — the .npy header parser on arbitrary bytes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/formats/npy/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tsr__npy_header_t h;
    char err[256];
    if (tsr__npy_parse_header(data, size, &h, err, sizeof err) == 0) {
        /* a parsed header must be self-consistent */
        if (h.shape.ndim < 0 || h.shape.ndim > TSR_MAX_DIMS || h.data_offset < 10 ||
            (size_t)h.data_offset > size)
            abort();
    } else if (!err[0]) {
        abort(); /* every error has a message */
    }
    return 0;
}

static uint8_t *seed(const char *dict, size_t *len)
{
    size_t hl = strlen(dict);
    uint8_t *b = malloc(10 + hl);
    memcpy(b, "\x93NUMPY\x01\x00", 8);
    b[8] = (uint8_t)(hl & 0xff);
    b[9] = (uint8_t)(hl >> 8);
    memcpy(b + 10, dict, hl);
    *len = 10 + hl;
    return b;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    static const char *dicts[] = {
        "{'descr': '<u2', 'fortran_order': False, 'shape': (4, 5, 8, 8), }          \n",
        "{'descr': '>f4', 'fortran_order': True, 'shape': (3,), }\n",
        "{\"descr\": \"|b1\", \"fortran_order\": False, \"shape\": ()}\n",
    };
    size_t n = 0;
    for (; n < max && n < sizeof dicts / sizeof dicts[0]; n++)
        seeds[n] = seed(dicts[n], &lens[n]);
    return n;
}

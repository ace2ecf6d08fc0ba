/*
 * npy.h — the NPY header parser shared by the npy reader and by code that
 * loads small arrays (mask stacks, ROI files, corrections).
 */
#ifndef TSR_NPY_H
#define TSR_NPY_H

#include "core/core.h"

typedef struct tsr__npy_header {
    tsr_dtype_t dtype;
    bool big_endian;
    bool fortran_order;
    tsr_shape_t shape; /* ndim may be 0 */
    int64_t data_offset;
} tsr__npy_header_t;

/* Parse the header from the first n bytes of a file (n >= the header
 * length, or the whole file if shorter).  TSR_ECORRUPT with a message in err
 * for a malformed header, TSR_EUNSUPPORTED for an unknown dtype. */
int tsr__npy_parse_header(const uint8_t *buf, size_t n, tsr__npy_header_t *h, char *err,
                          size_t errlen);

/* Load a whole .npy file (C order; Fortran order is an error) converted to
 * dtype `want` in host byte order.  *data is allocated with tsr__malloc and
 * owned by the caller.  Errors: TSR_EIO, TSR_ECORRUPT, TSR_EUNSUPPORTED with
 * the message on ctx naming the path. */
int tsr__npy_load(tsr_ctx_t *ctx, const char *path, tsr_dtype_t want, tsr_shape_t *shape,
                  void **data);

#endif

/*
 * mat.h — reading one 2-D numeric variable from a MATLAB Level 5 MAT-file
 * (v5/v6/v7: uncompressed or zlib-compressed variables; not v7.3, which is
 * HDF5), e.g. a detector's gain map.
 */
#ifndef TSR_IO_FORMATS_MAT_H
#define TSR_IO_FORMATS_MAT_H

#include "core/core.h"

/* Load the real, numeric, 2-D variable `name` of the MAT-file at path as
 * float32 in C order: *out receives rows × cols values allocated with
 * tsr__malloc (the caller frees them).  Errors (TSR_EIO, TSR_ECORRUPT,
 * TSR_EUNSUPPORTED, TSR_ENOTFOUND, TSR_ENOMEM) name the file and what is
 * wrong in err.  Decompressed variables are limited to 256 MiB. */
int tsr__mat_load_f32(tsr_ctx_t *ctx, const char *path, const char *name, int64_t *rows,
                      int64_t *cols, float **out, char *err, size_t errlen);

/* The same from a buffer holding the whole file (for fuzzing); `path` only
 * names it in messages. */
int tsr__mat_parse_f32(tsr_ctx_t *ctx, const uint8_t *buf, size_t n, const char *path,
                       const char *name, int64_t *rows, int64_t *cols, float **out, char *err,
                       size_t errlen);

#endif

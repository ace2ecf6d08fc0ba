/*
 * mrc.h — the MRC header parser, shared by the MRC reader and by readers
 * whose companion files are MRC images (the SEQ reader's dark and gain
 * references).
 */
#ifndef TSR_IO_FORMATS_MRC_H
#define TSR_IO_FORMATS_MRC_H

#include "core/core.h"

#define TSR__MRC_HEADER_BYTES 1024

/* The fields of the 1024-byte MRC2014 header that we use, in host order. */
typedef struct tsr__mrc_header {
    int64_t nx, ny, nz; /* columns, rows, sections */
    int32_t mode;
    tsr_dtype_t dtype; /* the stored element type of the mode */
    bool big_endian;   /* from the machine stamp (or the mode, if that is odd) */
    int32_t mx, my, mz;
    float cella[3]; /* cell size x, y, z in Å */
    float origin[3];
    float dmin, dmax, dmean;
    int32_t ispg, nsymbt, nversion, nlabl;
    char exttyp[5];      /* printable, NUL-terminated ("" if none) */
    bool imod;           /* IMOD stamp present */
    uint32_t imod_flags; /* bit 0: bytes are signed */
    int64_t data_offset; /* 1024 + nsymbt */
    int64_t frame_bytes; /* one section: nx * ny * element size */
} tsr__mrc_header_t;

/* Parse the header at the start of buf (n >= 1024 bytes) of a file of
 * file_size bytes and check it against the size.  Returns 0, TSR_ECORRUPT
 * (malformed, truncated) or TSR_EUNSUPPORTED (a mode we cannot read), with
 * a message naming the field, the expected and the found value (without the
 * file name: the caller adds it). */
int tsr__mrc_parse_header(const uint8_t *buf, size_t n, int64_t file_size, tsr__mrc_header_t *h,
                          char *err, size_t errlen);

/* Load a single-section MRC image (e.g. a dark frame) as float32: *out
 * receives ny × nx values allocated with tsr__malloc (the caller frees
 * them), *ny and *nx its size.  Errors name the file. */
int tsr__mrc_load_f32(tsr_ctx_t *ctx, const char *path, int64_t *ny, int64_t *nx, float **out,
                      char *err, size_t errlen);

#endif

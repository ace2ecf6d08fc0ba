/*
 * zarr.h — the parts of the Zarr (v2) reader that stand alone: the array
 * metadata (.zarray) parser and the chunk decoders.  zarr.c builds the
 * reader on them; tests/fuzz/fuzz_zarr.c drives the parser and decoders on
 * malformed input.
 *
 * Zarr v2 stores an n-d array as a directory: `.zarray` (JSON: shape,
 * chunks, dtype, order, compressor, filters, fill_value,
 * dimension_separator) and one file per chunk, named by its grid
 * coordinates joined with the separator ("0.3.1" or "0/3/1").  Every chunk
 * file holds a whole chunk (edge chunks are padded), compressed by the
 * compressor; a missing chunk file reads as fill_value.
 */
#ifndef TSR_IO_FORMATS_ZARR_H
#define TSR_IO_FORMATS_ZARR_H

#include "core/core.h"

/* The largest chunk (decompressed) the reader accepts. */
#define TSR__ZARR_MAX_CHUNK ((size_t)1 << 30)

typedef enum {
    TSR__ZARR_RAW = 0, /* compressor null */
    TSR__ZARR_BLOSC,
    TSR__ZARR_ZSTD,
    TSR__ZARR_LZ4, /* numcodecs LZ4: 4-byte LE size + LZ4 block */
    TSR__ZARR_GZIP,
    TSR__ZARR_ZLIB
} tsr__zarr_codec_t;

typedef struct tsr__zarr_meta {
    int ndim;
    int64_t shape[TSR_MAX_DIMS];
    int64_t chunks[TSR_MAX_DIMS];
    tsr_dtype_t dtype;
    bool big_endian;
    char dtype_str[16]; /* as written, e.g. "<u2" */
    tsr__zarr_codec_t codec;
    char codec_desc[48]; /* e.g. "blosc (zstd, shuffle 1)", for metadata */
    char sep;            /* dimension separator: '.' or '/' */
    /* fill_value: one element in the stored byte order (zeros if null) */
    _Alignas(8) unsigned char fill[8];
    bool fill_null;
    size_t chunk_elems, chunk_bytes;
} tsr__zarr_meta_t;

/* Parse the text of a .zarray (n bytes, not necessarily NUL-terminated).
 * Returns 0, or TSR_ECORRUPT / TSR_EUNSUPPORTED with a message naming the
 * field and the expected and found values (without the file name). */
int tsr__zarr_parse_meta(const char *text, size_t n, tsr__zarr_meta_t *m, char *err, size_t errlen);

/* Decode one chunk file's bytes (src, n) into dst, which holds exactly
 * m->chunk_bytes bytes: every codec must produce exactly that many.
 * Thread-safe.  TSR_ECORRUPT with a message for corrupt data and for output
 * of another size (including decompression bombs, which stop at the end of
 * dst). */
int tsr__zarr_decode(const tsr__zarr_meta_t *m, const void *src, size_t n, void *dst, char *err,
                     size_t errlen);

#endif

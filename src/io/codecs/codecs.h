/*
 * codecs.h — decoders of compressed chunks, shared by the chunked readers
 * (HDF5 now, Zarr later): one file per codec in src/io/codecs/.
 *
 * Every decoder turns a whole stored chunk src[0, n) into dst, whose
 * capacity cap is the number of bytes the chunk must decode to (the reader
 * knows it from the chunk shape).  Stream headers and frames are untrusted:
 * output that would exceed cap — a lying header, a decompression bomb — or
 * that stops short of it is TSR_ECORRUPT, never a write past dst; *out
 * receives the bytes produced.  Messages go into err and do not name the
 * file (the caller adds the file and the chunk).  Decoders are
 * thread-safe (they touch only their arguments) and allocate nothing of
 * their own (libzstd's one-shot call makes a context per call, so zstd
 * inside bitshuffle pays it per block).
 */
#ifndef TSR_IO_CODECS_H
#define TSR_IO_CODECS_H

#include "core/core.h"

/* zlib stream (HDF5 deflate filter 1, Zarr "zlib"); gzip streams too. */
int tsr__inflate(const void *src, size_t n, void *dst, size_t cap, size_t *out, char *err,
                 size_t errlen);

/* One or more zstd frames (HDF5 filter 32015, Zarr "zstd"). */
int tsr__zstd_decode(const void *src, size_t n, void *dst, size_t cap, size_t *out, char *err,
                     size_t errlen);

/* The HDF5 LZ4 filter's framing (32004): 8-byte big-endian original size,
 * 4-byte big-endian block size, then per block a 4-byte big-endian stored
 * size and an LZ4 block (stored raw when that size equals the block's). */
int tsr__lz4_h5_decode(const void *src, size_t n, void *dst, size_t cap, size_t *out, char *err,
                       size_t errlen);
/* One raw LZ4 block of exactly cap bytes of output. */
int tsr__lz4_block_decode(const void *src, size_t n, void *dst, size_t cap, char *err,
                          size_t errlen);

/* ---- bitshuffle (bitshuffle.c) ---------------------------------------- */

/* Inner codec of a bitshuffle stream. */
typedef enum tsr__bshuf_codec {
    TSR_BSHUF_NONE = 0, /* plain blocked bitshuffle, no header */
    TSR_BSHUF_LZ4 = 2,  /* HDF5 filter 32008 with cd_values[4] = 2 (DECTRIS "bslz4") */
    TSR_BSHUF_ZSTD = 3  /* cd_values[4] = 3 */
} tsr__bshuf_codec_t;

/* A bitshuffle chunk of elements of es bytes.  Compressed: 8-byte
 * big-endian total size, 4-byte big-endian block size (bytes), then per
 * block of block-size bytes (the last one: what remains, rounded down to 8
 * elements) a 4-byte big-endian compressed size and the compressed
 * bit-transposed block; the last (elements % 8) elements are stored as
 * they are.  Plain (TSR_BSHUF_NONE): the blocks back to back, of
 * block_elems elements (0 = the library's default for es).  tmp is scratch
 * of cap bytes. */
int tsr__bshuf_decode(const void *src, size_t n, void *dst, size_t cap, size_t es,
                      tsr__bshuf_codec_t codec, size_t block_elems, void *tmp, size_t *out,
                      char *err, size_t errlen);

/* Undo the bit transpose of one block: n elements (a multiple of 8) of es
 * bytes from in to out (distinct buffers).  Dispatches to the fastest
 * kernel of this CPU. */
void tsr__bitunshuffle(const void *in, void *out, size_t n, size_t es);

/* The kernels, for tests and benchmarks. */
typedef enum tsr__simd {
    TSR_SIMD_SCALAR = 0,
    TSR_SIMD_SSE2 = 1,
    TSR_SIMD_AVX2 = 2,
    TSR_SIMD_BEST = 3
} tsr__simd_t;
/* Whether this CPU and build have kernel k. */
bool tsr__simd_available(tsr__simd_t k);
void tsr__bitunshuffle_with(tsr__simd_t k, const void *in, void *out, size_t n, size_t es);
/* The reverse transform (for tests and generators): n a multiple of 8. */
void tsr__bitshuffle_ref(const void *in, void *out, size_t n, size_t es);

/* ---- byte shuffle (shuffle.c) ----------------------------------------- */

/* Undo HDF5's shuffle filter (2) / Blosc's byte shuffle over n bytes of
 * es-byte elements: out[i*es + j] = in[j*(n/es) + i]; the n % es trailing
 * bytes are copied as they are. */
void tsr__unshuffle(const void *in, void *out, size_t n, size_t es);

/* ---- checksums (fletcher32.c) ----------------------------------------- */

/* HDF5's Fletcher-32 of n bytes (filter 3). */
uint32_t tsr__fletcher32(const void *p, size_t n);
/* Check the checksum HDF5's filter appends to a chunk of n bytes (the
 * last 4); *payload = n - 4 on success. */
int tsr__fletcher32_check(const void *p, size_t n, size_t *payload, char *err, size_t errlen);

#endif

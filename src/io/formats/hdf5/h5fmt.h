/*
 * h5fmt.h — the HDF5 reader's internal state, shared by its files:
 *
 *   hdf5.c    probe, open (picking the dataset, DECTRIS master files,
 *             Velox frame order), metadata, close
 *   index.c   the chunk index of a dataset: where every chunk lies
 *   chunks.c  the read path: chunks fetched with the engine's I/O backend
 *             and decoded by the worker that needs them
 *
 * A dataset is one or more *parts*, each one HDF5 dataset with the same
 * shape but for its first axis, concatenated along it (a DECTRIS master
 * file links one data file per part; everything else has one part).  A
 * part is a grid of chunks: a chunked dataset's own chunks, or for a
 * contiguous dataset that the shared strided reader cannot serve (frames
 * last) and for a compact one, a single chunk of the whole array.
 *
 * Axes.  The stored axes of a part (HDF5's order) are seen in *logical*
 * order — the navigation axes, then the signal axes — through perm:
 * logical axis i is stored axis perm[i].  perm is the identity except for
 * Velox image stacks, stored (y, x, frame) and read as (frame, y, x).
 */
#ifndef TSR_HDF5_FMT_H
#define TSR_HDF5_FMT_H

#include "io/dataset.h"

#define H5R_MAXD 8         /* dimensions of a dataset we read */
#define H5R_MAXFILT 8      /* filters in a pipeline */
#define H5R_ADDR_NONE (-1) /* a chunk never written: reads as the fill value */
#define H5R_ADDR_MEM (-2)  /* the part's data are in memory (compact layout) */

/* HDF5 filter ids we decode. */
#define H5R_F_DEFLATE 1
#define H5R_F_SHUFFLE 2
#define H5R_F_FLETCHER32 3
#define H5R_F_LZ4 32004
#define H5R_F_BSHUF 32008
#define H5R_F_ZSTD 32015

typedef struct h5r_chunk {
    int64_t addr;  /* absolute file offset, or H5R_ADDR_NONE / H5R_ADDR_MEM */
    uint64_t size; /* stored bytes */
    uint32_t mask; /* filters skipped for this chunk (bit i: filter i) */
} h5r_chunk_t;

typedef struct h5r_filter {
    int id;
    unsigned cd[8]; /* client data (cd_values) */
    size_t n_cd;
} h5r_filter_t;

typedef struct h5r_part {
    int file;                /* index into ds->files */
    char *name;              /* "<file>:<dataset path>", for messages */
    int64_t dims[H5R_MAXD];  /* stored order */
    int64_t cdims[H5R_MAXD]; /* chunk shape, stored order */
    int64_t grid[H5R_MAXD];  /* chunks per axis, stored order */
    int64_t first, count;    /* images [first, first+count) of the dataset */
    int64_t n_chunks;
    const char *index;   /* how the chunk table was read, for the metadata */
    h5r_chunk_t *chunks; /* grid in C order of the stored axes */
    h5r_filter_t filt[H5R_MAXFILT];
    int n_filt;
    void *mem;      /* H5R_ADDR_MEM: the whole array */
    int64_t offset; /* contiguous layout: file offset of the array, or H5R_ADDR_NONE */
    bool contiguous;
} h5r_part_t;

typedef struct h5r_state {
    int ndim, nnav;     /* axes; navigation axes (the first nnav logical) */
    int perm[H5R_MAXD]; /* logical axis -> stored axis */
    bool identity;
    tsr_dtype_t dtype;
    size_t es;              /* bytes per element */
    bool swap;              /* stored big-endian */
    unsigned char fill[16]; /* the fill value, stored byte order */
    size_t chunk_bytes;     /* bytes of one decoded chunk (same for every part) */
    uint64_t max_stored;    /* largest stored chunk */
    size_t cache_bytes;     /* per worker, for decoded chunks */
    h5r_part_t *parts;
    int n_parts;
} h5r_state_t;

/* index.c: fill part->chunks from the dataset dset (an open hid_t, in file f whose
 * chunk addresses are relative to base).  Between tsr__h5_enter/leave. */
int tsr__h5r_index(tsr__open_args_t *a, h5r_part_t *part, int64_t dset, int64_t base,
                   const tsr__file_t *f, size_t chunk_bytes);

/* index.c, without libhdf5: the chunk table of part (p->chunks holds
 * n_chunks entries) from the index structures of the dataset whose object
 * header is at oh, in file f whose addresses are relative to base, with
 * O-byte offsets and S-byte lengths; maxdims as HDF5 gives them.  False if
 * the index is not one it reads or is malformed (then the entries are
 * undefined).  Exposed for the fuzz target. */
bool tsr__h5r_parse_index(const tsr__file_t *f, int64_t base, int O, int S, const uint64_t *maxdims,
                          h5r_part_t *p, uint64_t oh, uint64_t chunk_bytes);

/* chunks.c: the reader's read callback and its per-worker state. */
int tsr__h5r_read(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                  int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen);

/* Decode one stored chunk (src, n bytes) of part through its filter
 * pipeline (skipping those in mask) into dst (chunk_bytes); a and b are
 * scratch of chunk_bytes each.  Exposed for the fuzz target. */
int tsr__h5r_decode(const h5r_state_t *st, const h5r_part_t *part, uint32_t mask, void *src,
                    size_t n, void *dst, void *a, void *b, char *err, size_t errlen);

#endif

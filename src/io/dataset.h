/*
 * dataset.h — the internal side of datasets and readers.
 *
 * A reader (one per format, src/io/formats/<fmt>/) parses headers and
 * describes where each frame's bytes are: a list of segments, each a run of
 * frames at a fixed stride in one file, plus the stored pixel type.  The
 * shared strided-frame reader in dataset.c turns a tile request (frames ×
 * sig pixel range, in a wanted dtype) into preads or mmap copies and pixel
 * conversion.  Readers whose pixels need more than a type conversion
 * (packed bits, quad layouts, compressed chunks) provide their own read.
 *
 * Frame numbering: a *frame* is a flat nav position of the dataset; an
 * *image* is a frame as stored in the file(s).  image = frame + sync_offset;
 * frames whose image lies outside [0, image_count) read as zeros.  This is
 * handled here, identically for every format.
 */
#ifndef TSR_IO_DATASET_H
#define TSR_IO_DATASET_H

#include "core/core.h"
#include "platform/os.h"

#define TSR_READER_ABI_VERSION 1

/* Reader capabilities. */
#define TSR_CAP_RANDOM_ACCESS 0x1u
#define TSR_CAP_MMAP 0x2u
#define TSR_CAP_UNTRUSTED 0x4u

typedef struct tsr__segment {
    int file;       /* index into ds->files */
    int64_t first;  /* first image of the segment */
    int64_t count;  /* images in the segment */
    int64_t offset; /* byte offset of the first image's first pixel */
    int64_t stride; /* bytes from one image to the next */
} tsr__segment_t;

/* Per-worker I/O state, owned by one thread (src/io/backend.c). */
typedef struct tsr__io {
    tsr_ctx_t *ctx;
    void *scratch; /* conversion scratch */
    size_t cap;
    int backend;  /* resolved: PREAD, MMAP, DIRECT or URING */
    void *bounce; /* aligned buffer for O_DIRECT and read-ahead */
    size_t bounce_cap;
    void *aio; /* io_uring state, or NULL */
    /* a format's own per-worker state (decompression scratch, decoded
     * chunks), made by its read callback on first use; fmt_scratch_size
     * is what it holds, and tsr__io_destroy calls fmt_scratch_free */
    void *fmt_scratch;
    size_t fmt_scratch_size;
    void (*fmt_scratch_free)(struct tsr__io *io);
    /* mmap: the range of file lent_file's mapping read since the last drop;
     * dropped from the process as reading moves on, so that its RSS stays
     * bounded whatever the file size (tsr__io_note_mapped) */
    const void *lent;
    size_t lent_n;
    int lent_file;
    struct {
        bool active;
        int file;
        int64_t off; /* requested range */
        size_t n;
        size_t skip; /* bytes of alignment before off in buf */
        void *buf;   /* where the read lands (inside bounce) */
    } ahead;
} tsr__io_t;

/* Sparse frames as compressed sparse rows (the engine's side of
 * tsr_sparse_rows_t): a per-worker buffer that tsr__dataset_read_sparse
 * fills and reuses.  Row r holds the values [indptr[r], indptr[r+1]) at
 * pixels indices[] relative to the requested sig0. */
typedef struct tsr__sparse {
    int64_t rows, nnz;
    tsr_dtype_t dtype; /* of values */
    int64_t *indptr;   /* rows + 1 */
    int64_t *indices;  /* nnz */
    void *values;      /* nnz elements of dtype, host byte order */
    size_t rows_cap, nnz_cap, values_cap;
} tsr__sparse_t;

/* What a reader's open receives and fills in. */
typedef struct tsr__open_args {
    tsr_ctx_t *ctx;
    const char *path;
    const tsr_params_t *params; /* never NULL */
    tsr_dataset_t *ds;          /* zeroed fields to fill (see struct tsr_dataset) */
    char *err;
    size_t errlen;
} tsr__open_args_t;

typedef struct tsr__reader_def {
    int abi_version;
    const char *name;
    const char *description;
    const char *const *extensions; /* lower case, without '.', NULL-terminated */
    unsigned caps;
    const tsr_param_def_t *params;
    size_t n_params;
    /* Score 0 (not mine) .. 100 (certain) from the path and first bytes. */
    int (*probe)(const char *path, const uint8_t *head, size_t n);
    /* Parse headers; fill ds: nav, sig, dtype, big_endian, image_count, and
     * either files+segments (shared strided reader) or a read callback;
     * optionally meta_json, base_depth/base_rows and state. */
    int (*open)(tsr__open_args_t *a);
    /* Optional: read images [img0, img0+n) (all inside the file), pixels
     * [sig0, sig0+siglen) of each, converted to dt into out.  Serves the
     * datasets for which open added no segments (a format may describe
     * some datasets as segments and read others itself). */
    int (*read)(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen);
    void (*close)(tsr_dataset_t *ds);
    /* Optional, for formats that store sparse frames: append images [img0,
     * img0+n) (all inside the file) to sp as rows holding their stored
     * values at pixels [sig0, sig0+siglen) (indices relative to sig0),
     * converted to dt (sp->dtype), with tsr__sparse_reserve.  A format with
     * read_sparse still provides read (dense tiles, for the UDFs that need
     * them). */
    int (*read_sparse)(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n,
                       int64_t sig0, int64_t siglen, tsr__sparse_t *sp, char *err, size_t errlen);
} tsr__reader_def_t;

struct tsr_dataset {
    tsr_ctx_t *ctx;
    const tsr__reader_def_t *fmt;
    char *path;
    tsr_params_t *params; /* as given: with fmt->name and path, the descriptor */
    tsr_shape_t nav, sig;
    tsr_dtype_t dtype;
    bool big_endian;
    int64_t image_count;
    int64_t sync_offset;
    /* shared strided reader */
    tsr__file_t *files;
    char **file_paths;
    void **maps; /* per file, NULL until mapped */
    int *dfds;   /* per file, O_DIRECT descriptor: -2 not tried, -1 unsupported */
    size_t *dalign;
    int n_files;
    tsr__segment_t *segs;
    int n_segs;
    /* tiling constraints of the format: tiles hold a multiple of base_depth
     * frames and of base_rows rows of the first sig dimension (0 = any) */
    int64_t base_depth, base_rows;
    /* sparse formats (fmt->read_sparse): the number of stored values of all
     * images, to size sparse tiles (0 = unknown) */
    int64_t nnz;
    /* optional: read images with this instead of fmt->read or the segments;
     * set by a reader's open when its files differ in layout (dm: frames
     * stored contiguously or gathered; mib: RAW or not; hdf5: chunked or
     * contiguous) */
    int (*read)(const tsr_dataset_t *ds, tsr__io_t *io, int64_t img0, int64_t n, int64_t sig0,
                int64_t siglen, tsr_dtype_t dt, void *out, char *err, size_t errlen);
    void *state; /* reader's own */
    /* Corrections found beside the data (tsr_dataset_corrections): arrays
     * allocated with tsr__malloc by the reader, freed at close. */
    tsr_corrections_t corr;
    char *meta_json;
    tsr__mutex_t map_lock;
};

/* Registry (src/io/registry.c). */
size_t tsr__reader_count(void);
const tsr__reader_def_t *tsr__reader_at(size_t i);
const tsr__reader_def_t *tsr__reader_find(const char *name);

/* Read frames [frame0, frame0+n) (dataset numbering, sync_offset applied),
 * pixels [sig0, sig0+siglen), into out as dt.  If direct is non-NULL the
 * reader may instead point *direct at the data in place (a mapping) when
 * no conversion is needed; otherwise *direct = out.  Thread-safe: each
 * thread passes its own io. */
int tsr__dataset_read(const tsr_dataset_t *ds, tsr__io_t *io, int64_t frame0, int64_t n,
                      int64_t sig0, int64_t siglen, tsr_dtype_t dt, void *out, const void **direct,
                      char *err, size_t errlen);

/* Sparse reads (src/io/sparse.c).  read_sparse is the sparse counterpart
 * of tsr__dataset_read: sp is emptied, then receives n rows for frames
 * [frame0, frame0+n) (sync_offset applied; frames outside the stored images
 * are empty rows), values as dt.  Only for datasets whose format has
 * read_sparse.  Thread-safe: each thread passes its own io and sp. */
int tsr__dataset_read_sparse(const tsr_dataset_t *ds, tsr__io_t *io, int64_t frame0, int64_t n,
                             int64_t sig0, int64_t siglen, tsr_dtype_t dt, tsr__sparse_t *sp,
                             char *err, size_t errlen);
/* Make room for `rows` more rows and `nnz` more values in sp; TSR_ENOMEM or
 * TSR_EOVERFLOW. */
int tsr__sparse_reserve(tsr_ctx_t *ctx, tsr__sparse_t *sp, int64_t rows, int64_t nnz);
/* Append k empty rows (room must be reserved). */
void tsr__sparse_empty_rows(tsr__sparse_t *sp, int64_t k);
void tsr__sparse_free(tsr_ctx_t *ctx, tsr__sparse_t *sp);

/* I/O backends (src/io/backend.c).  io_init resolves TSR_IO_AUTO for the
 * dataset and falls back where a backend is unavailable. */
void tsr__io_init(tsr__io_t *io, tsr_ctx_t *ctx, const tsr_dataset_t *ds);
/* The same for a run that reads most of the dataset (TSR_IO_AUTO may then
 * map the file) or a few frames (most false: as tsr__io_init). */
void tsr__io_init_for(tsr__io_t *io, tsr_ctx_t *ctx, const tsr_dataset_t *ds, bool most);
void tsr__io_destroy(tsr__io_t *io);
/* mmap: note that [p, p+n) of file `file`'s mapping is being read (copied, or lent to
 * a UDF); what this worker read before it, once a few MiB, is dropped from
 * the process (its pages stay in the page cache).  release drops all. */
void tsr__io_note_mapped(tsr__io_t *io, int file, const void *p, size_t n);
void tsr__io_release(tsr__io_t *io);
/* Ensure io->scratch holds n bytes. */
int tsr__io_reserve(tsr__io_t *io, size_t n);
/* Copy bytes [off, off+n) of file `file` into dst with the io's backend. */
int tsr__io_fetch(const tsr_dataset_t *ds, tsr__io_t *io, int file, int64_t off, size_t n,
                  void *dst, char *err, size_t errlen);
/* The mapping of bytes [off, off+n), or *out = NULL if unmappable. */
int tsr__io_map(const tsr_dataset_t *ds, int file, int64_t off, size_t n, const unsigned char **out,
                char *err, size_t errlen);
/* Start reading [off, off+n) ahead (io_uring backend; a no-op otherwise):
 * a following tsr__io_fetch of exactly that range takes it. */
void tsr__io_read_ahead(const tsr_dataset_t *ds, tsr__io_t *io, int file, int64_t off, size_t n);
/* Read ahead frames [frame0, frame0+n) × pixels [sig0, sig0+siglen) when
 * they are one contiguous byte range of one file (else nothing). */
void tsr__dataset_read_ahead(const tsr_dataset_t *ds, tsr__io_t *io, int64_t frame0, int64_t n,
                             int64_t sig0, int64_t siglen);

/* Helpers for readers. */
/* Parse nav_shape / sig_shape / sync_offset params and check them against
 * the image count and the stored shape (nav_default, sig_default);
 * fills ds->nav, ds->sig, ds->sync_offset. */
int tsr__dataset_shape_params(tsr__open_args_t *a, const tsr_shape_t *nav_default,
                              const tsr_shape_t *sig_default);
/* Add a file to ds (opened read-only); returns its index or a code. */
int tsr__dataset_add_file(tsr__open_args_t *a, const char *path);
/* Add a segment. */
int tsr__dataset_add_segment(tsr__open_args_t *a, int file, int64_t first, int64_t count,
                             int64_t offset, int64_t stride);

/* Read a small text file (a header, sidecar or metadata file) whole into a
 * NUL-terminated buffer allocated with tsr__malloc: *out, *len bytes.  A
 * file of more than max bytes is refused (TSR_EUNSUPPORTED, naming `what`)
 * unless flags has TSR__TEXT_TRUNCATE (then its first max bytes are read);
 * TSR__TEXT_NUL_SPACE turns NUL bytes into spaces, so that C string
 * functions see the whole text.  len may be NULL. */
#define TSR__TEXT_TRUNCATE 0x1u
#define TSR__TEXT_NUL_SPACE 0x2u
int tsr__read_text(tsr_ctx_t *ctx, const char *path, size_t max, unsigned flags, const char *what,
                   char **out, size_t *len, char *err, size_t errlen);

/* Take a jansson object (a json_t *, passed as void * to keep jansson out
 * of this header) as the dataset's metadata; NULL means out of memory. */
int tsr__dataset_set_meta(tsr__open_args_t *a, void *json_object);

#endif

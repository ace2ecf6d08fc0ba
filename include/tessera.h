/*
 * tessera.h — the public C API of Tessera, the contract.
 *
 * Tessera runs user-defined functions (UDFs) over tiles of frames of large
 * n-dimensional detector datasets (4D-STEM first of all) and merges their
 * partial results, MapReduce style.  A program:
 *
 *     tsr_ctx_t *ctx;      tsr_ctx_new(&ctx);                   engine context
 *     tsr_dataset_t *ds;   tsr_dataset_open(ctx, "auto", path, NULL, &ds);
 *     tsr_udf_t *udf;      tsr_udf_new(ctx, "sum", NULL, &udf);
 *     tsr_run_t *run;      tsr_run_start(ctx, ds, &udf, 1, NULL, &run);
 *     tsr_run_wait(run);   tsr_run_results(run, &res);  ...   read results
 *     tsr_run_free(run); tsr_udf_free(udf); tsr_dataset_close(ds); tsr_ctx_free(ctx);
 *
 * Conventions that hold for every declaration below:
 *  - Every fallible function returns int: 0 on success or a negative TSR_E*
 *    code.  Results come back through out-parameters, which are left untouched
 *    on failure.  The detail text of the last error is kept on the object that
 *    failed: tsr_ctx_errmsg() for calls that take a context and create an
 *    object, tsr_run_errmsg() for a run.
 *  - Whoever creates an object frees it; destructors accept NULL.  Pointer
 *    arguments are borrowed for the length of the call unless the doc says so.
 *  - Nothing is thread-safe unless its doc says so.  Distinct contexts are
 *    independent and may be used from different threads.
 *  - Arrays are in numpy/C order: nav dimensions first, then sig (y, x).
 *
 * Only <stddef.h>, <stdint.h> and <stdbool.h> are included, so the header is
 * plain C11 for any binding generator.
 */
#ifndef TESSERA_H
#define TESSERA_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(TSR_BUILDING_DLL)
#define TSR_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define TSR_API __attribute__((visibility("default")))
#else
#define TSR_API
#endif

/* =========================================================================
 * Version
 * ========================================================================= */

#define TSR_VERSION_MAJOR 0
#define TSR_VERSION_MINOR 1
#define TSR_VERSION_PATCH 0
#define TSR_VERSION_NUMBER (TSR_VERSION_MAJOR * 10000 + TSR_VERSION_MINOR * 100 + TSR_VERSION_PATCH)

/* The library's version as MAJOR*10000 + MINOR*100 + PATCH, and as "M.m.p".
 * Thread-safe. */
TSR_API unsigned tsr_version_number(void);
TSR_API const char *tsr_version_string(void);

/* =========================================================================
 * Errors
 *
 * One table generates the enum, tsr_err_name() and tsr_strerror().  Values
 * never change once released; new codes are appended.
 * ========================================================================= */

#define TSR_ERRNO_MAP(XX)                               \
    XX(EINVAL, -1, "invalid argument")                  \
    XX(ENOMEM, -2, "out of memory")                     \
    XX(EIO, -3, "input/output error")                   \
    XX(ECORRUPT, -4, "malformed or truncated input")    \
    XX(ENOTFOUND, -5, "not found")                      \
    XX(EUNSUPPORTED, -6, "not supported")               \
    XX(ECANCELED, -7, "canceled")                       \
    XX(ERANGE, -8, "value out of range")                \
    XX(ESTATE, -9, "operation not valid in this state") \
    XX(EOVERFLOW, -10, "size overflow")                 \
    XX(EUDF, -11, "a user-defined function failed")     \
    XX(EAGAIN, -12, "not ready yet")

typedef enum {
    TSR_OK = 0,
#define TSR__XX(name, val, msg) TSR_##name = val,
    TSR_ERRNO_MAP(TSR__XX)
#undef TSR__XX
        TSR_ERRNO_MIN = -12 /* the most negative code; not an error itself */
} tsr_errno_t;

/* "TSR_EINVAL" etc. for a code; "TSR_OK" for 0; "TSR_E?" for unknown codes.
 * Returns a static string.  Thread-safe. */
TSR_API const char *tsr_err_name(int code);
/* A short English description of a code; a static string.  Thread-safe. */
TSR_API const char *tsr_strerror(int code);

/* =========================================================================
 * Element types
 *
 * Values are stable.  Data given to or returned by the engine are in host
 * byte order; datasets may declare either byte order on input.
 * ========================================================================= */

typedef enum {
    TSR_U8 = 0,
    TSR_U16 = 1,
    TSR_U32 = 2,
    TSR_U64 = 3,
    TSR_I8 = 4,
    TSR_I16 = 5,
    TSR_I32 = 6,
    TSR_I64 = 7,
    TSR_F32 = 8,
    TSR_F64 = 9,
    TSR_C64 = 10,  /* complex64: two float32, real then imaginary */
    TSR_BOOL = 11, /* one byte, 0 or 1 */
    TSR_DTYPE_COUNT = 12,
    /* Only in tsr_udf_init_t.input_dtype: "give me the dataset's own type". */
    TSR_DTYPE_NATIVE = -1
} tsr_dtype_t;

/* Size in bytes of one element; 0 for an invalid type.  Thread-safe. */
TSR_API size_t tsr_dtype_size(tsr_dtype_t dt);
/* numpy's name of the type ("uint16", "float32", "complex64", "bool");
 * "invalid" for an invalid type.  Static string.  Thread-safe. */
TSR_API const char *tsr_dtype_name(tsr_dtype_t dt);
/* Parse a numpy-style type: a name ("uint16", "float32", "u2", "f4") or a
 * typestring with byte order ("<u2", ">f4", "|u1", "=i4").  *big_endian
 * (may be NULL) is set to true for '>' on types wider than one byte and
 * false otherwise, as numpy does.  Returns
 * TSR_EINVAL for an unknown type.  Thread-safe. */
TSR_API int tsr_dtype_parse(const char *s, tsr_dtype_t *dt, bool *big_endian);

/* =========================================================================
 * Shapes
 * ========================================================================= */

#define TSR_MAX_DIMS 8

/* A plain value: ndim dimensions, dims[i] > 0 for i < ndim. */
typedef struct tsr_shape {
    int ndim;
    int64_t dims[TSR_MAX_DIMS];
} tsr_shape_t;

/* Product of the dimensions (1 for ndim == 0); -1 if it overflows int64
 * or a dimension is negative.  Thread-safe. */
TSR_API int64_t tsr_shape_size(const tsr_shape_t *s);

/* =========================================================================
 * Context
 * ========================================================================= */

typedef struct tsr_ctx tsr_ctx_t;

/* Allocator hooks.  Every allocation of the engine goes through them, so an
 * embedder can account memory and tests can make the Nth allocation fail.
 * malloc/realloc return NULL on failure; free accepts NULL.  The hooks are
 * called from worker threads and must be thread-safe. */
typedef struct tsr_allocator {
    void *(*malloc)(void *opaque, size_t size);
    void *(*realloc)(void *opaque, void *ptr, size_t size);
    void (*free)(void *opaque, void *ptr);
    void *opaque;
} tsr_allocator_t;

/* Create a context with the default options and the C library's allocator.
 * Returns TSR_ENOMEM.  Free with tsr_ctx_free(). */
TSR_API int tsr_ctx_new(tsr_ctx_t **out);
/* The same with custom allocator hooks (copied; NULL = C library). */
TSR_API int tsr_ctx_new_with_allocator(const tsr_allocator_t *alloc, tsr_ctx_t **out);
/* Free a context.  Every object made from it must be freed first. */
TSR_API void tsr_ctx_free(tsr_ctx_t *ctx);

/* The detail message of the last failed call on this context, or "" if
 * there was none.  Valid until the next call on the context. */
TSR_API const char *tsr_ctx_errmsg(const tsr_ctx_t *ctx);

/* Context options: set with tsr_ctx_set(), read with tsr_ctx_get().  An
 * option applies to runs started after it is set. */
typedef enum {
    /* Worker threads of the "threads" executor; 0 (default) = one per core. */
    TSR_OPT_THREADS = 1,
    /* Executor: TSR_EXEC_THREADS (default) or TSR_EXEC_INLINE. */
    TSR_OPT_EXECUTOR = 2,
    /* Cache budget of one tile in bytes, 0 = default (1 MiB). */
    TSR_OPT_TILE_BYTES = 3,
    /* Target raw bytes per partition; 0 = default (64 MiB). */
    TSR_OPT_PARTITION_BYTES = 4,
    /* Force this number of partitions (clamped to the frames selected);
     * 0 = size-based (default). */
    TSR_OPT_PARTITIONS = 5,
    /* I/O backend (tsr_io_backend_t), default TSR_IO_AUTO: while the dataset
     * fits in half the memory, mmap for runs over at least an eighth of the
     * frames and pread for fewer; else io_uring (O_DIRECT).  A backend
     * unavailable here falls back: uring → direct → pread, mmap → pread. */
    TSR_OPT_IO_BACKEND = 6
} tsr_option_t;

typedef enum { TSR_EXEC_THREADS = 0, TSR_EXEC_INLINE = 1 } tsr_executor_kind_t;
typedef enum {
    TSR_IO_AUTO = 0,
    TSR_IO_PREAD = 1,  /* pread into per-worker buffers */
    TSR_IO_MMAP = 2,   /* memory-mapped files, zero copy where possible */
    TSR_IO_DIRECT = 3, /* O_DIRECT through aligned buffers: no page cache */
    TSR_IO_URING = 4   /* io_uring with one tile of read-ahead per worker */
} tsr_io_backend_t;

/* Set an option.  TSR_EINVAL for an unknown option, TSR_ERANGE for a value
 * out of its range (message on the context). */
TSR_API int tsr_ctx_set(tsr_ctx_t *ctx, tsr_option_t opt, int64_t value);
/* Read an option's current value (after defaults are resolved: THREADS gives
 * the actual worker count). */
TSR_API int tsr_ctx_get(const tsr_ctx_t *ctx, tsr_option_t opt, int64_t *value);

/* Highest number of bytes the engine held allocated at once through this
 * context, and the number held now.  Thread-safe. */
TSR_API void tsr_ctx_memory(const tsr_ctx_t *ctx, size_t *current, size_t *peak);

/* =========================================================================
 * Parameters: key/value strings
 *
 * Datasets and UDFs take their parameters as a list of key=value strings.
 * A key may repeat where its schema says so (e.g. "mask").  Values are
 * parsed and validated against the schema when they are used; unknown keys
 * are an error there.
 * ========================================================================= */

typedef struct tsr_params tsr_params_t;

TSR_API int tsr_params_new(tsr_ctx_t *ctx, tsr_params_t **out);
TSR_API void tsr_params_free(tsr_params_t *p);
/* Append key=value (both copied).  TSR_EINVAL for an empty key. */
TSR_API int tsr_params_add(tsr_params_t *p, const char *key, const char *value);
/* Parse "key=value" (split at the first '=') and append it. */
TSR_API int tsr_params_add_kv(tsr_params_t *p, const char *kv);
/* Append the members of a flat JSON object: strings and numbers as their
 * text, booleans as "true"/"false", arrays of numbers as "a,b,c", and arrays
 * of strings as repeated keys.  TSR_EINVAL with a message on the context for
 * malformed JSON or nested objects. */
TSR_API int tsr_params_add_json(tsr_params_t *p, const char *json);
/* Number of entries and the i-th entry (borrowed strings). */
TSR_API size_t tsr_params_count(const tsr_params_t *p);
TSR_API int tsr_params_at(const tsr_params_t *p, size_t i, const char **key, const char **value);
/* The last value given for key, or NULL. */
TSR_API const char *tsr_params_get(const tsr_params_t *p, const char *key);

/* One parameter of a format or UDF schema: static data. */
typedef struct tsr_param_def {
    const char *name;
    /* "int", "float", "bool", "string", "path", "dtype", "shape" (comma
     * separated positive ints), "ints", "floats" (comma separated). */
    const char *type;
    const char *default_value; /* NULL: required, "" : optional, no default */
    const char *doc;
    bool repeatable;
} tsr_param_def_t;

/* =========================================================================
 * Formats and datasets
 * ========================================================================= */

typedef struct tsr_dataset tsr_dataset_t;

/* Registered formats: count and the i-th one's name, description and
 * parameter schema (static data).  Thread-safe after the first call. */
TSR_API size_t tsr_format_count(void);
TSR_API int tsr_format_info(size_t i, const char **name, const char **description,
                            const tsr_param_def_t **params, size_t *n_params);

/* Open a dataset.  format: a registered format's name, or NULL / "auto" to
 * pick the format whose probe scores highest on the file (the extension
 * breaks ties).  params: may be NULL; the format's schema lists them;
 * common ones are nav_shape, sig_shape, sync_offset and, for raw, dtype.
 * Errors: TSR_ENOTFOUND (no such format, or no format recognises the file),
 * TSR_EIO (file unreadable), TSR_ECORRUPT (bad header, truncated file),
 * TSR_EINVAL (bad parameter), TSR_ERANGE (sync_offset); the message on the
 * context names the file, the field and the expected and found values.
 * The dataset may be read by several runs, one after another or at once. */
TSR_API int tsr_dataset_open(tsr_ctx_t *ctx, const char *format, const char *path,
                             const tsr_params_t *params, tsr_dataset_t **out);

/* Wrap frames held in memory: data holds nav × sig elements of dtype in C
 * order and host byte order.  If copy is false the data are borrowed and
 * must outlive the dataset; if true they are copied.  A memory dataset
 * cannot be sent to another process. */
TSR_API int tsr_dataset_from_memory(tsr_ctx_t *ctx, const void *data, tsr_dtype_t dtype,
                                    const tsr_shape_t *nav, const tsr_shape_t *sig, bool copy,
                                    tsr_dataset_t **out);

TSR_API void tsr_dataset_close(tsr_dataset_t *ds);

TSR_API void tsr_dataset_nav_shape(const tsr_dataset_t *ds, tsr_shape_t *out);
TSR_API void tsr_dataset_sig_shape(const tsr_dataset_t *ds, tsr_shape_t *out);
/* Element type of the stored data, and whether it is stored big-endian. */
TSR_API tsr_dtype_t tsr_dataset_dtype(const tsr_dataset_t *ds);
TSR_API bool tsr_dataset_big_endian(const tsr_dataset_t *ds);
/* The format's name ("raw", "npy", "memory", ...).  Owned by the dataset. */
TSR_API const char *tsr_dataset_format(const tsr_dataset_t *ds);
/* Metadata as a JSON object text (format-specific: file, header fields,
 * calibrations).  Owned by the dataset, valid until it is closed. */
TSR_API const char *tsr_dataset_meta_json(const tsr_dataset_t *ds);
/* Number of frames actually present in the file(s), before sync_offset
 * and nav reshaping. */
TSR_API int64_t tsr_dataset_image_count(const tsr_dataset_t *ds);

/* =========================================================================
 * UDF interface
 *
 * A UDF is a table of callbacks (tsr_udf_def_t).  The built-in ones are
 * looked up by name; a program (or the Python binding) may define its own
 * and pass a user-data pointer that every callback sees.
 *
 * Life of a UDF in a run (the libvips start/generate/stop model):
 *  - init runs once per run on the calling thread: it parses parameters,
 *    declares result buffers and states its preferences.  Its state is then
 *    read-only for the rest of the run.
 *  - for each partition (task), on one worker: task_start, then
 *    process_tile / process_frame / process_partition for the data, then
 *    task_stop.  Task state belongs to that worker; the process callbacks
 *    of different tasks run concurrently.
 *  - merge(dest, src) folds a task's partial buffers into the run's
 *    buffers.  The runtime serializes merges: merge needs no lock.
 *  - finalize derives result-only buffers from the merged ones; it runs for
 *    the final result and for every intermediate snapshot.
 *  - destroy frees init's state.
 * A callback fails by returning a negative code, preferably through
 * tsr_udf_error() so that the run carries a message.
 * ========================================================================= */

#define TSR_UDF_ABI_VERSION 1
#define TSR_UDF_MAX_BUFFERS 16

typedef enum { TSR_KIND_NAV = 0, TSR_KIND_SIG = 1, TSR_KIND_SINGLE = 2 } tsr_buf_kind_t;

/* Buffer flags. */
#define TSR_BUF_PRIVATE 0x1u     /* kept out of the results */
#define TSR_BUF_RESULT_ONLY 0x2u /* written by finalize only; not merged */

/* A declared buffer.  Its shape is nav_shape + extra_shape (NAV),
 * sig_shape + extra_shape (SIG) or extra_shape (SINGLE).  Buffers start
 * zeroed. */
typedef struct tsr_buffer_decl {
    char name[48];
    tsr_buf_kind_t kind;
    tsr_dtype_t dtype;
    int extra_ndim;
    int64_t extra_shape[TSR_MAX_DIMS];
    unsigned flags;
} tsr_buffer_decl_t;

/* A window into a buffer: rows × row_elems elements of dtype, contiguous.
 * A row is one nav position (NAV), one sig pixel (SIG) or the whole buffer
 * (SINGLE: rows == 1); row_elems is the product of extra_shape. */
typedef struct tsr_view {
    void *data;
    tsr_dtype_t dtype;
    int64_t rows;
    int64_t row_elems;
} tsr_view_t;

typedef enum {
    TSR_METHOD_TILE = 0,     /* process_tile: depth frames × a sig slice */
    TSR_METHOD_FRAME = 1,    /* process_frame: one whole frame */
    TSR_METHOD_PARTITION = 2 /* process_partition: all frames of a task */
} tsr_method_t;

/* What every callback knows about the run.  Task fields are valid from
 * task_start to task_stop. */
typedef struct tsr_udf_meta {
    tsr_shape_t nav_shape;
    tsr_shape_t sig_shape;
    tsr_dtype_t dataset_dtype;
    /* Type of the tiles this UDF receives; during init, the type that
     * TSR_DTYPE_NATIVE would give (the dataset's, or float32 when
     * corrections apply to integer data). */
    tsr_dtype_t input_dtype;
    const uint8_t *roi; /* nav-sized selection mask, NULL = all */
    int64_t roi_count;  /* frames selected (nav size without ROI) */
    /* For finalize: nav-sized mask of positions whose data are in the
     * buffers (ROI and, for snapshots, already processed). */
    const uint8_t *valid;
    /* Task: flat nav range [part_start, part_end) of the partition, and the
     * range of selected rows [row_start, row_start + rows) it holds in the
     * ROI-compressed order of nav buffers. */
    int64_t part_start, part_end;
    int64_t row_start, rows;
    /* The dataset stores sparse frames (e.g. raw_csr): a UDF that accepts
     * sparse tiles (tsr_udf_init_t.accepts_sparse) may receive them. */
    bool sparse;
} tsr_udf_meta_t;

/* A tile, lent to the UDF for the length of one callback.  The frames are
 * consecutive flat nav positions [nav_index, nav_index + depth), all
 * selected; their rows in the task's nav views are [0, depth) of the views
 * passed along (the runtime slices them).  The sig part is the flat pixel
 * range [sig_start, sig_start + sig_len) of each frame: whole rows of the
 * first sig dimension, so it is contiguous.  Exception: in
 * process_partition the tile holds all selected frames of the partition,
 * packed (with a ROI they need not be consecutive nav positions; meta->roi
 * and part_start tell which they are), and nav_index is the first one. */
typedef struct tsr_sparse_rows tsr_sparse_rows_t;

typedef struct tsr_tile {
    const void *data; /* depth × sig_len elements, C order; NULL if sparse */
    tsr_dtype_t dtype;
    int64_t depth;
    int64_t nav_index; /* flat nav index of the first frame */
    int64_t row;       /* ROI-compressed row of the first frame in the run */
    int64_t sig_start;
    int64_t sig_len;
    /* NULL for a dense tile.  Else the tile is sparse: data is NULL and the
     * frames are these compressed sparse rows.  Only process_tile of a UDF
     * that set tsr_udf_init_t.accepts_sparse ever sees a sparse tile. */
    const tsr_sparse_rows_t *sparse;
} tsr_tile_t;

/* The frames of a sparse tile as compressed sparse rows (CSR, the layout of
 * scipy.sparse.csr_matrix), lent with the tile.  Frame f of the tile (f <
 * depth) holds the values [indptr[f], indptr[f + 1]); value e is at pixel
 * sig_start + indices[e] of the frame and every pixel not listed is zero.
 * Within a frame, pixels come in no particular order and may repeat (the
 * values of a repeated pixel add up, as scipy's toarray() does).  Explicit
 * zeros may be stored. */
struct tsr_sparse_rows {
    const int64_t *indptr;  /* depth + 1 entries, indptr[0] == 0 */
    const int64_t *indices; /* indptr[depth] entries, each in [0, sig_len) */
    const void *values;     /* indptr[depth] elements of the tile's dtype */
};

typedef struct tsr__call_priv tsr__call_priv_t;

/* Passed to every callback after init. */
typedef struct tsr_udf_call {
    void *user_data;  /* from tsr_udf_new_custom, or the def's own */
    void *state;      /* init's state; read-only */
    void *task_state; /* task_start's state, or NULL */
    const tsr_udf_meta_t *meta;
    /* One view per declared buffer, in declaration order, sliced for this
     * callback: in process_* NAV views cover the tile's frames and SIG views
     * its sig slice; in merge, dest NAV views cover the task's rows.
     * RESULT_ONLY buffers have data == NULL except in finalize. */
    tsr_view_t *bufs;
    int n_bufs;
    tsr__call_priv_t *priv;
} tsr_udf_call_t;

/* What init receives and fills in. */
typedef struct tsr_udf_init {
    /* in */
    void *user_data;
    const tsr_params_t *params; /* never NULL (maybe empty) */
    const tsr_udf_meta_t *meta; /* shapes, dtype and ROI of the run */
    tsr_ctx_t *ctx;
    /* out */
    void *state;
    tsr_buffer_decl_t buffers[TSR_UDF_MAX_BUFFERS];
    int n_buffers;
    /* TSR_F32 (default): float32, or a wider type the data need (numpy's
     * result_type with float32); TSR_F64 likewise with float64;
     * TSR_DTYPE_NATIVE: the dataset's own type (float32 when corrections
     * apply to integer data). */
    tsr_dtype_t input_dtype;
    tsr_method_t method;
    int64_t tile_depth; /* preferred frames per tile, 0 = any */
    /* Optional: the only flat nav positions this UDF needs, sorted
     * ascending, allocated with tsr_alloc(ctx, ...) and taken over by the
     * runtime.  If every UDF of a run gives a list, only their union (within
     * the ROI) is read. */
    int64_t *frames_needed;
    int64_t n_frames_needed;
    /* Optional, TSR_METHOD_TILE only: the rows [sig_rows_start,
     * sig_rows_end) of the first sig dimension that this UDF reads (0, 0 =
     * all).  If every UDF of a run gives a band, only the rows from the
     * least start to the greatest end are read, and tiles cover only them:
     * a small virtual detector then reads a fraction of each frame.  Tiles
     * may still cover rows outside the band (those another UDF of the run
     * reads, or whole frames when excluded pixels are patched): the UDF
     * ignores them. */
    int64_t sig_rows_start, sig_rows_end;
    /* Optional, TSR_METHOD_TILE only: process_tile also accepts sparse
     * tiles (tsr_tile_t.sparse).  A run hands sparse tiles to its UDFs only
     * when the dataset is sparse (meta->sparse), no corrections apply and
     * EVERY UDF of the run accepts them; otherwise the reader densifies the
     * frames and every UDF gets dense tiles, as always.  A UDF that sets this
     * must handle both kinds. */
    bool accepts_sparse;
    char errmsg[256];
} tsr_udf_init_t;

typedef struct tsr_udf_def {
    int abi_version; /* TSR_UDF_ABI_VERSION */
    const char *name;
    const char *description;
    const tsr_param_def_t *params;
    size_t n_params;
    /* Required.  Return 0, or a negative code with init->errmsg set. */
    int (*init)(tsr_udf_init_t *init);
    void (*destroy)(void *user_data, void *state);
    int (*task_start)(const tsr_udf_call_t *c, void **task_state);
    void (*task_stop)(const tsr_udf_call_t *c, void *task_state);
    /* Exactly the one named by init's method must be set. */
    int (*process_tile)(const tsr_udf_call_t *c, const tsr_tile_t *tile);
    int (*process_frame)(const tsr_udf_call_t *c, const tsr_tile_t *frame);
    int (*process_partition)(const tsr_udf_call_t *c, const tsr_tile_t *part);
    /* NULL: NAV buffers are copied into place; a UDF with SIG or SINGLE
     * buffers (other than RESULT_ONLY) must provide merge.  c->bufs are the
     * destination views; src are the task's partial buffers. */
    int (*merge)(const tsr_udf_call_t *c, const tsr_view_t *src);
    /* Optional.  c->bufs: every buffer, NAV ones expanded to the full nav
     * shape (invalid positions NaN or 0), RESULT_ONLY ones zeroed and to be
     * written. */
    int (*finalize)(const tsr_udf_call_t *c);
} tsr_udf_def_t;

/* Record a failure with a message on the run; returns code.  Thread-safe. */
TSR_API int tsr_udf_error(const tsr_udf_call_t *c, int code, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Allocate through the context's hooks (for frames_needed and UDF state).
 * Thread-safe. */
TSR_API void *tsr_alloc(tsr_ctx_t *ctx, size_t size);
TSR_API void tsr_free(tsr_ctx_t *ctx, void *ptr);

/* Built-in UDFs: count and the i-th definition (static).  Thread-safe. */
TSR_API size_t tsr_udf_count(void);
TSR_API const tsr_udf_def_t *tsr_udf_def_at(size_t i);
/* The built-in definition named name, or NULL. */
TSR_API const tsr_udf_def_t *tsr_udf_def_find(const char *name);

/* A UDF with its parameters, ready to be run (any number of times). */
typedef struct tsr_udf tsr_udf_t;

/* Look up a built-in UDF by name and bind parameters (copied; may be
 * NULL).  Parameter names are checked against the schema here; values are
 * validated when a run starts, against the dataset.  TSR_ENOTFOUND for an
 * unknown name, TSR_EINVAL for an unknown parameter. */
TSR_API int tsr_udf_new(tsr_ctx_t *ctx, const char *name, const tsr_params_t *params,
                        tsr_udf_t **out);
/* A UDF from a caller's table.  def (and its strings) must outlive the UDF;
 * user_data is passed to every callback. */
TSR_API int tsr_udf_new_custom(tsr_ctx_t *ctx, const tsr_udf_def_t *def, void *user_data,
                               const tsr_params_t *params, tsr_udf_t **out);
TSR_API void tsr_udf_free(tsr_udf_t *udf);
TSR_API const char *tsr_udf_name(const tsr_udf_t *udf);

/* =========================================================================
 * Runs
 * ========================================================================= */

typedef struct tsr_run tsr_run_t;
typedef struct tsr_results tsr_results_t;

/* Corrections applied to each frame while reading, in this order:
 * subtract dark, multiply by gain, replace excluded pixels by the mean of
 * their non-excluded neighbours (the 3×…×3 neighbourhood, widened until a
 * non-excluded pixel is found).  All arrays are sig-sized, host order, and
 * may be NULL. */
typedef struct tsr_corrections {
    const float *dark;
    const float *gain;
    const uint8_t *excluded;
} tsr_corrections_t;

typedef struct tsr_run_opts {
    const uint8_t *roi; /* nav-sized mask (nonzero = selected), or NULL */
    /* If all three arrays are NULL, the dataset's own corrections apply
     * (tsr_dataset_corrections), unless no_dataset_corrections is set.
     * Corrections given here replace the dataset's as a whole. */
    tsr_corrections_t corrections;
    bool no_dataset_corrections;
} tsr_run_opts_t;

/* The corrections a dataset brings with it: e.g. the dark frame, gain map
 * and bad-pixel list that the camera software wrote beside the data (see
 * docs/formats.md for the formats that have them).  NULL if there are none;
 * else the arrays (sig-sized, host order, each may be NULL) are owned by the
 * dataset and valid until it is closed.  A run applies them when its caller
 * gives no corrections of its own (see tsr_run_opts_t). */
TSR_API const tsr_corrections_t *tsr_dataset_corrections(const tsr_dataset_t *ds);

/* Start a run of n UDFs over ds in one pass.  opts may be NULL.  Arrays in
 * opts are copied.  The UDFs' init runs here: a parameter error is returned
 * here, with the message on the context.  With the threads executor the run
 * proceeds in the background; with the inline executor it runs inside
 * tsr_run_wait().  ds and the UDFs must outlive the run. */
TSR_API int tsr_run_start(tsr_ctx_t *ctx, tsr_dataset_t *ds, tsr_udf_t *const *udfs, size_t n,
                          const tsr_run_opts_t *opts, tsr_run_t **out);
/* Frames processed so far and frames to process.  Thread-safe. */
TSR_API void tsr_run_progress(const tsr_run_t *run, int64_t *done, int64_t *total);
/* Ask the run to stop; it stops between tiles, and wait returns
 * TSR_ECANCELED.  Thread-safe. */
TSR_API void tsr_run_cancel(tsr_run_t *run);
/* Block until the run ends; returns its status (0, or the first error,
 * with tsr_run_errmsg() telling more).  May be called again. */
TSR_API int tsr_run_wait(tsr_run_t *run);
/* Like wait, but return TSR_EAGAIN if the run has not ended after
 * timeout_ms (inline runs: never times out).  */
TSR_API int tsr_run_wait_for(tsr_run_t *run, int timeout_ms);
/* The message of the run's error, or "". */
TSR_API const char *tsr_run_errmsg(const tsr_run_t *run);
/* Free a run; waits for it (after cancel) if it is still going. */
TSR_API void tsr_run_free(tsr_run_t *run);

/* The final results, after a successful wait; owned by the run. */
TSR_API int tsr_run_results(tsr_run_t *run, const tsr_results_t **out);
/* A consistent copy of the merged buffers now, finalized, with the damage
 * mask of the positions processed so far.  Caller frees it with
 * tsr_results_free().  Thread-safe with respect to the run's workers. */
TSR_API int tsr_run_snapshot(tsr_run_t *run, tsr_results_t **out);

/* A result buffer, borrowed from its results object. */
typedef struct tsr_array {
    const char *udf;  /* UDF name */
    int udf_index;    /* position of the UDF in the run */
    const char *name; /* buffer name */
    tsr_buf_kind_t kind;
    tsr_dtype_t dtype;
    tsr_shape_t shape; /* full shape, C order */
    /* How many leading dimensions of shape are nav (NAV buffers), else 0;
     * the rest is the buffer's extra_shape (after sig for SIG buffers). */
    int nav_ndim;
    const void *data;
    /* NAV buffers: nav-sized mask, 1 where the value is valid (selected by
     * the ROI and processed); NULL for SIG and SINGLE buffers. */
    const uint8_t *valid;
} tsr_array_t;

TSR_API size_t tsr_results_count(const tsr_results_t *res);
TSR_API int tsr_results_get(const tsr_results_t *res, size_t i, tsr_array_t *out);
/* Find by UDF index (-1: any) and buffer name.  TSR_ENOTFOUND if absent. */
TSR_API int tsr_results_find(const tsr_results_t *res, int udf_index, const char *name,
                             tsr_array_t *out);
/* Nav-sized mask of the positions processed (all selected ones for final
 * results), and how many there are. */
TSR_API const uint8_t *tsr_results_damage(const tsr_results_t *res, int64_t *n_done);
TSR_API void tsr_results_free(tsr_results_t *res);

/* =========================================================================
 * Parameter guesses
 *
 * Some analyses can estimate their own parameters from the data (e.g. the
 * centre of the diffraction pattern).  A guess runs one or more ordinary
 * runs over the dataset (blocking, on the context's executor) with the
 * caller's ROI and corrections.
 * ========================================================================= */

/* True if the built-in UDF name has a parameter guess.  Thread-safe. */
TSR_API bool tsr_udf_has_guess(const char *name);

/* Guess parameters of the built-in UDF name from the data and append them
 * to out as key/value pairs (which tsr_udf_new accepts; appended last, so
 * they win over earlier values of the same keys).  params: the UDF's other
 * parameters (may be NULL), read as hints (see the UDF's guess below).
 * opts may be NULL.  Errors: TSR_EUNSUPPORTED if the UDF has no guess or
 * the data do not allow one, TSR_EINVAL for bad hints, and any error of
 * the runs (message on the context).  out is not changed on failure except
 * for values already appended. */
TSR_API int tsr_udf_guess(tsr_ctx_t *ctx, tsr_dataset_t *ds, const char *name,
                          const tsr_params_t *params, const tsr_run_opts_t *opts,
                          tsr_params_t *out);

/* The guess of the `com` UDF (centre of mass), as numbers. */
typedef struct tsr_com_guess {
    double cy, cx;        /* centre of the mean frame, detector pixels */
    double scan_rotation; /* degrees, in (-180, 180] */
    bool flip_y;
    double rms_curl; /* root mean square curl of the field at that rotation */
} tsr_com_guess_t;

/* Guess cy, cx, scan_rotation and flip_y of the `com` UDF (tsr_udf_guess
 * for "com" appends these four).  Two runs: `sum` gives the mean frame,
 * whose centre of mass is (cy, cx) — with a finite r in params, the centre
 * of mass within the disk (annulus with ri) around the previous estimate,
 * iterated from params' cy, cx (default: the whole-frame centre of mass);
 * then `com` around that centre gives the raw shifts, and the rotation and
 * flip are those that minimise the mean square curl of the field (closed
 * form), choosing between the two angles 180° apart the one whose
 * divergence has the heavier negative tail (atomic columns attract the
 * beam; LiberTEM's guess_corrections).  With regression=1 in params a
 * least-squares plane is removed from the shifts first.  Needs 2-D nav and
 * sig shapes (TSR_EUNSUPPORTED) and a curl defined somewhere (at least
 * 2 × 2 valid scan positions; TSR_EINVAL). */
TSR_API int tsr_com_guess(tsr_ctx_t *ctx, tsr_dataset_t *ds, const tsr_params_t *params,
                          const tsr_run_opts_t *opts, tsr_com_guess_t *out);

/* =========================================================================
 * Export
 * ========================================================================= */

typedef struct tsr_export_opts {
    const char *colormap; /* PNG: "viridis" (default), "magma", "gray" */
    bool log;             /* PNG: log scale */
} tsr_export_opts_t;

/* Write one array to path; the type follows the extension: .npy (exact
 * dtype and shape), .h5/.hdf5, .tif/.tiff (float32; a third dimension
 * becomes pages: the last one for NAV and SIG buffers, the first for
 * SINGLE ones; see docs/export.md), .png (8-bit colour-mapped, scaled to
 * the finite valid values; needs at most two dimensions longer than 1;
 * complex values as their modulus).
 * opts may be NULL.  TSR_EINVAL for an unknown extension or a shape the
 * type cannot hold, TSR_EIO if writing fails; message on the context. */
TSR_API int tsr_export_array(tsr_ctx_t *ctx, const tsr_array_t *arr, const char *path,
                             const tsr_export_opts_t *opts);
/* Write all arrays of res: path ending in '/' is a directory (created if
 * needed) that receives <udf>.<buffer>.npy per buffer; a path ending in .h5
 * or .hdf5 receives all buffers as /<udf>/<buffer> datasets (with a
 * <buffer>_valid mask beside NAV ones).  A .npy, .tif or .png path is
 * accepted when res holds exactly one buffer. */
TSR_API int tsr_export_results(tsr_ctx_t *ctx, const tsr_results_t *res, const char *path);

#ifdef __cplusplus
}
#endif
#endif /* TESSERA_H */

/*
 * h5lib.h — libhdf5, opened at first use and shared by the HDF5 reader
 * (src/io/formats/hdf5) and the HDF5 writer (src/export/hdf5.c).
 *
 * libhdf5 is not linked: loading it, with libcurl, libssl, libsz and the
 * rest it depends on, would cost every process start about 30 ms, and most
 * runs never touch an HDF5 file.  It is opened (dlopen) on the first call of
 * tsr__h5_load, once per process, and called through the table tsr__h5 of
 * the functions the engine uses; <hdf5.h> still gives the types and
 * constants.  Its H5T_* type macros read globals of the library after
 * calling H5open(): use tsr__h5_native(H5T_NATIVE_INT8) instead, which reads
 * the same globals through the table (tsr__dl_var finds them where the
 * library itself keeps them).  Its file-access flags call H5check() and
 * H5open(); here they are plain constants: H5open() is called at loading,
 * and instead of H5check(), which aborts on a mismatch, the version is
 * compared once.  Where libhdf5 cannot be loaded, or is not of the release
 * series (major.minor) of the headers, tsr__h5_load fails with
 * TSR_EUNSUPPORTED and the reason.
 *
 * Every use of the library goes between tsr__h5_enter and tsr__h5_leave:
 * they serialise the engine's HDF5 calls (a libhdf5 built without thread
 * safety must never be entered by two threads) and switch off HDF5's
 * printing of its error stack to stderr for the time (tsr__h5_error then
 * gives its innermost message).  Readers call libhdf5 only while opening
 * and closing a dataset; the workers read chunk bytes themselves.
 */
#ifndef TSR_IO_H5LIB_H
#define TSR_IO_H5LIB_H

#include <hdf5.h>

#include <stdbool.h>
#include <stddef.h>

/* H5F_ACC_RDONLY and the like expand to (H5check(), H5open(), flag): keep
 * only the flag (see above). */
#undef H5CHECK
#define H5CHECK
#undef H5OPEN
#define H5OPEN

/* Every libhdf5 function the engine calls; the table's fields have their
 * names and, through __typeof__, exactly the header's types. */
#define TSR__H5_FUNCS(X)            \
    X(H5open)                       \
    X(H5get_libversion)             \
    X(H5free_memory)                \
    X(H5Eget_auto2)                 \
    X(H5Eset_auto2)                 \
    X(H5Ewalk2)                     \
    X(H5Eclear2)                    \
    X(H5Fcreate)                    \
    X(H5Fopen)                      \
    X(H5Fclose)                     \
    X(H5Fget_name)                  \
    X(H5Fget_create_plist)          \
    X(H5Lexists)                    \
    X(H5Lget_info)                  \
    X(H5Lget_val)                   \
    X(H5Lunpack_elink_val)          \
    X(H5Literate)                   \
    X(H5Ovisit2)                    \
    X(H5Oget_info2)                 \
    X(H5Oget_info_by_name2)         \
    X(H5Oopen)                      \
    X(H5Oclose)                     \
    X(H5Gopen2)                     \
    X(H5Gcreate2)                   \
    X(H5Gclose)                     \
    X(H5Screate)                    \
    X(H5Screate_simple)             \
    X(H5Sget_simple_extent_ndims)   \
    X(H5Sget_simple_extent_dims)    \
    X(H5Sget_simple_extent_npoints) \
    X(H5Sclose)                     \
    X(H5Tcreate)                    \
    X(H5Tcopy)                      \
    X(H5Tinsert)                    \
    X(H5Tenum_create)               \
    X(H5Tenum_insert)               \
    X(H5Tget_class)                 \
    X(H5Tget_size)                  \
    X(H5Tset_size)                  \
    X(H5Tget_sign)                  \
    X(H5Tget_order)                 \
    X(H5Tis_variable_str)           \
    X(H5Tclose)                     \
    X(H5Pget_sizes)                 \
    X(H5Pget_userblock)             \
    X(H5Pget_layout)                \
    X(H5Pget_chunk)                 \
    X(H5Pget_nfilters)              \
    X(H5Pget_filter2)               \
    X(H5Pget_external_count)        \
    X(H5Pget_virtual_count)         \
    X(H5Pfill_value_defined)        \
    X(H5Pget_fill_value)            \
    X(H5Pclose)                     \
    X(H5Aexists)                    \
    X(H5Aopen)                      \
    X(H5Aget_type)                  \
    X(H5Aget_space)                 \
    X(H5Aread)                      \
    X(H5Aclose)                     \
    X(H5Aiterate2)                  \
    X(H5Iget_file_id)               \
    X(H5Dcreate2)                   \
    X(H5Dopen2)                     \
    X(H5Dget_space)                 \
    X(H5Dget_type)                  \
    X(H5Dget_create_plist)          \
    X(H5Dget_offset)                \
    X(H5Dget_storage_size)          \
    X(H5Dget_num_chunks)            \
    X(H5Dget_chunk_info)            \
    X(H5Dget_chunk_index_type)      \
    X(H5Dread)                      \
    X(H5Dwrite)                     \
    X(H5Dvlen_reclaim)              \
    X(H5Dclose)

/* The predefined types used, as the globals behind the H5T_* macros. */
#define TSR__H5_NATIVES(X) \
    X(H5T_NATIVE_UINT8)    \
    X(H5T_NATIVE_UINT16)   \
    X(H5T_NATIVE_UINT32)   \
    X(H5T_NATIVE_UINT64)   \
    X(H5T_NATIVE_INT8)     \
    X(H5T_NATIVE_INT16)    \
    X(H5T_NATIVE_INT32)    \
    X(H5T_NATIVE_INT64)    \
    X(H5T_NATIVE_FLOAT)    \
    X(H5T_NATIVE_DOUBLE)   \
    X(H5T_C_S1)

typedef struct tsr__h5_api {
#define TSR__H5_FIELD(fn) __typeof__(&fn) fn;
    TSR__H5_FUNCS(TSR__H5_FIELD)
#undef TSR__H5_FIELD
#define TSR__H5_GLOBAL(t) const hid_t *t##_g;
    TSR__H5_NATIVES(TSR__H5_GLOBAL)
#undef TSR__H5_GLOBAL
} tsr__h5_api_t;

/* Complete once tsr__h5_load has returned 0; read-only afterwards. */
extern tsr__h5_api_t tsr__h5;

/* Load libhdf5 if not yet done (thread-safe): 0, or TSR_EUNSUPPORTED with
 * the reason in err. */
int tsr__h5_load(char *err, size_t errlen);

/* The id of a predefined type, as H5T_<t> gives it. */
#define tsr__h5_native(t) (*tsr__h5.t##_g)

/* Enter / leave the engine's use of libhdf5 (after tsr__h5_load): a
 * process-wide lock, and HDF5's error printing off in between.  Not
 * re-entrant. */
typedef struct tsr__h5_scope {
    H5E_auto2_t func;
    void *data;
    bool quiet;
} tsr__h5_scope_t;
void tsr__h5_enter(tsr__h5_scope_t *s);
void tsr__h5_leave(tsr__h5_scope_t *s);

/* The innermost message of HDF5's error stack ("" if none) into buf (which
 * may be NULL), and clear the stack.  Between enter and leave. */
void tsr__h5_error(char *buf, size_t n);

#endif

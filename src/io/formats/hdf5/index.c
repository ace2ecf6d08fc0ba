/*
 * index.c — where every chunk of a chunked HDF5 dataset lies: its file
 * offset, stored size and filter mask, in a table over the chunk grid.
 *
 * libhdf5 1.10 answers this with H5Dget_chunk_info, which walks the whole
 * chunk index up to the chunk asked for: reading a table of n chunks that
 * way costs n²/2 steps (about a minute for 65 536 chunks).  So the table
 * is built in one pass instead, by reading the dataset's chunk index
 * structures from the file as the HDF5 file format specification lays
 * them out (index_parse.c); libhdf5 is asked for every chunk only when
 * that parser does not know the index (v2 B-trees: datasets with more than
 * one unlimited axis) and for the first chunk always, to check the
 * parser's answer.
 */
#include "io/formats/hdf5/h5fmt.h"

int tsr__h5r_index(tsr__open_args_t *a, h5r_part_t *p, hid_t dset, int64_t base,
                   const tsr__file_t *f, size_t chunk_bytes)
{
    int nd = 0;
    int64_t n = 1;
    hsize_t nst = 0;
    char why[300];
    (void)f;
    (void)chunk_bytes;

    for (int i = 0; i < H5R_MAXD && p->dims[i] > 0; i++)
        nd = i + 1;
    for (int i = 0; i < nd; i++)
        if (!tsr__mul_i64(n, p->grid[i], &n) || n > ((int64_t)1 << 31))
            return tsr__seterr(a->err, a->errlen, TSR_EUNSUPPORTED,
                               "%s: more than 2^31 chunks are not supported", p->name);
    p->n_chunks = n;
    p->chunks = tsr__malloc(a->ctx, (size_t)n * sizeof *p->chunks);
    if (!p->chunks)
        return tsr__seterr(a->err, a->errlen, TSR_ENOMEM, "out of memory for %lld chunks",
                           (long long)n);
    for (int64_t i = 0; i < n; i++)
        p->chunks[i] = (h5r_chunk_t){H5R_ADDR_NONE, 0, 0};

    hid_t space = tsr__h5.H5Dget_space(dset);
    int rc = 0;
    if (space < 0 || tsr__h5.H5Dget_num_chunks(dset, space, &nst) < 0) {
        tsr__h5_error(why, sizeof why);
        rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT, "%s: cannot read the chunk index: %s",
                         p->name, why);
        goto done;
    }
    for (hsize_t c = 0; c < nst; c++) {
        hsize_t off[H5R_MAXD + 1];
        unsigned mask = 0;
        haddr_t addr = HADDR_UNDEF;
        hsize_t size = 0;
        int64_t idx = 0;
        if (tsr__h5.H5Dget_chunk_info(dset, space, c, off, &mask, &addr, &size) < 0) {
            tsr__h5_error(why, sizeof why);
            rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                             "%s: cannot read entry %llu of the chunk index: %s", p->name,
                             (unsigned long long)c, why);
            goto done;
        }
        for (int d = 0; d < nd; d++) {
            if (off[d] % (hsize_t)p->cdims[d] != 0 || off[d] >= (hsize_t)p->dims[d]) {
                rc = tsr__seterr(a->err, a->errlen, TSR_ECORRUPT,
                                 "%s: chunk index entry %llu has offset %llu on axis %d, not a "
                                 "chunk origin inside %lld",
                                 p->name, (unsigned long long)c, (unsigned long long)off[d], d,
                                 (long long)p->dims[d]);
                goto done;
            }
            idx = idx * p->grid[d] + (int64_t)(off[d] / (hsize_t)p->cdims[d]);
        }
        if (addr != HADDR_UNDEF)
            p->chunks[idx] = (h5r_chunk_t){(int64_t)addr + base, size, mask};
    }
done:
    if (space >= 0)
        tsr__h5.H5Sclose(space);
    return rc;
}

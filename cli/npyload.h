/*
 * npyload.h — a small reader of .npy files for the CLI's side inputs (ROI
 * masks, dark frames, gain maps, excluded-pixel masks).
 *
 * The public API opens .npy files as datasets but has no call that returns
 * a frame's values, so the CLI reads these small arrays itself.  Supported:
 * format versions 1, 2 and 3; C order (Fortran order is rejected); bool,
 * signed and unsigned integers of 1-8 bytes, float32 and float64, in either
 * byte order.
 */
#ifndef TSR_CLI_NPYLOAD_H
#define TSR_CLI_NPYLOAD_H

#include "tessera.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct cli_npy {
    char kind; /* 'b' bool, 'u' unsigned, 'i' signed, 'f' float */
    int itemsize;
    bool big_endian;
    char descr[16]; /* the header's typestring, for messages */
    int ndim;
    int64_t shape[TSR_MAX_DIMS];
    int64_t count;       /* product of shape */
    unsigned char *data; /* count * itemsize bytes in the file's byte order */
} cli_npy_t;

/* Read a whole .npy file.  Returns 0, or -1 with a message naming the path
 * in err (errlen bytes).  Free with cli_npy_free(). */
int cli_npy_load(const char *path, cli_npy_t *out, char *err, size_t errlen);
void cli_npy_free(cli_npy_t *a);

/* The values as float32 in host order (malloc'd; NULL when out of memory). */
float *cli_npy_to_f32(const cli_npy_t *a);
/* 1 where a value is nonzero, 0 elsewhere (malloc'd; NULL when out of
 * memory). */
uint8_t *cli_npy_to_mask(const cli_npy_t *a);

#endif

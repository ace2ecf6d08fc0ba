/*
 * roi.h — the --roi option of `tessera run`: a rectangle or a disk over a
 * 2-D scan, or a mask read from an .npy file of the nav shape.
 *
 * Parsing (syntax, checked before any file is opened) and building (against
 * the dataset's nav shape) are separate steps, so a typo is reported before
 * a large dataset is touched.
 */
#ifndef TSR_CLI_ROI_H
#define TSR_CLI_ROI_H

#include "tessera.h"

#include <stdint.h>

typedef enum { CLI_ROI_RECT, CLI_ROI_DISK, CLI_ROI_FILE } cli_roi_kind_t;

typedef struct cli_roi_spec {
    cli_roi_kind_t kind;
    const char *text;   /* the option's value, for messages */
    int64_t y, x, h, w; /* rect */
    double cy, cx, r;   /* disk */
    const char *path;   /* file */
} cli_roi_spec_t;

/* Parse "rect:y,x,h,w", "disk:cy,cx,r" or "FILE.npy".  Returns CLI_OK or
 * CLI_USAGE (message printed). */
int cli_roi_parse(const char *text, cli_roi_spec_t *out);

/* Make the nav-sized selection mask (malloc'd, 1 = selected) of spec for a
 * nav of shape nav.  Returns CLI_OK, or an exit code with the message
 * printed: a rect or disk over a nav that is not 2-D, or one that selects
 * nothing (CLI_USAGE), an unreadable file or one of the wrong shape or type
 * (CLI_FAIL). */
int cli_roi_build(const cli_roi_spec_t *spec, const tsr_shape_t *nav, uint8_t **mask);

#endif

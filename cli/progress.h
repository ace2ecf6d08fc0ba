/*
 * progress.h — watching a run from the CLI: the progress bar on stderr and
 * cancellation on SIGINT.
 */
#ifndef TSR_CLI_PROGRESS_H
#define TSR_CLI_PROGRESS_H

#include "tessera.h"

#include <stdbool.h>
#include <stdint.h>

/* Install the SIGINT handler: the first Ctrl-C asks the observed run to
 * cancel, a second one exits at once with status 130. */
void cli_sigint_install(void);

/* Wait for run to end.  With show_bar, draw a progress bar on stderr
 * (frame_bytes, the stored size of one frame, gives the data rate) and
 * erase it at the end.  A SIGINT cancels the run; *interrupted tells
 * whether one arrived.  Returns the run's status, as tsr_run_wait(). */
int cli_run_observe(tsr_run_t *run, bool show_bar, int64_t frame_bytes, bool *interrupted);

#endif

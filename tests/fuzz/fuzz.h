/*
 * fuzz.h — the interface shared by the fuzz targets and their drivers.
 *
 * Each tests/fuzz/fuzz_<name>.c defines LLVMFuzzerTestOneInput and a seed
 * function.  Built with -fsanitize=fuzzer (make fuzz) libFuzzer drives it;
 * built with replay.c (ctest) a standalone main runs every seed plus a fixed
 * number of deterministic mutations of each, so the suite exercises the
 * parsers on malformed input on every run.
 */
#ifndef TSR_FUZZ_H
#define TSR_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Fill up to max seeds (each allocated with malloc, freed by the caller);
 * return how many. */
size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max);

#endif

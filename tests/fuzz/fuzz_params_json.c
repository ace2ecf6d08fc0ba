/* fuzz_params_json.c — parameter lists from arbitrary JSON text. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tsr_ctx_t *ctx;
    if (tsr_ctx_new(&ctx))
        return 0;
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = 0;
    tsr_params_t *p;
    if (tsr_params_new(ctx, &p) == 0) {
        if (tsr_params_add_json(p, text) != 0 && !tsr_ctx_errmsg(ctx)[0])
            abort();
        tsr_shape_t s;
        char err[128];
        for (size_t i = 0; i < tsr_params_count(p); i++) {
            const char *k, *v;
            tsr_params_at(p, i, &k, &v);
            tsr__parse_shape(v, &s, err, sizeof err, k);
        }
        tsr_params_free(p);
    }
    free(text);
    tsr_ctx_free(ctx);
    return 0;
}

size_t tsr_fuzz_seeds(uint8_t **seeds, size_t *lens, size_t max)
{
    static const char *t[] = {
        "{\"nav_shape\": [4, 5], \"dtype\": \"<u2\", \"mask\": [\"disk:1,2,3\", \"ring:1,2,3,4\"]}",
        "{\"a\": 1.5e300, \"b\": true, \"c\": null, \"d\": {\"x\": 1}, \"e\": [1, \"x\"]}",
        "[1, 2, 3]",
    };
    size_t n = 0;
    for (; n < max && n < sizeof t / sizeof t[0]; n++) {
        lens[n] = strlen(t[n]);
        seeds[n] = malloc(lens[n]);
        memcpy(seeds[n], t[n], lens[n]);
    }
    return n;
}

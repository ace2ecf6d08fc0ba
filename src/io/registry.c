/*
 * registry.c — the list of formats, generated from formats/registry.def, and
 * the public listing of it.
 */
#include "io/dataset.h"

#define TSR_FORMAT(name) extern const tsr__reader_def_t tsr__format_##name;
#include "io/formats/registry.def"
#undef TSR_FORMAT

static const tsr__reader_def_t *const readers[] = {
#define TSR_FORMAT(name) &tsr__format_##name,
#include "io/formats/registry.def"
#undef TSR_FORMAT
};

size_t tsr__reader_count(void)
{
    return sizeof readers / sizeof readers[0];
}

const tsr__reader_def_t *tsr__reader_at(size_t i)
{
    return i < tsr__reader_count() ? readers[i] : NULL;
}

const tsr__reader_def_t *tsr__reader_find(const char *name)
{
    for (size_t i = 0; name && i < tsr__reader_count(); i++)
        if (strcmp(readers[i]->name, name) == 0)
            return readers[i];
    return NULL;
}

size_t tsr_format_count(void)
{
    return tsr__reader_count();
}

int tsr_format_info(size_t i, const char **name, const char **description,
                    const tsr_param_def_t **params, size_t *n_params)
{
    const tsr__reader_def_t *f = tsr__reader_at(i);
    if (!f)
        return TSR_ERANGE;
    if (name)
        *name = f->name;
    if (description)
        *description = f->description;
    if (params)
        *params = f->params;
    if (n_params)
        *n_params = f->n_params;
    return 0;
}

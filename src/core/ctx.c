/*
 * ctx.c — the engine context: options and the allocator hooks through which
 * every allocation of the engine goes.
 *
 * Every block carries a 16-byte header holding its size, so that the context
 * can account the bytes held now and the high-water mark (atomically, since
 * workers allocate concurrently), and so that aligned blocks can find their
 * base.  Plain blocks keep malloc's 16-byte alignment; tsr__malloc_aligned
 * gives 64-byte aligned ones for tiles.
 */
#include "core/core.h"
#include "platform/os.h"

#include <stdlib.h>

#define HDR 16u

static void *std_malloc(void *o, size_t n)
{
    (void)o;
    return malloc(n);
}
static void *std_realloc(void *o, void *p, size_t n)
{
    (void)o;
    return realloc(p, n);
}
static void std_free(void *o, void *p)
{
    (void)o;
    free(p);
}

static const tsr_allocator_t std_alloc = {std_malloc, std_realloc, std_free, NULL};

int tsr_ctx_new(tsr_ctx_t **out)
{
    return tsr_ctx_new_with_allocator(NULL, out);
}

int tsr_ctx_new_with_allocator(const tsr_allocator_t *alloc, tsr_ctx_t **out)
{
    if (!out)
        return TSR_EINVAL;
    const tsr_allocator_t *a = alloc ? alloc : &std_alloc;
    if (!a->malloc || !a->realloc || !a->free)
        return TSR_EINVAL;
    tsr_ctx_t *ctx = a->malloc(a->opaque, sizeof *ctx);
    if (!ctx)
        return TSR_ENOMEM;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = *a;
    atomic_init(&ctx->mem_current, 0);
    atomic_init(&ctx->mem_peak, 0);
    ctx->threads = tsr__cpu_count();
    ctx->executor = TSR_EXEC_THREADS;
    ctx->tile_bytes = 1 << 20;
    ctx->partition_bytes = 64 << 20;
    ctx->partitions = 0;
    ctx->io_backend = TSR_IO_AUTO;
    *out = ctx;
    return 0;
}

void tsr_ctx_free(tsr_ctx_t *ctx)
{
    if (!ctx)
        return;
    tsr_allocator_t a = ctx->alloc;
    a.free(a.opaque, ctx);
}

const char *tsr_ctx_errmsg(const tsr_ctx_t *ctx)
{
    return ctx ? ctx->errmsg : "no context";
}

int tsr_ctx_set(tsr_ctx_t *ctx, tsr_option_t opt, int64_t v)
{
    if (!ctx)
        return TSR_EINVAL;
    switch (opt) {
    case TSR_OPT_THREADS:
        if (v < 0 || v > 1024)
            return tsr__ctx_seterr(ctx, TSR_ERANGE, "threads must be 0..1024, got %lld",
                                   (long long)v);
        ctx->threads = v ? v : tsr__cpu_count();
        return 0;
    case TSR_OPT_EXECUTOR:
        if (v != TSR_EXEC_THREADS && v != TSR_EXEC_INLINE)
            return tsr__ctx_seterr(ctx, TSR_ERANGE, "unknown executor %lld", (long long)v);
        ctx->executor = v;
        return 0;
    case TSR_OPT_TILE_BYTES:
        if (v < 0 || v > ((int64_t)1 << 34))
            return tsr__ctx_seterr(ctx, TSR_ERANGE, "tile bytes out of range: %lld", (long long)v);
        ctx->tile_bytes = v ? v : 1 << 20;
        return 0;
    case TSR_OPT_PARTITION_BYTES:
        if (v < 0)
            return tsr__ctx_seterr(ctx, TSR_ERANGE, "partition bytes out of range: %lld",
                                   (long long)v);
        ctx->partition_bytes = v ? v : 64 << 20;
        return 0;
    case TSR_OPT_PARTITIONS:
        if (v < 0)
            return tsr__ctx_seterr(ctx, TSR_ERANGE, "partitions must be >= 0, got %lld",
                                   (long long)v);
        ctx->partitions = v;
        return 0;
    case TSR_OPT_IO_BACKEND:
        if (v < TSR_IO_AUTO || v > TSR_IO_URING)
            return tsr__ctx_seterr(ctx, TSR_ERANGE, "unknown I/O backend %lld", (long long)v);
        ctx->io_backend = v;
        return 0;
    }
    return tsr__ctx_seterr(ctx, TSR_EINVAL, "unknown option %d", (int)opt);
}

int tsr_ctx_get(const tsr_ctx_t *ctx, tsr_option_t opt, int64_t *v)
{
    if (!ctx || !v)
        return TSR_EINVAL;
    switch (opt) {
    case TSR_OPT_THREADS: *v = ctx->threads; return 0;
    case TSR_OPT_EXECUTOR: *v = ctx->executor; return 0;
    case TSR_OPT_TILE_BYTES: *v = ctx->tile_bytes; return 0;
    case TSR_OPT_PARTITION_BYTES: *v = ctx->partition_bytes; return 0;
    case TSR_OPT_PARTITIONS: *v = ctx->partitions; return 0;
    case TSR_OPT_IO_BACKEND: *v = ctx->io_backend; return 0;
    }
    return TSR_EINVAL;
}

void tsr_ctx_memory(const tsr_ctx_t *ctx, size_t *current, size_t *peak)
{
    if (current)
        *current = ctx ? atomic_load(&((tsr_ctx_t *)ctx)->mem_current) : 0;
    if (peak)
        *peak = ctx ? atomic_load(&((tsr_ctx_t *)ctx)->mem_peak) : 0;
}

/* ---- allocation -------------------------------------------------------- */

static void account(tsr_ctx_t *ctx, size_t add, size_t sub)
{
    size_t cur = atomic_fetch_add(&ctx->mem_current, add) + add;
    if (sub)
        cur = atomic_fetch_sub(&ctx->mem_current, sub) - sub;
    size_t peak = atomic_load(&ctx->mem_peak);
    while (cur > peak && !atomic_compare_exchange_weak(&ctx->mem_peak, &peak, cur))
        ;
}

void *tsr__malloc(tsr_ctx_t *ctx, size_t n)
{
    if (n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *p = ctx->alloc.malloc(ctx->alloc.opaque, n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    account(ctx, n, 0);
    return p + HDR;
}

void *tsr__calloc(tsr_ctx_t *ctx, size_t count, size_t size)
{
    size_t n;
    if (!tsr__mul_size(count, size, &n))
        return NULL;
    void *p = tsr__malloc(ctx, n);
    if (p)
        memset(p, 0, n);
    return p;
}

void *tsr__realloc(tsr_ctx_t *ctx, void *ptr, size_t n)
{
    if (!ptr)
        return tsr__malloc(ctx, n);
    if (n > SIZE_MAX - HDR)
        return NULL;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *p = ctx->alloc.realloc(ctx->alloc.opaque, base, n + HDR);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    account(ctx, n, old);
    return p + HDR;
}

void tsr__free(tsr_ctx_t *ctx, void *ptr)
{
    if (!ptr)
        return;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t n;
    memcpy(&n, base, sizeof n);
    atomic_fetch_sub(&ctx->mem_current, n);
    ctx->alloc.free(ctx->alloc.opaque, base);
}

char *tsr__strdup(tsr_ctx_t *ctx, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = tsr__malloc(ctx, n);
    if (d)
        memcpy(d, s, n);
    return d;
}

/* Aligned blocks: over-allocate by 64 and keep the offset to the plain
 * block in the byte before the payload. */
void *tsr__malloc_aligned(tsr_ctx_t *ctx, size_t n)
{
    if (n > SIZE_MAX - 64)
        return NULL;
    unsigned char *raw = tsr__malloc(ctx, n + 64);
    if (!raw)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + 64) & ~(uintptr_t)63;
    unsigned char *p = (unsigned char *)a;
    p[-1] = (unsigned char)(p - raw);
    return p;
}

void tsr__free_aligned(tsr_ctx_t *ctx, void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = ptr;
    tsr__free(ctx, p - p[-1]);
}

void *tsr_alloc(tsr_ctx_t *ctx, size_t size)
{
    return ctx ? tsr__malloc(ctx, size) : NULL;
}

void tsr_free(tsr_ctx_t *ctx, void *ptr)
{
    if (ctx)
        tsr__free(ctx, ptr);
}

/*
 * errors.c — the error table (generated from TSR_ERRNO_MAP in tessera.h),
 * version queries, and the helpers that format a detail message into the
 * object that failed.
 */
#include "core/core.h"

unsigned tsr_version_number(void)
{
    return TSR_VERSION_NUMBER;
}

#define TSR__STR2(x) #x
#define TSR__STR(x) TSR__STR2(x)

const char *tsr_version_string(void)
{
    return TSR__STR(TSR_VERSION_MAJOR) "." TSR__STR(TSR_VERSION_MINOR) "." TSR__STR(
        TSR_VERSION_PATCH);
}

const char *tsr_err_name(int code)
{
    switch (code) {
    case 0: return "TSR_OK";
#define XX(name, val, msg) \
    case val: return "TSR_" #name;
        TSR_ERRNO_MAP(XX)
#undef XX
    default: return "TSR_E?";
    }
}

const char *tsr_strerror(int code)
{
    switch (code) {
    case 0: return "success";
#define XX(name, val, msg) \
    case val: return msg;
        TSR_ERRNO_MAP(XX)
#undef XX
    default: return "unknown error";
    }
}

int tsr__vseterr(char *buf, size_t n, int code, const char *fmt, va_list ap)
{
    if (buf && n) {
        int len = vsnprintf(buf, n, fmt, ap);
        if (len < 0)
            snprintf(buf, n, "%s", tsr_strerror(code));
    }
    return code;
}

int tsr__seterr(char *buf, size_t n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tsr__vseterr(buf, n, code, fmt, ap);
    va_end(ap);
    return code;
}

int tsr__ctx_seterr(tsr_ctx_t *ctx, int code, const char *fmt, ...)
{
    if (!ctx)
        return code;
    va_list ap;
    va_start(ap, fmt);
    tsr__vseterr(ctx->errmsg, sizeof ctx->errmsg, code, fmt, ap);
    va_end(ap);
    return code;
}

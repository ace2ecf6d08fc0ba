/*
 * test_toml.c — the TOML subset parser of the raw_csr reader
 * (src/io/formats/raw_csr/toml.c): values as the TOML 1.0 specification
 * defines them (strings with escapes, literal strings, integers with
 * underscores, floats, booleans, arrays over several lines, comments,
 * dotted and quoted names), and the refusals with their line numbers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <string.h>

#include "io/formats/raw_csr/toml.h"

static tsr_ctx_t *ctx;

static int setup(void **state)
{
    (void)state;
    return tsr_ctx_new(&ctx);
}

static int teardown(void **state)
{
    (void)state;
    tsr_ctx_free(ctx);
    return 0;
}

static const tsr__toml_entry_t *get(const tsr__toml_t *t, const char *table, const char *key,
                                    tsr__toml_type_t type)
{
    const tsr__toml_entry_t *e = tsr__toml_get(t, table, key);
    if (!e)
        fail_msg("[%s] %s missing", table, key);
    assert_int_equal(e->type, type);
    return e;
}

static void values(void **state)
{
    (void)state;
    static const char text[] = "\xEF\xBB\xBF# a comment\n"
                               "top = 1\n"
                               "[params]   # trailing comment\n"
                               "filetype = \"raw_csr\"\r\n"
                               "esc = \"tab\\there \\\"q\\\" \\u00e9\\U0001F600\\\\\"\n"
                               "lit = 'C:\\dir\\x'\n"
                               "n = -1_234_567\n"
                               "zero = 0\n"
                               "f = 6.25e-1\n"
                               "inf = -inf\n"
                               "yes = true\n"
                               "nav_shape = [\n"
                               "  512, # rows\n"
                               "  +256,\n"
                               "]\n"
                               "mixed = [1, \"two\", 3.0]\n"
                               "empty = []\n"
                               "\"quoted key\" = 'v'\n"
                               "[a.\"b c\".d]\n"
                               "x.y = false\n";
    tsr__toml_t t;
    char err[256];
    int rc = tsr__toml_parse(ctx, text, sizeof text - 1, &t, err, sizeof err);
    if (rc)
        fail_msg("parse: %s", err);
    assert_int_equal(get(&t, "", "top", TSR__TOML_INT)->i, 1);
    assert_string_equal(get(&t, "params", "filetype", TSR__TOML_STRING)->str, "raw_csr");
    assert_string_equal(get(&t, "params", "esc", TSR__TOML_STRING)->str,
                        "tab\there \"q\" \xC3\xA9\xF0\x9F\x98\x80\\");
    assert_string_equal(get(&t, "params", "lit", TSR__TOML_STRING)->str, "C:\\dir\\x");
    assert_int_equal(get(&t, "params", "n", TSR__TOML_INT)->i, -1234567);
    assert_int_equal(get(&t, "params", "zero", TSR__TOML_INT)->i, 0);
    assert_true(get(&t, "params", "f", TSR__TOML_FLOAT)->f == 0.625);
    assert_true(isinf(get(&t, "params", "inf", TSR__TOML_FLOAT)->f));
    assert_true(get(&t, "params", "yes", TSR__TOML_BOOL)->b);
    const tsr__toml_entry_t *a = get(&t, "params", "nav_shape", TSR__TOML_ARRAY);
    assert_int_equal(a->n, 2);
    assert_true(a->all_ints);
    assert_int_equal(a->ints[0], 512);
    assert_int_equal(a->ints[1], 256);
    assert_int_equal(a->line, 12);
    a = get(&t, "params", "mixed", TSR__TOML_ARRAY);
    assert_int_equal(a->n, 3);
    assert_false(a->all_ints);
    assert_int_equal(get(&t, "params", "empty", TSR__TOML_ARRAY)->n, 0);
    assert_string_equal(get(&t, "params", "quoted key", TSR__TOML_STRING)->str, "v");
    assert_false(get(&t, "a.b c.d", "x.y", TSR__TOML_BOOL)->b);
    assert_null(tsr__toml_get(&t, "params", "absent"));
    tsr__toml_free(ctx, &t);
}

static void refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        const char *words;
    } cases[] = {
        {"a = 1\na = 2\n", "line 2: key 'a' is defined twice"},
        {"[t]\n[t]\n", "line 2: table [t] is defined twice"},
        {"a = \"\"\"x\"\"\"\n", "line 1: multi-line strings"},
        {"a = {b = 1}\n", "line 1: inline tables"},
        {"[[t]]\n", "line 1: arrays of tables"},
        {"a = \"open\n", "line 1: unterminated string"},
        {"a = \"\\q\"\n", "line 1: unknown escape"},
        {"a = \"\\uD800\"\n", "line 1: escape \\uD800"},
        {"a = 0123\n", "line 1: integer '0123' has a leading zero"},
        {"a = 99999999999999999999\n", "out of range"},
        {"a = 1__0\n", "line 1: malformed number"},
        {"a = 1979-05-27\n", "line 1: malformed number"},
        {"\n\na = [1, 2\n", "unterminated array"},
        {"a = [[1]]\n", "nested arrays"},
        {"a = 1 b = 2\n", "line 1: unexpected 'b'"},
        {"= 1\n", "line 1: expected a key"},
        {"a 1\n", "line 1: expected '=' after key 'a'"},
        {"a = \"x\0y\"\n", "control character"},
        {"a = \n", "line 1: expected a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tsr__toml_t t;
        char err[256] = "";
        size_t n = strlen(cases[i].text);
        if (strstr(cases[i].words, "control"))
            n = 11; /* the text holds a NUL byte */
        int rc = tsr__toml_parse(ctx, cases[i].text, n, &t, err, sizeof err);
        if (rc != TSR_ECORRUPT || !strstr(err, cases[i].words))
            fail_msg("case %zu: rc %d, message '%s', expected '%s'", i, rc, err, cases[i].words);
        assert_int_equal(t.n, 0);
    }
}

static void limits(void **state)
{
    (void)state;
    char text[6000];
    memset(text, 0, sizeof text);
    strcpy(text, "a = \"");
    memset(text + 5, 'x', TSR__TOML_MAX_STRING);
    strcat(text, "\"\n");
    tsr__toml_t t;
    char err[256];
    assert_int_equal(tsr__toml_parse(ctx, text, strlen(text), &t, err, sizeof err), TSR_ECORRUPT);
    assert_non_null(strstr(err, "longer than"));
    /* a text that stops anywhere never reads past its end */
    static const char full[] = "[params]\nfiletype = \"raw_csr\"\nnav_shape = [1, 2]\n";
    for (size_t n = 0; n < sizeof full - 1; n++) {
        char *copy = test_malloc(n ? n : 1);
        memcpy(copy, full, n);
        if (tsr__toml_parse(ctx, copy, n, &t, err, sizeof err) == 0)
            tsr__toml_free(ctx, &t);
        test_free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(values),
        cmocka_unit_test(refusals),
        cmocka_unit_test(limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

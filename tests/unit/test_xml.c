/*
 * test_xml.c — the small XML reader (src/io/xml.c) used for EMPAD sidecars
 * and TIA .emi metadata: the tree, values with entities, what is skipped,
 * and errors with their byte offsets.  Expected values are written by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <string.h>

#include "io/xml.h"

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

static void test_tree_and_values(void **state)
{
    (void)state;
    static const char doc[] =
        "\xEF\xBB\xBF<?xml version=\"1.0\"?>\n<!-- a comment with <tags> -->\n"
        "<root name='a &amp; b'>\n  <raw_file filename=\"x&lt;1&gt;.raw\" other = 'q\"q' />\n"
        "  <scan_parameters mode=\"search\"><n> 4 </n></scan_parameters>\n"
        "  <scan_parameters mode=\"acquire\"><n>&#56;&#x30;</n></scan_parameters>\n"
        "  <cdata><![CDATA[<not a tag>]]>after</cdata>\n"
        "  <dotted.name>[1.5, 2.5]</dotted.name>\n</root>\n";
    tsr__xml_t x;
    char err[256], buf[64];
    assert_int_equal(tsr__xml_parse(&x, ctx, doc, strlen(doc), err, sizeof err), 0);
    int root = tsr__xml_child(&x, 0, NULL);
    assert_true(tsr__xml_is(&x, root, "root"));
    assert_true(tsr__xml_attr(&x, root, "name", buf, sizeof buf));
    assert_string_equal(buf, "a & b");
    int rf = tsr__xml_child(&x, root, "raw_file");
    assert_true(tsr__xml_attr(&x, rf, "filename", buf, sizeof buf));
    assert_string_equal(buf, "x<1>.raw");
    assert_true(tsr__xml_attr(&x, rf, "other", buf, sizeof buf));
    assert_string_equal(buf, "q\"q");
    assert_false(tsr__xml_attr(&x, rf, "missing", buf, sizeof buf));
    int first = tsr__xml_child(&x, root, "scan_parameters");
    int second = tsr__xml_next(&x, first);
    assert_true(first >= 0 && second > first);
    assert_int_equal(tsr__xml_next(&x, second), -1);
    assert_int_equal(tsr__xml_child_with(&x, root, "scan_parameters", "mode", "acquire"), second);
    assert_true(tsr__xml_text(&x, tsr__xml_path(&x, root, "scan_parameters/n"), buf, sizeof buf));
    assert_string_equal(buf, "4"); /* trimmed; the first of its name */
    assert_true(tsr__xml_text(&x, tsr__xml_child(&x, second, "n"), buf, sizeof buf));
    assert_string_equal(buf, "80");
    assert_true(tsr__xml_text(&x, tsr__xml_child(&x, root, "cdata"), buf, sizeof buf));
    assert_string_equal(buf, "after"); /* CDATA is skipped */
    assert_true(tsr__xml_text(&x, tsr__xml_child(&x, root, "dotted.name"), buf, sizeof buf));
    assert_string_equal(buf, "[1.5, 2.5]");
    assert_int_equal(tsr__xml_path(&x, root, "scan_parameters/missing"), -1);
    assert_false(tsr__xml_text(&x, -1, buf, sizeof buf));
    assert_string_equal(buf, "");
    /* truncation keeps a terminated prefix */
    char small[4];
    tsr__xml_attr(&x, rf, "filename", small, sizeof small);
    assert_string_equal(small, "x<1");
    tsr__xml_free(&x);
}

static void test_errors(void **state)
{
    (void)state;
    static const struct {
        const char *doc, *want;
    } cases[] = {
        {"<a><b></a>", "end tag </a> at byte 6 does not match <b>"},
        {"<a>", "ends inside <a>"},
        {"</a>", "without a start tag"},
        {"<a><!-- x</a>", "unterminated comment at byte 3"},
        {"<a x='1></a>", "unterminated tag <a>"},
        {"<a>< b/></a>", "'<' not followed by a tag name at byte 3"},
        {"<a b='<'>", "ends inside <a>"},
        {"text only", "no XML element"},
        {"", "no XML element"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tsr__xml_t x;
        char err[256] = "";
        int rc = tsr__xml_parse(&x, ctx, cases[i].doc, strlen(cases[i].doc), err, sizeof err);
        tsr__xml_free(&x);
        if (rc != TSR_ECORRUPT || !strstr(err, cases[i].want))
            fail_msg("'%s': rc %d, message '%s', expected '%s'", cases[i].doc, rc, err,
                     cases[i].want);
    }
    /* nesting deeper than 64 */
    char deep[70 * 3 + 1];
    for (int i = 0; i < 70; i++)
        memcpy(deep + 3 * i, "<a>", 3);
    tsr__xml_t x;
    char err[256];
    assert_int_equal(tsr__xml_parse(&x, ctx, deep, 210, err, sizeof err), TSR_ECORRUPT);
    assert_non_null(strstr(err, "deeper than 64"));
    tsr__xml_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_and_values),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

/* Unit tests for common/strbuf.c: JSON string escaping, printf, the cap
 * and handing the text over. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "common/strbuf.h"

#include <stdlib.h>
#include <string.h>

static void test_strbuf_json_str_escapes(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_strbuf_json_str(&b, "a\"b\\c\nd\te\x01"
                           "f\r\x1fg\x7f");
    assert_false(ps_strbuf_failed(&b));
    assert_string_equal(b.data,
                        "\"a\\\"b\\\\c\\nd\\te\\u0001f\\u000d\\u001fg\x7f\"");
    assert_int_equal(b.len, strlen(b.data));
    ps_strbuf_free(&b);
}

static void test_strbuf_json_str_utf8_and_null(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_strbuf_json_str(&b, "caf\xc3\xa9"); /* UTF-8 passes through */
    ps_strbuf_add(&b, ",", 1);
    ps_strbuf_json_str(&b, NULL); /* NULL is the empty string */
    assert_string_equal(b.data, "\"caf\xc3\xa9\",\"\"");
    ps_strbuf_free(&b);
}

static void test_strbuf_printf_and_take(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 0);
    ps_strbuf_printf(&b, "{\"n\":%d,", 42);
    ps_strbuf_add(&b, "\"s\":", 4);
    ps_strbuf_json_str(&b, "x");
    ps_strbuf_add(&b, "}", 1);
    /* Long enough to force several reallocations. */
    for (int i = 0; i < 1000; i++)
        ps_strbuf_printf(&b, "%04d", i);
    assert_false(ps_strbuf_failed(&b));
    assert_int_equal(b.len, strlen("{\"n\":42,\"s\":\"x\"}") + 4000);
    assert_memory_equal(b.data, "{\"n\":42,\"s\":\"x\"}0000000100020003", 32);
    char *s = ps_strbuf_take(&b);
    assert_non_null(s);
    assert_int_equal(strlen(s), 4016);
    assert_string_equal(s + 4012, "0999");
    free(s);
    /* take resets the buffer, which is usable again. */
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    char *empty = ps_strbuf_take(&b);
    assert_non_null(empty);
    assert_string_equal(empty, "");
    free(empty);
    ps_strbuf_free(&b);
}

static void test_strbuf_add_cap_fails(void **st)
{
    (void)st;
    ps_strbuf b;
    ps_strbuf_init(&b, 10);
    ps_strbuf_add(&b, "12345678", 8);
    ps_strbuf_add(&b, "9A", 2); /* exactly the cap: fine */
    assert_false(ps_strbuf_failed(&b));
    assert_string_equal(b.data, "123456789A");
    ps_strbuf_add(&b, "B", 1); /* one over */
    assert_true(ps_strbuf_failed(&b));
    ps_strbuf_add(&b, "", 0); /* and it stays failed */
    assert_true(ps_strbuf_failed(&b));
    assert_null(ps_strbuf_take(&b));
    /* take reset it, keeping the cap. */
    assert_false(ps_strbuf_failed(&b));
    ps_strbuf_printf(&b, "%s", "0123456789X");
    assert_true(ps_strbuf_failed(&b));
    ps_strbuf_free(&b);

    /* An escape that crosses the cap fails too. */
    ps_strbuf_init(&b, 5);
    ps_strbuf_json_str(&b, "ab\n");
    assert_true(ps_strbuf_failed(&b));
    ps_strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_json_str_escapes),
        cmocka_unit_test(test_strbuf_json_str_utf8_and_null),
        cmocka_unit_test(test_strbuf_printf_and_take),
        cmocka_unit_test(test_strbuf_add_cap_fails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

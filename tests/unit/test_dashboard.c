/* Unit tests for server/dashboard.c: the embedded page is the source file's
 * bytes, NUL-terminated, and self-contained (nothing loaded from elsewhere,
 * so it works offline). PS_DASHBOARD_SRC is server/dashboard.html. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dashboard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_dashboard_html_matches_source(void **st)
{
    (void)st;
    FILE *f = fopen(PS_DASHBOARD_SRC, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    char *src = malloc((size_t)n);
    assert_non_null(src);
    assert_int_equal(fread(src, 1, (size_t)n, f), (size_t)n);
    fclose(f);

    size_t len = 0;
    const char *page = ps_dashboard_html(&len);
    assert_int_equal(len, (size_t)n);
    assert_memory_equal(page, src, len);
    free(src);
}

static void test_dashboard_html_nul_terminated(void **st)
{
    (void)st;
    size_t len = 0;
    const char *page = ps_dashboard_html(&len);
    assert_int_equal(page[len], '\0');
    assert_int_equal(strlen(page), len);             /* no NUL inside */
    assert_ptr_equal(ps_dashboard_html(NULL), page); /* len is optional */
    assert_int_equal(strncmp(page, "<!DOCTYPE html>", 15), 0);
}

static void test_dashboard_html_self_contained(void **st)
{
    (void)st;
    const char *page = ps_dashboard_html(NULL);
    static const char *const outside[] = {
        "http://", "https://", "//cdn", "<link", "@import", "url(", " src=",
    };
    for (size_t i = 0; i < sizeof(outside) / sizeof(outside[0]); i++) {
        if (strstr(page, outside[i]) != NULL)
            fail_msg("the page refers to something outside it: '%s'",
                     outside[i]);
    }
    /* It polls the server it came from, by a relative URL. */
    assert_non_null(strstr(page, "fetch('status'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dashboard_html_matches_source),
        cmocka_unit_test(test_dashboard_html_nul_terminated),
        cmocka_unit_test(test_dashboard_html_self_contained),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

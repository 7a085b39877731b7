/*  test_log.c - a log line cannot be forged: what a peer sends (a host
    name, a task name, a reason) goes into messages, so every control
    character is shown as \xNN and the line ends where mp_log ends it; and
    a peer cannot fill the disk: warnings it causes at will are rate
    limited (mp__ratelimit). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "base/log.h"
#include "mp.h"

/* What one mp_log call writes to stderr. */
static size_t logged(char *out, size_t size, const char *fmt, const char *arg)
{
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    mp_log(MP_LOG_ERROR, "test", fmt, arg);
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, size - 1);
    close(fds[0]);
    assert_true(n > 0);
    out[n] = '\0';
    return (size_t)n;
}

static void control_characters_are_shown_not_obeyed(void **state)
{
    (void)state;
    char out[2048];
    size_t n = logged(out, sizeof out, "host %s ready",
                      "evil\n2026-01-01T00:00:00.000Z INFO mp-broker[1]: forged\x1b[31m\r\x7f"
                      "\xc2\x9b"
                      "1m caf\xc3\xa9");
    assert_int_equal(out[n - 1], '\n');
    assert_null(memchr(out, '\n', n - 1)); /* one line */
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char c = (unsigned char)out[i];
        assert_true(c >= 0x20 && c != 0x7f);
        assert_false(c == 0xc2 && (unsigned char)out[i + 1] >= 0x80 &&
                     (unsigned char)out[i + 1] <= 0x9f); /* C1 (CSI) as UTF-8 */
    }
    assert_non_null(strstr(out, "evil\\x0a2026-01-01T"));
    assert_non_null(strstr(out, "forged\\x1b[31m\\x0d\\x7f\\x9b1m caf\xc3\xa9 ready"));
}

static void a_long_message_is_cut_within_one_line(void **state)
{
    (void)state;
    char big[5000], out[4096];
    memset(big, '\n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    size_t n = logged(out, sizeof out, "%s", big);
    assert_true(n <= 1024);
    assert_int_equal(out[n - 1], '\n');
    assert_null(memchr(out, '\n', n - 1));
}

static void a_flood_of_warnings_is_cut_to_a_burst(void **state)
{
    (void)state;
    mp__ratelimit_t rl = {0};
    int allowed = 0;
    for (int i = 0; i < 100000; i++)
        allowed += mp__ratelimit(&rl, "test", "malformed messages");
    assert_int_equal(allowed, 20);
    assert_int_equal(rl.suppressed, 100000 - 20);
    rl.start_ns -= 11 * 1000000000ull; /* the window turns over: one summary line */
    char out[512];
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    int saved = dup(STDERR_FILENO);
    dup2(fds[1], STDERR_FILENO);
    bool again = mp__ratelimit(&rl, "test", "malformed messages");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    ssize_t n = read(fds[0], out, sizeof out - 1);
    close(fds[0]);
    assert_true(again);
    assert_true(n > 0);
    out[n] = '\0';
    assert_non_null(strstr(out, "... 99980 more malformed messages in the last 1"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(control_characters_are_shown_not_obeyed),
        cmocka_unit_test(a_long_message_is_cut_within_one_line),
        cmocka_unit_test(a_flood_of_warnings_is_cut_to_a_burst),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

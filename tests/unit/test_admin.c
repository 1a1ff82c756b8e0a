/*
 * test_admin.c - admin socket frames: round trips and malformed input,
 * and the reason names used on the command line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "admin/admin.h"

static void
test_request_round_trip(void **state)
{
	struct adm_msg m, d;
	struct wb b;
	char err[256];

	(void)state;
	adm_msg_init(&m);
	m.argv[m.argc++] = strdup("issue");
	m.argv[m.argc++] = strdup("--account");
	m.argv[m.argc++] = strdup("alice");
	assert_true(adm_msg_attach(&m, "csr", "\x30\x82\x01", 3));
	wb_init(&b);
	assert_true(adm_request_encode(&b, &m));
	assert_int_equal(be32_get(b.data), b.len - 4);
	adm_msg_init(&d);
	assert_true(adm_request_parse(&d, b.data + 4, b.len - 4, err,
	    sizeof(err)));
	assert_int_equal(d.argc, 3);
	assert_string_equal(d.argv[2], "alice");
	assert_non_null(adm_msg_get(&d, "csr"));
	assert_int_equal(adm_msg_get(&d, "csr")->len, 3);
	assert_null(adm_msg_get(&d, "password"));
	adm_msg_cleanup(&d);
	adm_msg_cleanup(&m);
	wb_cleanup(&b);
}

static void
test_reply_round_trip(void **state)
{
	struct adm_msg m, d;
	struct wb b;
	char err[256];

	(void)state;
	adm_msg_init(&m);
	m.code = 1;
	wb_str(&m.out, "out text\n");
	wb_str(&m.err, "mica-admin: failed\n");
	assert_true(adm_msg_attach(&m, "cert", "PEM", 3));
	wb_init(&b);
	assert_true(adm_reply_encode(&b, &m));
	adm_msg_init(&d);
	assert_true(adm_reply_parse(&d, b.data + 4, b.len - 4, err,
	    sizeof(err)));
	assert_int_equal(d.code, 1);
	assert_int_equal(d.out.len, 9);
	assert_memory_equal(d.err.data, "mica-admin: failed\n", 19);
	assert_memory_equal(adm_msg_get(&d, "cert")->data, "PEM", 3);
	adm_msg_cleanup(&d);
	adm_msg_cleanup(&m);
	wb_cleanup(&b);
}

static void
expect_bad(const uint8_t *p, size_t len, const char *want)
{
	struct adm_msg d;
	char err[256] = "";

	adm_msg_init(&d);
	assert_false(adm_request_parse(&d, p, len, err, sizeof(err)));
	assert_string_equal(err, want);
	adm_msg_cleanup(&d);
}

static void
test_request_malformed(void **state)
{
	(void)state;
	expect_bad((const uint8_t *)"", 0,
	    "unsupported admin protocol version");
	expect_bad((const uint8_t *)"\x02\x00\x00\x00\x00", 5,
	    "unsupported admin protocol version");
	expect_bad((const uint8_t *)"\x01\x00", 2, "bad argument count");
	expect_bad((const uint8_t *)"\x01\x00\x41", 3, "bad argument count");
	/* argument length past the end */
	expect_bad((const uint8_t *)"\x01\x00\x01\x00\x09" "ab", 7,
	    "bad argument 0");
	/* NUL inside an argument */
	expect_bad((const uint8_t *)"\x01\x00\x01\x00\x02" "a\0" "\x00\x00",
	    9, "bad argument 0");
	/* no attachment count */
	expect_bad((const uint8_t *)"\x01\x00\x01\x00\x01" "a", 6,
	    "bad attachment count");
	/* too many attachments */
	expect_bad((const uint8_t *)"\x01\x00\x00\x00\x05", 5,
	    "bad attachment count");
	/* attachment name longer than allowed */
	expect_bad((const uint8_t *)"\x01\x00\x00\x00\x01\x40", 6,
	    "bad attachment name");
	/* attachment data past the end */
	expect_bad((const uint8_t *)"\x01\x00\x00\x00\x01\x01" "c"
	    "\x00\x00\x00\x10" "ab", 13, "bad attachment");
	/* trailing bytes */
	expect_bad((const uint8_t *)"\x01\x00\x00\x00\x00" "x", 6,
	    "trailing bytes in request");
}

static void
test_reply_malformed(void **state)
{
	struct adm_msg d;
	char err[256] = "";

	(void)state;
	adm_msg_init(&d);
	assert_false(adm_reply_parse(&d, (const uint8_t *)"\x01\x00"
	    "\x00\x00\x00\x09" "ab", 8, err, sizeof(err)));
	assert_string_equal(err, "malformed reply from micad");
	adm_msg_cleanup(&d);
}

static void
test_reasons(void **state)
{
	(void)state;
	assert_int_equal(adm_reason_parse("keyCompromise"), 1);
	assert_int_equal(adm_reason_parse("superseded"), 4);
	assert_int_equal(adm_reason_parse("privilegeWithdrawn"), 9);
	/* not for revoke: hold has its own command, CA compromise is not a
	 * leaf reason */
	assert_int_equal(adm_reason_parse("certificateHold"), -1);
	assert_int_equal(adm_reason_parse("cACompromise"), -1);
	assert_int_equal(adm_reason_parse("KEYCOMPROMISE"), -1);
	assert_string_equal(adm_reason_name(6), "certificateHold");
	assert_string_equal(adm_reason_name(7), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_round_trip),
		cmocka_unit_test(test_reply_round_trip),
		cmocka_unit_test(test_request_malformed),
		cmocka_unit_test(test_reply_malformed),
		cmocka_unit_test(test_reasons),
	};

	return cmocka_run_group_tests_name("admin", tests, NULL, NULL);
}

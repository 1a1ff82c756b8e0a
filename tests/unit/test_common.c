/*
 * test_common.c - bounded reader, buffer and serial helpers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/bytes.h"

static void
test_reader_bounds(void **state)
{
	const uint8_t in[] = { 0x00, 0x03, 'a', 'b', 'c', 0x01 };
	struct rd r, sub;
	uint32_t v32;
	uint8_t v8;

	(void)state;
	rd_init(&r, in, sizeof(in));
	assert_true(rd_u16_prefixed(&r, &sub));
	assert_int_equal(rd_left(&sub), 3);
	assert_memory_equal(sub.p, "abc", 3);
	assert_false(rd_u32(&r, &v32));		/* short: one byte left */
	assert_int_equal(rd_left(&r), 1);	/* failed read moved nothing */
	assert_true(rd_u8(&r, &v8));
	assert_int_equal(v8, 1);
	assert_false(rd_u8(&r, &v8));

	/* a declared length past the end fails and consumes nothing */
	const uint8_t bad[] = { 0x00, 0x09, 'a' };
	rd_init(&r, bad, sizeof(bad));
	assert_false(rd_u16_prefixed(&r, &sub));
	assert_int_equal(rd_left(&r), 3);
}

static void
test_writer(void **state)
{
	struct wb b;
	size_t len;
	uint8_t *p;
	int i;

	(void)state;
	wb_init(&b);
	for (i = 0; i < 1000; i++)
		wb_u32(&b, (uint32_t)i);
	assert_true(wb_ok(&b));
	assert_int_equal(b.len, 4000);
	assert_int_equal(be32_get(b.data + 4 * 999), 999);
	p = wb_steal(&b, &len);
	assert_int_equal(len, 4000);
	assert_null(b.data);
	free(p);
}

static void
test_serial(void **state)
{
	uint8_t s[SERIAL_LEN];
	char hex[SERIAL_HEX_LEN];

	(void)state;
	assert_true(serial_parse(s, "0x0A:1b"));
	serial_hex(hex, s);
	assert_string_equal(hex, "0A1B");
	assert_true(serial_parse(s, "7fffffffffffffffffffffffffffffff"));
	serial_hex(hex, s);
	assert_string_equal(hex, "7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF");
	assert_true(serial_parse(s, "00007fffffffffffffffffffffffffffffff"));
	assert_false(serial_parse(s, "1ffffffffffffffffffffffffffffffff"));
	assert_false(serial_parse(s, "xyz"));
	/* a leading minus is refused, not dropped */
	assert_false(serial_parse(s, "-1"));
	assert_false(serial_parse(s, " -0A1B"));
	assert_true(serial_parse(s, "0A-1B"));
	assert_false(serial_parse(s, ""));
	assert_true(serial_parse(s, "0"));
	serial_hex(hex, s);
	assert_string_equal(hex, "00");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_bounds),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_serial),
	};

	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}

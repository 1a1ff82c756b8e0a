/*
 * test_repl.c - the replication stream's codec (ca/repl_proto.c): frames
 * round-trip, and malformed input (unknown types, over-long lengths,
 * short payloads, bad names) is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "ca/repl.h"

static void
test_follow_roundtrip(void **state)
{
	struct repl_follow f = { 42, { 0 }, 3 }, g;
	uint8_t type;
	uint32_t len;
	char why[256];
	struct wb w;

	(void)state;
	memset(f.prev, 0xab, sizeof(f.prev));
	wb_init(&w);
	repl_follow_put(&w, &f);
	assert_int_equal(w.len, REPL_FRAME_HDR + 48);
	assert_true(repl_frame_hdr(w.data, &type, &len, why, sizeof(why)));
	assert_int_equal(type, REPL_FOLLOW);
	assert_int_equal(len, 48);
	assert_true(repl_follow_parse(w.data + REPL_FRAME_HDR, len, &g));
	assert_int_equal(g.from_seq, 42);
	assert_int_equal(g.epoch, 3);
	assert_memory_equal(g.prev, f.prev, sizeof(f.prev));
	/* short, long, seq 0 */
	assert_false(repl_follow_parse(w.data + REPL_FRAME_HDR, len - 1, &g));
	assert_false(repl_follow_parse(w.data + REPL_FRAME_HDR, len + 1, &g));
	memset(w.data + REPL_FRAME_HDR, 0, 8);
	assert_false(repl_follow_parse(w.data + REPL_FRAME_HDR, len, &g));
	wb_cleanup(&w);
}

static void
test_frame_limits(void **state)
{
	uint8_t hdr[REPL_FRAME_HDR], type;
	uint32_t len;
	char why[256];

	(void)state;
	hdr[0] = 0x99;
	be32_put(hdr + 1, 1);
	why[0] = '\0';
	assert_false(repl_frame_hdr(hdr, &type, &len, why, sizeof(why)));
	assert_non_null(strstr(why, "unknown frame type 0x99"));
	hdr[0] = REPL_HEARTBEAT;
	be32_put(hdr + 1, 25);
	assert_false(repl_frame_hdr(hdr, &type, &len, why, sizeof(why)));
	assert_non_null(strstr(why, "over its limit"));
	hdr[0] = REPL_RECORD;
	be32_put(hdr + 1, 0xffffffffU);
	assert_false(repl_frame_hdr(hdr, &type, &len, why, sizeof(why)));
	be32_put(hdr + 1, REPL_FRAME_MAX);
	assert_true(repl_frame_hdr(hdr, &type, &len, why, sizeof(why)));
	hdr[0] = REPL_EPOCH_Q;
	be32_put(hdr + 1, 1);
	assert_false(repl_frame_hdr(hdr, &type, &len, why, sizeof(why)));
}

static void
test_heartbeat_crl(void **state)
{
	struct repl_heartbeat h = { 7, 123456789, 2 }, g;
	struct repl_crl c;
	static const uint8_t der[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };
	uint8_t bad[9 + 2];
	struct wb w;

	(void)state;
	wb_init(&w);
	repl_heartbeat_put(&w, &h);
	assert_true(repl_heartbeat_parse(w.data + REPL_FRAME_HDR, 24, &g));
	assert_int_equal(g.head_seq, 7);
	assert_int_equal(g.time_us, 123456789);
	assert_int_equal(g.epoch, 2);
	assert_false(repl_heartbeat_parse(w.data + REPL_FRAME_HDR, 23, &g));
	w.len = 0;
	repl_crl_put(&w, 1, 99, der, sizeof(der));
	assert_true(repl_crl_parse(w.data + REPL_FRAME_HDR,
	    w.len - REPL_FRAME_HDR, &c));
	assert_int_equal(c.kind, 1);
	assert_int_equal(c.number, 99);
	assert_int_equal(c.der_len, sizeof(der));
	assert_memory_equal(c.der, der, sizeof(der));
	/* too short, bad kind, not a SEQUENCE */
	assert_false(repl_crl_parse(w.data + REPL_FRAME_HDR, 10, &c));
	memset(bad, 0, sizeof(bad));
	bad[0] = 2;
	bad[9] = 0x30;
	assert_false(repl_crl_parse(bad, sizeof(bad), &c));
	bad[0] = 0;
	bad[9] = 0x31;
	assert_false(repl_crl_parse(bad, sizeof(bad), &c));
	wb_cleanup(&w);
}

static void
test_names_and_seq(void **state)
{
	char name[REPL_NAME_MAX + 1], longcn[128];
	uint8_t rec[JOURNAL_HDR_LEN + 1 + 8];
	uint64_t seq;

	(void)state;
	assert_true(repl_cn_name("replica:sb1", name, sizeof(name)));
	assert_string_equal(name, "sb1");
	assert_false(repl_cn_name("replica:", name, sizeof(name)));
	assert_false(repl_cn_name("replica:a/b", name, sizeof(name)));
	assert_false(repl_cn_name("replica:A", name, sizeof(name)));
	assert_false(repl_cn_name("server:x", name, sizeof(name)));
	memset(longcn, 'a', sizeof(longcn));
	memcpy(longcn, "replica:", 8);
	longcn[8 + REPL_NAME_MAX + 1] = '\0';
	assert_false(repl_cn_name(longcn, name, sizeof(name)));
	memset(rec, 0, sizeof(rec));
	be64_put(rec + JOURNAL_HDR_LEN + 1, 77);
	assert_true(repl_record_seq(rec, sizeof(rec), &seq));
	assert_int_equal(seq, 77);
	assert_false(repl_record_seq(rec, sizeof(rec) - 1, &seq));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_follow_roundtrip),
		cmocka_unit_test(test_frame_limits),
		cmocka_unit_test(test_heartbeat_crl),
		cmocka_unit_test(test_names_and_seq),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

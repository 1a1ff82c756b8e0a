/*
 * test_journal.c - the change journal's record codec on good and
 * malformed input (every truncation, every flipped byte, bad ops, bad
 * lengths), and the segment scanner's chain checks (gap, reorder, torn
 * tail) on files written by the appender.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/bytes.h"
#include "store/journal.h"

static const uint8_t zero[JOURNAL_HASH_LEN];

/* A record with two ops (a put and a delete) into b. */
static void
make_rec(struct wb *b, uint64_t seq, const uint8_t *prev, uint8_t *hash)
{
	struct wb ops;

	wb_init(&ops);
	assert_true(journal_op_put(&ops, JOURNAL_OP_PUT, JOURNAL_DB_CERTS,
	    "0123456789abcdef", 16, "value", 5));
	assert_true(journal_op_put(&ops, JOURNAL_OP_DEL, JOURNAL_DB_META,
	    "key", 3, NULL, 0));
	assert_true(journal_rec_encode(b, seq, 1, 1700000000000000ULL, prev,
	    2, ops.data, ops.len, hash));
	wb_cleanup(&ops);
}

static void
test_roundtrip(void **state)
{
	struct journal_rec r;
	struct journal_op op;
	struct rd rd;
	struct wb b;
	uint8_t h[JOURNAL_HASH_LEN];
	size_t used;
	char why[256];

	(void)state;
	wb_init(&b);
	make_rec(&b, 7, zero, h);
	assert_int_equal(journal_rec_parse(&r, &used, b.data, b.len, why,
	    sizeof(why)), JOURNAL_REC_OK);
	assert_int_equal(used, b.len);
	assert_true(r.seq == 7 && r.epoch == 1 && r.num_ops == 2);
	assert_memory_equal(r.hash, h, JOURNAL_HASH_LEN);
	rd_init(&rd, r.ops, r.ops_len);
	assert_true(journal_op_next(&rd, &op));
	assert_int_equal(op.type, JOURNAL_OP_PUT);
	assert_int_equal(op.key_len, 16);
	assert_int_equal(op.val_len, 5);
	assert_memory_equal(op.val, "value", 5);
	assert_true(journal_op_next(&rd, &op));
	assert_int_equal(op.type, JOURNAL_OP_DEL);
	assert_int_equal(op.db, JOURNAL_DB_META);
	assert_int_equal(rd_left(&rd), 0);
	/* the encoder refuses what the decoder refuses */
	assert_false(journal_op_put(&b, 3, 0, "k", 1, NULL, 0));
	assert_false(journal_op_put(&b, 1, JOURNAL_DB_COUNT, "k", 1, "", 0));
	assert_false(journal_op_put(&b, 1, 0, "", 0, "", 0));
	wb_cleanup(&b);
}

static void
test_truncated_and_flipped(void **state)
{
	struct journal_rec r;
	struct wb b;
	uint8_t h[JOURNAL_HASH_LEN], *copy;
	size_t used, i;
	char why[256];

	(void)state;
	wb_init(&b);
	make_rec(&b, 1, zero, h);
	for (i = 0; i < b.len; i++) {
		why[0] = '\0';
		assert_int_equal(journal_rec_parse(&r, &used, b.data, i, why,
		    sizeof(why)), JOURNAL_REC_SHORT);
		assert_non_null(strstr(why, "truncated"));
	}
	copy = malloc(b.len);
	assert_non_null(copy);
	for (i = 0; i < b.len; i++) {
		memcpy(copy, b.data, b.len);
		copy[i] ^= 0x40;
		why[0] = '\0';
		assert_int_not_equal(journal_rec_parse(&r, &used, copy, b.len,
		    why, sizeof(why)), JOURNAL_REC_OK);
		assert_true(why[0] != '\0');
	}
	/* a flipped body byte is a hash mismatch, named as such */
	memcpy(copy, b.data, b.len);
	copy[JOURNAL_HDR_LEN + 3] ^= 1;
	assert_int_equal(journal_rec_parse(&r, &used, copy, b.len, why,
	    sizeof(why)), JOURNAL_REC_BAD);
	assert_non_null(strstr(why, "hash does not match"));
	free(copy);
	wb_cleanup(&b);
}

/* A record whose hash is right but whose content is not. */
static void
raw_rec(struct wb *b, uint8_t ver, uint64_t seq, uint32_t num_ops,
    const uint8_t *ops, size_t ops_len)
{
	uint8_t h[JOURNAL_HASH_LEN];
	size_t start;

	wb_u32(b, JOURNAL_MAGIC);
	wb_u32(b, (uint32_t)(JOURNAL_BODY_MIN + ops_len));
	start = b->len;
	wb_u8(b, ver);
	wb_u64(b, seq);
	wb_u64(b, 1);
	wb_u64(b, 0);
	wb_put(b, zero, sizeof(zero));
	wb_u32(b, num_ops);
	wb_put(b, ops, ops_len);
	crypto_generichash(h, sizeof(h), b->data + start, b->len - start,
	    NULL, 0);
	wb_put(b, h, sizeof(h));
}

static void
expect_bad(struct wb *b, const char *what)
{
	struct journal_rec r;
	size_t used;
	char why[256];

	why[0] = '\0';
	assert_int_equal(journal_rec_parse(&r, &used, b->data, b->len, why,
	    sizeof(why)), JOURNAL_REC_BAD);
	if (strstr(why, what) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, what);
	wb_cleanup(b);
	wb_init(b);
}

static void
test_malformed(void **state)
{
	static const uint8_t badtype[] = { 3, 0, 0, 1, 'k' };
	static const uint8_t baddb[] = { 2, 99, 0, 1, 'k' };
	static const uint8_t nokey[] = { 2, 0, 0, 0 };
	static const uint8_t longval[] = { 1, 0, 0, 1, 'k', 0, 0, 0, 9, 'v' };
	static const uint8_t del[] = { 2, 0, 0, 1, 'k' };
	struct wb b;

	(void)state;
	wb_init(&b);
	raw_rec(&b, 1, 1, 1, badtype, sizeof(badtype));
	expect_bad(&b, "op 1 of 1 does not decode");
	raw_rec(&b, 1, 1, 1, baddb, sizeof(baddb));
	expect_bad(&b, "does not decode");
	raw_rec(&b, 1, 1, 1, nokey, sizeof(nokey));
	expect_bad(&b, "does not decode");
	raw_rec(&b, 1, 1, 1, longval, sizeof(longval));
	expect_bad(&b, "does not decode");
	raw_rec(&b, 1, 1, 2, del, sizeof(del));	/* says 2, has 1 */
	expect_bad(&b, "op 2 of 2 does not decode");
	raw_rec(&b, 1, 1, 0, del, sizeof(del));	/* says 0, has 1 */
	expect_bad(&b, "bytes after the last op");
	raw_rec(&b, 2, 1, 1, del, sizeof(del));
	expect_bad(&b, "version 2 not supported");
	raw_rec(&b, 1, 0, 1, del, sizeof(del));
	expect_bad(&b, "sequence number 0");
	/* lengths out of range */
	wb_u32(&b, JOURNAL_MAGIC);
	wb_u32(&b, 3);
	wb_put(&b, zero, sizeof(zero));
	wb_put(&b, zero, sizeof(zero));
	expect_bad(&b, "body length 3 out of range");
	wb_u32(&b, JOURNAL_MAGIC);
	wb_u32(&b, JOURNAL_REC_MAX + 1);
	expect_bad(&b, "out of range");
	wb_u32(&b, 0x12345678);
	wb_u32(&b, 100);
	expect_bad(&b, "bad magic 0x12345678");
	wb_cleanup(&b);
}

/* Writes records from..to (chained from prev) with the appender. */
static void
append_recs(struct journal *j, uint64_t from, uint64_t to, uint8_t *prev)
{
	struct wb b;
	uint64_t s;

	for (s = from; s <= to; s++) {
		wb_init(&b);
		make_rec(&b, s, prev, prev);
		assert_true(journal_append(j, s, b.data, b.len));
		wb_cleanup(&b);
	}
}

static int
count_cb(const struct journal_rec *r, const char *seg, uint64_t off,
    void *arg)
{
	(void)r;
	(void)seg;
	(void)off;
	(*(int *)arg)++;
	return 1;
}

static void
test_scan(void **state)
{
	char dir[] = "/tmp/test_journal.XXXXXX", cmd[512], err[1024];
	struct journal_scan_opts so;
	struct journal_end end;
	struct journal *j;
	uint8_t prev[JOURNAL_HASH_LEN];
	int n = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	memset(&end, 0, sizeof(end));
	/* small segments: every few records a new file */
	j = journal_open(dir, 600, &end, err, sizeof(err));
	assert_non_null(j);
	memset(prev, 0, sizeof(prev));
	append_recs(j, 1, 20, prev);
	journal_close(j);
	memset(&so, 0, sizeof(so));
	assert_true(journal_scan(dir, &so, count_cb, &n, &end, err,
	    sizeof(err)));
	assert_int_equal(n, 20);
	assert_true(end.last_seq == 20 && end.first_seq == 1);
	assert_true(end.num_segments > 2);
	assert_memory_equal(end.last_hash, prev, JOURNAL_HASH_LEN);
	/* from 15 with the wrong previous hash: another history */
	so.from = 15;
	so.from_prev = zero;
	assert_false(journal_scan(dir, &so, NULL, NULL, &end, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "record seq 15"));
	assert_non_null(strstr(err, "another history"));
	/* a torn tail: an error for a restore, cut off at start-up */
	snprintf(cmd, sizeof(cmd), "f=$(ls %s/*.mjnl | tail -n 1); "
	    "truncate -s -3 \"$f\"", dir);
	assert_int_equal(system(cmd), 0);
	memset(&so, 0, sizeof(so));
	assert_false(journal_scan(dir, &so, NULL, NULL, &end, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "record seq 20"));
	assert_non_null(strstr(err, "truncated"));
	so.torn_ok = 1;
	assert_true(journal_scan(dir, &so, NULL, NULL, &end, err,
	    sizeof(err)));
	assert_true(end.torn && end.last_seq == 19);
	/* the appender cuts it and goes on from 20 */
	j = journal_open(dir, 600, &end, err, sizeof(err));
	assert_non_null(j);
	memcpy(prev, end.last_hash, sizeof(prev));
	append_recs(j, 20, 21, prev);
	journal_close(j);
	so.torn_ok = 0;
	assert_true(journal_scan(dir, &so, NULL, NULL, &end, err,
	    sizeof(err)));
	assert_true(end.last_seq == 21 && !end.torn);
	/* a missing middle segment is a gap */
	snprintf(cmd, sizeof(cmd), "rm -f $(ls %s/*.mjnl | sed -n 2p)", dir);
	assert_int_equal(system(cmd), 0);
	assert_false(journal_scan(dir, &so, NULL, NULL, &end, err,
	    sizeof(err)));
	assert_non_null(strstr(err, "records missing"));
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_truncated_and_flipped),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_scan),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}

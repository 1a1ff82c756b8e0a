/*
 * test_hwm.c - the high-water mark file: parse, refuse corrupt and
 * truncated files, atomic rewrite keeping unknown keys, raise.
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

#include "common/hwm.h"

#define GOOD	"mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number 27\n" \
		"rev_seq 113\njournal_seq 0\nfuture_key some-value\nend\n"

static char dir[] = "/tmp/test_hwm.XXXXXX";
static char path[256];

static void
put(const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	fclose(f);
}

static char *
slurp(void)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void
test_parse_good(void **state)
{
	struct hwm *h = hwm_new("x");
	struct hwm_state st;
	char err[256];

	(void)state;
	assert_true(hwm_parse(h, GOOD, strlen(GOOD), err, sizeof(err)));
	hwm_get(h, &st);
	assert_true(st.store_id == 0xdeadbeefULL);
	assert_true(st.crl_number == 27);
	assert_true(st.rev_seq == 113);
	assert_true(st.journal_seq == 0);
	hwm_free(h);
}

static void
expect_bad(const char *text, const char *want)
{
	struct hwm *h = hwm_new("x");
	char err[256] = "";

	assert_false(hwm_parse(h, text, strlen(text), err, sizeof(err)));
	if (strstr(err, want) == NULL)
		fail_msg("input %s: error \"%s\" lacks \"%s\"", text, err,
		    want);
	hwm_free(h);
}

static void
test_parse_bad(void **state)
{
	char big[HWM_FILE_MAX + 2];
	size_t i, cut;

	(void)state;
	expect_bad("", "empty file");
	expect_bad("mica-hwm 2\nend\n", "version 2");
	expect_bad("hello\n", "not a mica high-water mark");
	expect_bad("mica-hwm 01\nend\n", "not a mica high-water mark");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number 27\n",
	    "no \"end\" line");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number 2",
	    "truncated (no newline");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\nrev_seq 1\nend\n",
	    "missing crl_number");
	expect_bad("mica-hwm 1\ncrl_number 1\nrev_seq 1\nend\n",
	    "missing store_id");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number 1\n"
	    "crl_number 2\nrev_seq 1\nend\n", "crl_number given twice");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number "
	    "18446744073709551616\nrev_seq 1\nend\n", "bad value");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number -1\n"
	    "rev_seq 1\nend\n", "bad value");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number 007\n"
	    "rev_seq 1\nend\n", "bad value");
	expect_bad("mica-hwm 1\nstore_id DEADBEEF\ncrl_number 1\n"
	    "rev_seq 1\nend\n", "16 lowercase hex digits");
	expect_bad("mica-hwm 1\nstore_id 00000000deadbeef\ncrl_number 1\n"
	    "rev_seq 1\nend\ncrl_number 9\n", "text after \"end\"");
	expect_bad("mica-hwm 1\nnospace\nend\n", "not \"key value\"");
	expect_bad("mica-hwm 1\nBad-Key 1\nend\n", "bad key or value");
	expect_bad("mica-hwm 1\nk a b\nend\n", "bad key or value");
	expect_bad("mica-hwm 1\nx y\nx z\nend\n", "x given twice");
	/* a NUL inside a line */
	{
		struct hwm *h = hwm_new("x");
		char err[256];
		const char t[] = "mica-hwm 1\ncrl_number 1\0 2\nend\n";

		assert_false(hwm_parse(h, t, sizeof(t) - 1, err,
		    sizeof(err)));
		assert_non_null(strstr(err, "binary"));
		hwm_free(h);
	}
	/* too big */
	memset(big, 'a', sizeof(big));
	{
		struct hwm *h = hwm_new("x");
		char err[256];

		assert_false(hwm_parse(h, big, sizeof(big), err, sizeof(err)));
		assert_non_null(strstr(err, "larger than"));
		hwm_free(h);
	}
	/* every truncation of a good file is refused */
	for (cut = 0; cut < strlen(GOOD); cut++) {
		struct hwm *h = hwm_new("x");
		char err[256];

		assert_false(hwm_parse(h, GOOD, cut, err, sizeof(err)));
		hwm_free(h);
	}
	/* one-byte corruptions never parse to other numbers silently:
	 * either refused, or the same values (a changed unknown key) */
	for (i = 0; i < strlen(GOOD); i++) {
		char t[sizeof(GOOD)];
		struct hwm *h = hwm_new("x");
		struct hwm_state st;
		char err[256];

		memcpy(t, GOOD, sizeof(GOOD));
		t[i] = '\n';
		if (hwm_parse(h, t, strlen(GOOD), err, sizeof(err))) {
			hwm_get(h, &st);
			assert_true(st.crl_number == 27 ||
			    (i > 0 && GOOD[i] == '\n'));
		}
		hwm_free(h);
	}
}

static void
test_load_write(void **state)
{
	struct hwm *h = NULL;
	struct hwm_state st;
	struct stat sb;
	char err[256];

	(void)state;
	unlink(path);
	assert_int_equal(hwm_load(&h, path, err, sizeof(err)), HWM_MISSING);
	assert_non_null(h);
	hwm_get(h, &st);
	assert_true(st.crl_number == 0 && st.rev_seq == 0);
	st.store_id = 0x0123456789abcdefULL;
	st.crl_number = 5;
	st.rev_seq = 3;
	assert_true(hwm_set(h, &st));
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0600);
	assert_string_equal(slurp(), "mica-hwm 1\nstore_id 0123456789abcdef\n"
	    "crl_number 5\nrev_seq 3\njournal_seq 0\nend\n");
	/* raise: only upwards, each value on its own */
	assert_true(hwm_raise(h, 4, 9));
	hwm_get(h, &st);
	assert_true(st.crl_number == 5 && st.rev_seq == 9);
	assert_true(hwm_raise(h, 6, 1));
	hwm_free(h);
	h = NULL;
	assert_int_equal(hwm_load(&h, path, err, sizeof(err)), HWM_OK);
	hwm_get(h, &st);
	assert_true(st.crl_number == 6 && st.rev_seq == 9);
	hwm_free(h);

	/* unknown keys survive a rewrite */
	put(GOOD, strlen(GOOD));
	assert_int_equal(hwm_load(&h, path, err, sizeof(err)), HWM_OK);
	assert_true(hwm_raise(h, 28, 113));
	assert_string_equal(slurp(), "mica-hwm 1\nstore_id 00000000deadbeef\n"
	    "crl_number 28\nrev_seq 113\njournal_seq 0\n"
	    "future_key some-value\nend\n");
	hwm_free(h);
	h = NULL;

	/* a truncated file on disk is HWM_CORRUPT with the path */
	put(GOOD, 40);
	assert_int_equal(hwm_load(&h, path, err, sizeof(err)), HWM_CORRUPT);
	assert_null(h);
	assert_non_null(strstr(err, path));
	assert_non_null(strstr(err, "truncated"));
	put("", 0);
	assert_int_equal(hwm_load(&h, path, err, sizeof(err)), HWM_CORRUPT);
	assert_non_null(strstr(err, "empty file"));
	/* a directory is not a mark */
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(hwm_load(&h, path, err, sizeof(err)), HWM_IO);
	rmdir(path);
	/* a write into a missing directory fails cleanly */
	h = hwm_new("/nonexistent-dir/hwm");
	assert_false(hwm_raise(h, 1, 1));
	hwm_get(h, &st);
	assert_true(st.crl_number == 0);
	hwm_free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_good),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_load_write),
	};
	int rc;

	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(path, sizeof(path), "%s/hwm", dir);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(path);
	rmdir(dir);
	return rc;
}

/*
 * test_notify.c - the notify hook: JSON payload, delivery with stdin and
 * MICA_EVENT, retry after a failure, timeout kill; the expiry thresholds.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "ca/expiry.h"
#include "ca/notify.h"
#include "common/bytes.h"
#include "common/log.h"

static char dir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mica-notify.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static char *
slurp(const char *path)
{
	static char buf[8192];
	FILE *f;
	size_t n;

	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Waits (bounded number of polls, no timing assertion) for cond. */
static int
wait_for(struct notify *n, uint64_t delivered, uint64_t failures)
{
	int i;

	for (i = 0; i < 600; i++) {
		if (notify_stat_delivered(n) >= delivered &&
		    notify_stat_failures(n) >= failures)
			return 1;
		usleep(20000);
	}
	return 0;
}

static void
test_json(void **state)
{
	struct notify_info ni;
	struct wb b;
	uint8_t s[16] = { 0 }, ns[16] = { 0 };

	(void)state;
	s[15] = 0xab;
	ns[14] = 0x01;
	memset(&ni, 0, sizeof(ni));
	ni.event = "request.approved";
	ni.serial = s;
	ni.new_serial = ns;
	ni.account = "al\"ice";
	ni.request_id = 7;
	ni.actor = "admin(uid=0)";
	ni.time = 86400;
	wb_init(&b);
	notify_json(&b, &ni, 3);
	wb_u8(&b, 0);
	assert_true(wb_ok(&b));
	assert_string_equal((char *)b.data,
	    "{\"event\":\"request.approved\",\"seq\":3,\"time\":86400,"
	    "\"time_iso\":\"1970-01-02T00:00:00Z\",\"serial\":\"AB\","
	    "\"account\":\"al\\\"ice\",\"request_id\":7,"
	    "\"new_serial\":\"0100\",\"actor\":\"admin(uid=0)\"}");
	wb_cleanup(&b);
}

static void
test_deliver(void **state)
{
	struct notify_opts o;
	struct notify_info ni;
	struct notify *n;
	char cmd[256], path[128];
	uint8_t s[16] = { 0 };
	const char *txt;

	(void)state;
	s[15] = 0x42;
	snprintf(path, sizeof(path), "%s/out", dir);
	snprintf(cmd, sizeof(cmd), "{ printf '%%s ' \"$MICA_EVENT\"; cat; } "
	    ">> %s", path);
	memset(&o, 0, sizeof(o));
	o.command = cmd;
	assert_non_null(n = notify_new(&o));
	memset(&ni, 0, sizeof(ni));
	ni.event = "cert.revoked";
	ni.serial = s;
	ni.reason = "keyCompromise";
	ni.time = 1;
	assert_int_equal(notify_event(n, &ni), 1);
	ni.event = "cert.hold";
	assert_int_equal(notify_event(n, &ni), 1);
	assert_true(wait_for(n, 2, 0));
	assert_int_equal(notify_stat_failures(n), 0);
	assert_int_equal(notify_stat_queued(n), 0);
	notify_free(n);
	assert_non_null(txt = slurp(path));
	assert_string_equal(txt,
	    "cert.revoked {\"event\":\"cert.revoked\",\"seq\":1,"
	    "\"time\":1,\"time_iso\":\"1970-01-01T00:00:01Z\","
	    "\"serial\":\"42\",\"reason\":\"keyCompromise\"}\n"
	    "cert.hold {\"event\":\"cert.hold\",\"seq\":2,"
	    "\"time\":1,\"time_iso\":\"1970-01-01T00:00:01Z\","
	    "\"serial\":\"42\",\"reason\":\"keyCompromise\"}\n");
}

/* Fails the first time (no marker yet), succeeds on the retry. */
static void
test_retry(void **state)
{
	struct notify_opts o;
	struct notify_info ni;
	struct notify *n;
	char cmd[512];
	const char *txt;
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/retry", dir);
	snprintf(cmd, sizeof(cmd), "if [ -e %s.mark ]; then cat > %s; else "
	    "touch %s.mark; exit 3; fi", path, path, path);
	memset(&o, 0, sizeof(o));
	o.command = cmd;
	o.retry_delay = 1;
	assert_non_null(n = notify_new(&o));
	memset(&ni, 0, sizeof(ni));
	ni.event = "request.created";
	ni.request_id = 9;
	ni.time = 2;
	assert_int_equal(notify_event(n, &ni), 1);
	assert_true(wait_for(n, 1, 1));
	assert_int_equal(notify_stat_failures(n), 1);
	assert_int_equal(notify_stat_delivered(n), 1);
	notify_free(n);
	assert_non_null(txt = slurp(path));
	assert_non_null(strstr(txt, "\"request_id\":9"));
}

/* A command that hangs is killed at the timeout and counted failed;
 * at shutdown the event is still queued (logged undelivered). */
static void
test_timeout(void **state)
{
	struct notify_opts o;
	struct notify_info ni;
	struct notify *n;

	(void)state;
	memset(&o, 0, sizeof(o));
	o.command = "sleep 30";
	o.timeout = 1;
	o.retry_delay = 60;
	assert_non_null(n = notify_new(&o));
	memset(&ni, 0, sizeof(ni));
	ni.event = "cert.expiring";
	assert_int_equal(notify_event(n, &ni), 1);
	assert_true(wait_for(n, 0, 1));
	assert_int_equal(notify_stat_delivered(n), 0);
	assert_int_equal(notify_stat_queued(n), 1);
	notify_free(n);
}

static void
test_no_command(void **state)
{
	struct notify_opts o;
	struct notify_info ni;
	struct notify *n;

	(void)state;
	memset(&o, 0, sizeof(o));
	assert_non_null(n = notify_new(&o));
	memset(&ni, 0, sizeof(ni));
	ni.event = "cert.revoked";
	assert_int_equal(notify_event(n, &ni), 1);
	assert_int_equal(notify_stat_queued(n), 0);
	assert_int_equal(notify_event(NULL, &ni), 1);
	notify_free(n);
}

static void
test_thresholds(void **state)
{
	(void)state;
	/* days_left as a person counts: a 5-day certificate seen a
	 * minute after issue has 5 days left, not 4 */
	assert_int_equal(expiry_days_left(5 * 86400 - 60), 5);
	assert_int_equal(expiry_days_left(5 * 86400), 5);
	assert_int_equal(expiry_days_left(5 * 86400 + 1), 6);
	assert_int_equal(expiry_days_left(4 * 86400 + 1), 5);
	assert_int_equal(expiry_days_left(1), 1);
	assert_int_equal(expiry_days_left(0), 0);
	assert_int_equal(expiry_days_left(-86400), 0);
	assert_int_equal(expiry_threshold(-5), 0);
	assert_int_equal(expiry_threshold(0), 0);
	assert_int_equal(expiry_threshold(1), 1);
	assert_int_equal(expiry_threshold(86400), 1);
	assert_int_equal(expiry_threshold(86401), 7);
	assert_int_equal(expiry_threshold(5 * 86400), 7);
	assert_int_equal(expiry_threshold(7 * 86400), 7);
	assert_int_equal(expiry_threshold(7 * 86400 + 1), 30);
	assert_int_equal(expiry_threshold(30 * 86400), 30);
	assert_int_equal(expiry_threshold(30 * 86400 + 1), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_deliver),
		cmocka_unit_test(test_retry),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_no_command),
		cmocka_unit_test(test_thresholds),
	};

	log_init("test_notify", LOG_LVL_WARN);
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}

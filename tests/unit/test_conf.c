/*
 * test_conf.c - mica.conf parsing: defaults, values, and the exact errors
 * for unknown keys, bad values, unknown sections and syntax errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "conf/conf.h"

static char dir[64];
static char path[128];

static void
write_conf(const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	chmod(path, mode);
}

static int
setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/mica-conf.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/mica.conf", dir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);
	rmdir(dir);
	return 0;
}

static void
test_values(void **state)
{
	struct mica_conf c;
	char err[512] = "";
	char want[256];

	(void)state;
	write_conf("# sample\n[ca]\nhttp_url = http://ca.example:80/\n"
	    "default_days = 90\n\n[http]\nlisten = 127.0.0.1:9999\n"
	    "threads = 3\nsigners = 0\nocsp_unknown_revoked = yes\n[policy]\n"
	    "review = auto\nargon2_memlimit = 64M\n[store]\npath = db\n"
	    "[admin]\nallowed_uids = 1000, 1001\n", 0600);
	assert_true(conf_load(&c, path, err, sizeof(err)));
	assert_string_equal(c.ca.http_url, "http://ca.example:80");
	assert_int_equal(c.ca.default_days, 90);
	assert_string_equal(c.http.listen, "127.0.0.1:9999");
	assert_int_equal(c.http.threads, 3);
	assert_int_equal(c.http.signers, 0);
	assert_int_equal(c.http.ocsp_unknown_revoked, 1);
	assert_int_equal(c.policy.review, REVIEW_AUTO);
	assert_int_equal(c.policy.argon2_memlimit, 64ULL << 20);
	snprintf(want, sizeof(want), "%s/db", dir);
	assert_string_equal(c.store.path, want);
	snprintf(want, sizeof(want), "%s/admin.sock", dir);
	assert_string_equal(c.admin.socket, want);
	assert_int_equal(c.admin.num_allowed_uids, 2);
	assert_int_equal(c.admin.allowed_uids[1], 1001);
	/* untouched keys keep their defaults */
	assert_string_equal(c.proto.listen, "127.0.0.1:7700");
	assert_int_equal(c.policy.max_failures, 5);
	/* the flood limits */
	assert_int_equal(c.http.max_per_address, 64);
	assert_int_equal(c.http.shed_start, 75);
	assert_int_equal(c.proto.shed_start, 75);
	write_conf("[http]\nmax_per_address = 1000\nshed_start = 0\n"
	    "[protocol]\nshed_start = 100\n", 0600);
	assert_true(conf_load(&c, path, err, sizeof(err)));
	assert_int_equal(c.http.max_per_address, 1000);
	assert_int_equal(c.http.shed_start, 0);
	assert_int_equal(c.proto.shed_start, 100);
	/* HTTP caches: defaults, then set */
	assert_int_equal(c.http.cache_max_age, 60);
	assert_string_equal(c.http.ban_urls, "");
	assert_int_equal(c.http.ban_timeout_ms, 200);
	write_conf("[http]\ncache_max_age = 0\nban_timeout_ms = 50\n"
	    "ban_urls = http://127.0.0.1:6081, http://[::1]:80/ "
	    "http://cache.example:8080\n", 0600);
	assert_true(conf_load(&c, path, err, sizeof(err)));
	assert_int_equal(c.http.cache_max_age, 0);
	assert_int_equal(c.http.ban_timeout_ms, 50);
}

static void
test_ban_url(void **state)
{
	static const struct {
		const char	*url, *host;
		int		 port;
	} t[] = {
		{ "http://127.0.0.1:6081", "127.0.0.1", 6081 },
		{ "http://127.0.0.1:6081/", "127.0.0.1", 6081 },
		{ "http://[::1]:80", "::1", 80 },
		{ "http://cache.example:65535", "cache.example", 65535 },
		{ "http://127.0.0.1", NULL, 0 },
		{ "http://127.0.0.1:", NULL, 0 },
		{ "http://127.0.0.1:0", NULL, 0 },
		{ "http://127.0.0.1:65536", NULL, 0 },
		{ "http://127.0.0.1:+80", NULL, 0 },
		{ "http://127.0.0.1:80x", NULL, 0 },
		{ "http://127.0.0.1:80/ban", NULL, 0 },
		{ "http://:80", NULL, 0 },
		{ "http://[::1]80", NULL, 0 },
		{ "http://[]:80", NULL, 0 },
		{ "https://127.0.0.1:443", NULL, 0 },
		{ "127.0.0.1:80", NULL, 0 },
		{ "", NULL, 0 },
	};
	char host[64];
	size_t i;
	int port;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		port = 0;
		if (conf_ban_url_parse(t[i].url, host, sizeof(host), &port) !=
		    (t[i].host != NULL))
			fail_msg("%s: wrong verdict", t[i].url);
		if (t[i].host != NULL) {
			assert_string_equal(host, t[i].host);
			assert_int_equal(port, t[i].port);
		}
	}
	/* a host that does not fit */
	assert_false(conf_ban_url_parse("http://a-long-host-name:80", host, 8,
	    &port));
}

static void
expect_error(const char *text, const char *want_suffix)
{
	struct mica_conf c;
	char err[512] = "", want[512];

	write_conf(text, 0600);
	assert_false(conf_load(&c, path, err, sizeof(err)));
	snprintf(want, sizeof(want), "%s:%s", path, want_suffix);
	assert_string_equal(err, want);
}

static void
test_errors(void **state)
{
	(void)state;
	expect_error("[ca]\ndefault_days = 90\n[http]\n\nthreadz = 2\n",
	    "5: [http] threadz: unknown key");
	expect_error("[http]\nthreads = 0\n",
	    "2: [http] threads: must be a number from 1 to 64");
	expect_error("[http]\nthreads = many\n",
	    "2: [http] threads: must be a number from 1 to 64");
	expect_error("[http]\nsigners = 65\n",
	    "2: [http] signers: must be a number from 0 to 64");
	expect_error("[http]\nmax_per_address = 0\n",
	    "2: [http] max_per_address: must be a number from 1 to 100000");
	expect_error("[http]\nshed_start = 101\n",
	    "2: [http] shed_start: must be a number from 0 to 100");
	expect_error("[http]\nban_urls = http://127.0.0.1:6081 ftp://x:1\n",
	    "2: [http] ban_urls: \"ftp://x:1\": not http://HOST:PORT");
	expect_error("[http]\nban_timeout_ms = 5\n",
	    "2: [http] ban_timeout_ms: must be a number from 10 to 10000");
	expect_error("[http]\ncache_max_age = -1\n",
	    "2: [http] cache_max_age: must be a number from 0 to 86400");
	expect_error("[protocol]\nshed_start = -1\n",
	    "2: [protocol] shed_start: must be a number from 0 to 100");
	expect_error("[policy]\nreview = sometimes\n",
	    "2: [policy] review: must be manual or auto");
	expect_error("[http]\nlisten = 7780\n",
	    "2: [http] listen: must be HOST:PORT, e.g. 127.0.0.1:7780");
	expect_error("[ca]\nhttp_url = ftp://x\n",
	    "2: [ca] http_url: must be an http:// URL with a host "
	    "(RFC 5280 4.2.1.13)");
	expect_error("[ca]\nhttp_url = http://\n",
	    "2: [ca] http_url: must be an http:// URL with a host "
	    "(RFC 5280 4.2.1.13)");
	expect_error("[ca]\nhttp_url = HTTP://ca.example\n",
	    "2: [ca] http_url: must be an http:// URL with a host "
	    "(RFC 5280 4.2.1.13)");
	/* revocation over https would need a revocation check first */
	expect_error("[ca]\nhttp_url = https://ca.example:7780\n",
	    "2: [ca] http_url: https:// is refused: RFC 5280 4.2.1.13: CRL "
	    "and OCSP URLs must be http:// (checking revocation over HTTPS "
	    "needs a revocation check of the HTTPS server first)");
	expect_error("[web]\nport = 1\n", "1: [web]: unknown section");
	expect_error("# top\nreview = auto\n[policy]\nmax_failures = 3\n",
	    "2: review: key outside any [section] (or an .include, which "
	    "mica does not support)");
	expect_error("[policy]\nhold_on_request = perhaps\n",
	    "2: [policy] hold_on_request: must be yes or no");
}

/* 1 if text (an IPv4 or IPv6 address) matches c's metrics_from. */
static int
net_matches(const struct mica_conf *c, const char *text)
{
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	memset(&sin, 0, sizeof(sin));
	memset(&sin6, 0, sizeof(sin6));
	if (inet_pton(AF_INET, text, &sin.sin_addr) == 1) {
		sin.sin_family = AF_INET;
		return conf_net_match(c->http.metrics_from,
		    c->http.num_metrics_from, (struct sockaddr *)&sin);
	}
	assert_int_equal(inet_pton(AF_INET6, text, &sin6.sin6_addr), 1);
	sin6.sin6_family = AF_INET6;
	return conf_net_match(c->http.metrics_from, c->http.num_metrics_from,
	    (struct sockaddr *)&sin6);
}

static void
test_nets(void **state)
{
	struct mica_conf c;
	char err[512] = "";

	(void)state;
	/* the default: loopback only */
	conf_defaults(&c, "/tmp");
	assert_int_equal(c.http.num_metrics_from, 2);
	assert_true(net_matches(&c, "127.0.0.1"));
	assert_true(net_matches(&c, "127.255.0.9"));
	assert_true(net_matches(&c, "::1"));
	assert_true(net_matches(&c, "::ffff:127.0.0.1"));	/* mapped */
	assert_false(net_matches(&c, "128.0.0.1"));
	assert_false(net_matches(&c, "::2"));
	assert_false(net_matches(&c, "10.0.0.1"));

	write_conf("[http]\nmetrics_from = 10.0.0.0/8, fd00::/8,"
	    "192.168.1.7 10.200.0.0/9\n", 0600);
	assert_true(conf_load(&c, path, err, sizeof(err)));
	assert_int_equal(c.http.num_metrics_from, 4);
	assert_true(net_matches(&c, "10.1.2.3"));
	assert_false(net_matches(&c, "11.0.0.1"));
	assert_false(net_matches(&c, "127.0.0.1"));
	assert_true(net_matches(&c, "192.168.1.7"));
	assert_false(net_matches(&c, "192.168.1.8"));
	assert_true(net_matches(&c, "fd12::1"));
	assert_false(net_matches(&c, "fe80::1"));
	assert_true(net_matches(&c, "::ffff:10.9.9.9"));

	/* a prefix that is not a whole number of bytes */
	write_conf("[http]\nmetrics_from = 192.168.0.0/23\n", 0600);
	assert_true(conf_load(&c, path, err, sizeof(err)));
	assert_true(net_matches(&c, "192.168.1.255"));
	assert_false(net_matches(&c, "192.168.2.0"));

	/* empty: nobody */
	write_conf("[http]\nmetrics_from =\n", 0600);
	assert_true(conf_load(&c, path, err, sizeof(err)));
	assert_int_equal(c.http.num_metrics_from, 0);
	assert_false(net_matches(&c, "127.0.0.1"));

	expect_error("[http]\nmetrics_from = 1.2.3.4/33\n", "2: [http] "
	    "metrics_from: \"1.2.3.4/33\" is not an address or "
	    "address/prefix-length");
	expect_error("[http]\nmetrics_from = 1.2.3.4/\n", "2: [http] "
	    "metrics_from: \"1.2.3.4/\" is not an address or "
	    "address/prefix-length");
	expect_error("[http]\nmetrics_from = ::1/129\n", "2: [http] "
	    "metrics_from: \"::1/129\" is not an address or "
	    "address/prefix-length");
	expect_error("[http]\nmetrics_from = host.example\n", "2: [http] "
	    "metrics_from: \"host.example\" is not an address or "
	    "address/prefix-length");
	expect_error("[http]\nmetrics_from = 1.1.1.1 1.1.1.2 1.1.1.3 1.1.1.4 "
	    "1.1.1.5 1.1.1.6 1.1.1.7 1.1.1.8 1.1.1.9 1.1.1.10 1.1.1.11 "
	    "1.1.1.12 1.1.1.13 1.1.1.14 1.1.1.15 1.1.1.16 1.1.1.17\n",
	    "2: [http] metrics_from: at most 16 addresses");
}

static void
test_syntax_and_mode(void **state)
{
	struct mica_conf c;
	char err[512] = "";

	(void)state;
	write_conf("[ca\ncert = x\n", 0600);
	assert_false(conf_load(&c, path, err, sizeof(err)));
	assert_non_null(strstr(err, ":1: syntax error"));

	write_conf("[ca]\n", 0666);
	assert_false(conf_load(&c, path, err, sizeof(err)));
	assert_non_null(strstr(err, "writable by group or others"));

	unlink(path);
	assert_false(conf_load(&c, path, err, sizeof(err)));
	assert_non_null(strstr(err, "No such file"));
}

/* The documented sample must load: every key in it is a real key. */
/* [ca] key and ocsp_key: a file name (joined) or a pkcs11: URI (kept). */
static void
test_key_uri(void **state)
{
	struct mica_conf c;
	char err[512], want[256];

	(void)state;
	write_conf("[ca]\nkey = pkcs11:token=mica;object=ca%20key"
	    "?pin-source=file:/etc/mica/pin\nocsp_key = PKCS11:object=o;id=%01"
	    "\npkcs11_module = /usr/lib/softhsm/libsofthsm2.so\n", 0600);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), 1);
	assert_string_equal(c.ca.key, "pkcs11:token=mica;object=ca%20key"
	    "?pin-source=file:/etc/mica/pin");
	assert_string_equal(c.ca.ocsp_key, "PKCS11:object=o;id=%01");
	assert_string_equal(c.ca.pkcs11_module,
	    "/usr/lib/softhsm/libsofthsm2.so");
	write_conf("[ca]\nkey = private/pkcs11.key\n", 0600);
	assert_int_equal(conf_load(&c, path, err, sizeof(err)), 1);
	snprintf(want, sizeof(want), "%s/private/pkcs11.key", dir);
	assert_string_equal(c.ca.key, want);
	assert_string_equal(c.ca.pkcs11_module, "");
	expect_error("[ca]\nkey = pkcs11:token=my hsm;object=ca\n",
	    "2: [ca] key: RFC 7512: a pkcs11: URI has no spaces or control "
	    "characters (percent-encode them)");
	expect_error("[ca]\nocsp_key = pkcs11:token=a\tb;object=o\n",
	    "2: [ca] ocsp_key: RFC 7512: a pkcs11: URI has no spaces or "
	    "control characters (percent-encode them)");
}

static void
test_sample(void **state)
{
	struct mica_conf c;
	char err[512] = "";

	(void)state;
	assert_true(conf_load(&c, "conf/mica.conf.sample", err, sizeof(err)));
	assert_string_equal(err, "");
	assert_int_equal(c.policy.argon2_opslimit, 3);
	assert_int_equal(c.policy.argon2_memlimit, 256ULL << 20);
	assert_string_equal(c.proto.listen, "127.0.0.1:7700");
	assert_int_equal(c.http.ocsp_unknown_revoked, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nets, setup, teardown),
		cmocka_unit_test_setup_teardown(test_syntax_and_mode, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_key_uri, setup, teardown),
		cmocka_unit_test(test_sample),
		cmocka_unit_test(test_ban_url),
	};

	return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}

/*
 * test_common.c - bounded reader, buffer and serial helpers, the
 * per-address connection counter and the rate-limited log.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <sodium.h>

#include "common/addrcount.h"
#include "common/bytes.h"
#include "common/keyhash.h"
#include "common/log.h"
#include "common/ratelog.h"
#include "common/rsign.h"
#include "common/sigmd.h"
#include "common/workq.h"

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

static void
key4(struct addr_key *k, uint32_t a)
{
	struct sockaddr_in sin;

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(a);
	addr_key_from_sa(k, (struct sockaddr *)&sin);
}

/* Counts survive many adds and deletes (backward-shift deletion keeps
 * every run reachable); a full table refuses a new address only. */
static void
test_addrcount(void **state)
{
	struct addrcount *t;
	struct addr_key k;
	struct sockaddr_in6 sin6;
	char buf[INET6_ADDRSTRLEN];
	uint32_t i;
	int j;

	(void)state;
	assert_null(addrcount_new(0));
	assert_non_null(t = addrcount_new(1000));
	for (i = 0; i < 1000; i++) {
		key4(&k, 0x7f000000 + i);
		for (j = 0; j < (int)(i % 3) + 1; j++)
			assert_true(addrcount_add(t, &k));
	}
	key4(&k, 0x0a000001);
	assert_false(addrcount_add(t, &k));	/* 1001st address */
	key4(&k, 0x7f000005);
	assert_true(addrcount_add(t, &k));	/* a known one still counts */
	assert_int_equal(addrcount_get(t, &k), 4);
	addrcount_del(t, &k);
	/* delete every other address, then check the rest */
	for (i = 0; i < 1000; i += 2) {
		key4(&k, 0x7f000000 + i);
		for (j = 0; j < (int)(i % 3) + 1; j++)
			addrcount_del(t, &k);
		assert_int_equal(addrcount_get(t, &k), 0);
	}
	for (i = 0; i < 1000; i++) {
		key4(&k, 0x7f000000 + i);
		assert_int_equal(addrcount_get(t, &k), i % 2 ? (int)(i % 3) +
		    1 : 0);
	}
	key4(&k, 0x0a000001);
	assert_true(addrcount_add(t, &k));	/* room again */
	addr_key_str(&k, buf, sizeof(buf));
	assert_string_equal(buf, "10.0.0.1");
	memset(&sin6, 0, sizeof(sin6));
	sin6.sin6_family = AF_INET6;
	sin6.sin6_addr.s6_addr[15] = 1;
	addr_key_from_sa(&k, (struct sockaddr *)&sin6);
	addr_key_str(&k, buf, sizeof(buf));
	assert_string_equal(buf, "::1");
	assert_int_equal(addrcount_get(t, &k), 0);
	addrcount_free(t);
}

/* Counts every event; one line at most per second (the first at once). */
static void
test_ratelog(void **state)
{
	struct ratelog rl;
	int i;

	(void)state;
	assert_true(ratelog_init(&rl, "test: refused", "limit 1"));
	for (i = 0; i < 1000; i++)
		ratelog_event(&rl, i % 4 == 0 ? "10.0.0.1" : "127.0.0.2");
	assert_int_equal(ratelog_total(&rl), 1000);
	/* the first was logged; unless a second boundary passed, all the
	 * rest wait for the next line */
	assert_true(rl.n >= 1 && rl.n <= 999);
	ratelog_cleanup(&rl);
}

/* The same EC key sent with a compressed point hashes the same. */
static void
test_keyhash(void **state)
{
	EVP_PKEY *k, *k2, *dup;
	uint8_t h1[KEYHASH_LEN], h2[KEYHASH_LEN], h3[KEYHASH_LEN];
	unsigned char *der = NULL, *uncomp = NULL;
	const unsigned char *p;
	int len, ulen;

	(void)state;
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	k2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(k);
	assert_non_null(k2);
	assert_true(keyhash_pkey(h1, k));
	dup = EVP_PKEY_dup(k);
	assert_true(EVP_PKEY_set_utf8_string_param(dup,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED));
	len = i2d_PUBKEY(dup, &der);
	ulen = i2d_PUBKEY(k, &uncomp);
	assert_true(len > 0 && ulen > len);	/* really compressed */
	EVP_PKEY_free(dup);
	p = der;
	dup = d2i_PUBKEY(NULL, &p, len);
	assert_non_null(dup);
	assert_true(keyhash_pkey(h2, dup));
	assert_memory_equal(h1, h2, KEYHASH_LEN);
	assert_true(keyhash_pkey(h3, k2));
	assert_memory_not_equal(h1, h3, KEYHASH_LEN);
	/* a certificate DER that does not parse */
	assert_false(keyhash_cert_der(h3, (const uint8_t *)"\x30\x03", 2));
	OPENSSL_free(der);
	OPENSSL_free(uncomp);
	EVP_PKEY_free(dup);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k2);
}

/*
 * The SPKI keyhash builds itself for a named-curve EC key is the one
 * OpenSSL's encoder writes (uncompressed), for each curve and for a key
 * decoded from a compressed point; an RSA and an Ed25519 key go through
 * the encoder and come out as i2d_PUBKEY.
 */
static void
test_keyhash_der(void **state)
{
	static const char *const curves[] = { "P-256", "P-384", "P-521",
	    "secp256k1" };
	EVP_PKEY *k, *dup;
	uint8_t h1[KEYHASH_LEN], h2[KEYHASH_LEN];
	unsigned char *der, *enc, *cder;
	const unsigned char *p;
	size_t der_len;
	int enc_len, clen;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(curves) / sizeof(curves[0]) + 2; i++) {
		if (i < sizeof(curves) / sizeof(curves[0]))
			k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curves[i]);
		else if (i == sizeof(curves) / sizeof(curves[0]))
			k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		else
			k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		assert_non_null(k);
		der = enc = NULL;
		assert_true(keyhash_pkey_der(h1, k, &der, &der_len));
		enc_len = i2d_PUBKEY(k, &enc);
		assert_true(enc_len > 0);
		assert_int_equal((size_t)enc_len, der_len);
		assert_memory_equal(der, enc, der_len);
		assert_true(EVP_Digest(enc, (size_t)enc_len, h2, NULL,
		    EVP_sha256(), NULL));
		assert_memory_equal(h1, h2, KEYHASH_LEN);
		OPENSSL_free(der);
		OPENSSL_free(enc);
		/* the same key decoded from a compressed point */
		if (!EVP_PKEY_is_a(k, "EC"))
			goto next;
		dup = EVP_PKEY_dup(k);
		assert_true(EVP_PKEY_set_utf8_string_param(dup,
		    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
		    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED));
		cder = NULL;
		clen = i2d_PUBKEY(dup, &cder);
		assert_true(clen > 0 && clen < enc_len);
		EVP_PKEY_free(dup);
		p = cder;
		dup = d2i_PUBKEY(NULL, &p, clen);
		OPENSSL_free(cder);
		assert_non_null(dup);
		assert_true(keyhash_pkey_der(h2, dup, &der, &der_len));
		assert_memory_equal(h1, h2, KEYHASH_LEN);
		assert_int_equal((size_t)enc_len, der_len);
		OPENSSL_free(der);
		EVP_PKEY_free(dup);
 next:
		EVP_PKEY_free(k);
	}
}

/* The signing digest per key type. */
static void
test_sigmd(void **state)
{
	EVP_PKEY *k;

	(void)state;
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	assert_string_equal(sigmd_name(k), "SHA384");
	assert_ptr_equal(sigmd_get(k), EVP_sha384());
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_string_equal(sigmd_name(k), "SHA256");
	assert_ptr_equal(sigmd_get(k), EVP_sha256());
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	assert_string_equal(sigmd_name(k), "SHA256");
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_null(sigmd_name(k));
	assert_null(sigmd_get(k));
	EVP_PKEY_free(k);
}

/* A signer's answer: not empty, not longer than the room for it. */
static void
test_rsign_len(void **state)
{
	(void)state;
	assert_int_equal(rsign_len_ok("test", 0, 72), 0);
	assert_int_equal(rsign_len_ok("test", 1, 72), 1);
	assert_int_equal(rsign_len_ok("test", 72, 72), 1);
	assert_int_equal(rsign_len_ok("test", 73, 72), 0);
	assert_int_equal(rsign_len_ok("test", 0, 0), 0);
	assert_int_equal(rsign_len_ok("test", (size_t)-1, 72), 0);
}

/* workq_submit_then: done() on the loop only for work that returned 1;
 * work that returned 0 never reaches the loop.  Every job runs, also
 * those still queued when the queue is freed. */
struct wq_job {
	int	 hand_on;	/* what the work returns */
	int	 worked;
	int	 done;
};

static int
wq_work(void *arg)
{
	struct wq_job *j = arg;

	j->worked++;
	return !j->hand_on;
}

static void
wq_done(void *arg)
{
	struct wq_job *j = arg;

	j->done++;
}

static void
test_workq_then(void **state)
{
	struct event_base *base;
	struct workq *q;
	struct wq_job jobs[64];
	int i, worked, done;

	(void)state;
	assert_int_equal(evthread_use_pthreads(), 0);
	assert_non_null(base = event_base_new());
	assert_non_null(q = workq_new(base, 2));
	memset(jobs, 0, sizeof(jobs));
	for (i = 0; i < 64; i++) {
		jobs[i].hand_on = i % 3 == 0;
		assert_int_equal(workq_submit_then(q, wq_work, wq_done,
		    &jobs[i]), 1);
	}
	workq_free(q);		/* runs what is queued, then the done()s */
	for (i = worked = done = 0; i < 64; i++) {
		worked += jobs[i].worked;
		done += jobs[i].done;
		assert_int_equal(jobs[i].worked, 1);
		assert_int_equal(jobs[i].done, jobs[i].hand_on ? 0 : 1);
	}
	assert_int_equal(worked, 64);
	assert_int_equal(done, 64 - 22);	/* 22 multiples of 3 below 64 */
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_bounds),
		cmocka_unit_test(test_writer),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_addrcount),
		cmocka_unit_test(test_ratelog),
		cmocka_unit_test(test_keyhash),
		cmocka_unit_test(test_keyhash_der),
		cmocka_unit_test(test_sigmd),
		cmocka_unit_test(test_rsign_len),
		cmocka_unit_test(test_workq_then),
	};

	if (sodium_init() < 0)
		return 1;
	log_init("test_common", LOG_LVL_INFO);
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}

/*
 * test_admin.c - admin socket frames: round trips and malformed input,
 * the reason names used on the command line, and the checks of
 * "replica record" (malformed payloads refused, the store unchanged).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "admin/admin.h"
#include "ca/ca.h"
#include "ca/cainit_local.h"
#include "ca/repl.h"
#include "common/log.h"
#include "store/store.h"

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

/* ---- replica record ---- */

/* A CA made by ca_init_dir (its OCSP signer and TLS certificates are the
 * profiles replica add issues), a replication client certificate, a
 * second CA's certificates, and an empty store. */
struct rr_fx {
	char		 dir[64];
	X509		*ca;
	EVP_PKEY	*ca_key;
	uint8_t		*ok_der[ADM_REPREC_CERTS];	/* cert0..2 */
	size_t		 ok_len[ADM_REPREC_CERTS];
	uint8_t		*other_name;	/* CN=replica:other, this CA */
	size_t		 other_name_len;
	uint8_t		*foreign;	/* an OCSP signer of another CA */
	size_t		 foreign_len;
	uint8_t		*ca_der;
	size_t		 ca_len;
	struct store	*store;
};

static void
der_of(X509 *x, uint8_t **out, size_t *out_len)
{
	int n;

	*out = NULL;
	assert_true((n = i2d_X509(x, out)) > 0);
	*out_len = (size_t)n;
}

static void
make_ca(const char *dir, struct ca_init_result *r, EVP_PKEY **out_key)
{
	struct ca_init_opts o;
	char err[CA_ERR_MAX], path[128];
	FILE *f;

	memset(&o, 0, sizeof(o));
	o.dir = dir;
	if (!ca_init_dir(r, &o, err, sizeof(err)))
		fail_msg("ca_init_dir: %s", err);
	snprintf(path, sizeof(path), "%s/private/ca.key", dir);
	assert_non_null(f = fopen(path, "r"));
	assert_non_null(*out_key = PEM_read_PrivateKey(f, NULL, NULL, NULL));
	fclose(f);
}

static uint8_t *
client_der(struct rr_fx *f, const char *cn, size_t *out_len)
{
	EVP_PKEY *key = NULL;
	X509 *x;
	uint8_t serial[CA_SERIAL_LEN], *der;
	char err[CA_ERR_MAX] = "";

	assert_true(ca_keygen(&key, "ec-p256"));
	x = ca_make_client(f->ca, f->ca_key, cn, key, 30, time(NULL), serial,
	    err, sizeof(err));
	if (x == NULL)
		fail_msg("ca_make_client: %s", err);
	der_of(x, &der, out_len);
	X509_free(x);
	EVP_PKEY_free(key);
	return der;
}

static int
rr_setup(void **state)
{
	struct rr_fx *f = calloc(1, sizeof(*f));
	struct ca_init_result r, r2;
	struct store_opts so = { .create = 1 };
	EVP_PKEY *k2 = NULL;
	char sub[96];

	if (f == NULL || sodium_init() < 0)
		return -1;
	log_init("test_admin", LOG_LVL_ERR);
	snprintf(f->dir, sizeof(f->dir), "/tmp/test_admin.XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(sub, sizeof(sub), "%s/ca", f->dir);
	make_ca(sub, &r, &f->ca_key);
	assert_true(X509_up_ref(r.ca_cert));
	f->ca = r.ca_cert;
	der_of(r.ocsp_cert, &f->ok_der[0], &f->ok_len[0]);
	der_of(r.tls_cert, &f->ok_der[1], &f->ok_len[1]);
	der_of(r.ca_cert, &f->ca_der, &f->ca_len);
	ca_init_result_cleanup(&r);
	f->ok_der[2] = client_der(f, "replica:sb1", &f->ok_len[2]);
	f->other_name = client_der(f, "replica:other", &f->other_name_len);
	snprintf(sub, sizeof(sub), "%s/ca2", f->dir);
	make_ca(sub, &r2, &k2);
	der_of(r2.ocsp_cert, &f->foreign, &f->foreign_len);
	ca_init_result_cleanup(&r2);
	EVP_PKEY_free(k2);
	snprintf(sub, sizeof(sub), "%s/store", f->dir);
	assert_int_equal(store_open(&f->store, sub, &so), STORE_OK);
	*state = f;
	return 0;
}

static int
rr_teardown(void **state)
{
	struct rr_fx *f = *state;
	char cmd[128];
	int i;

	store_close(f->store);
	X509_free(f->ca);
	EVP_PKEY_free(f->ca_key);
	for (i = 0; i < ADM_REPREC_CERTS; i++)
		OPENSSL_free(f->ok_der[i]);
	OPENSSL_free(f->other_name);
	OPENSSL_free(f->foreign);
	OPENSSL_free(f->ca_der);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	free(f);
	return system(cmd) == 0 ? 0 : -1;
}

/* A "replica record NAME" request with the attachments given. */
static void
rr_msg(struct adm_msg *m, const char *name)
{
	adm_msg_init(m);
	assert_non_null(m->argv[m->argc++] = strdup("replica"));
	assert_non_null(m->argv[m->argc++] = strdup("record"));
	if (name != NULL)
		assert_non_null(m->argv[m->argc++] = strdup(name));
}

static void
rr_att(struct adm_msg *m, const char *name, const uint8_t *d, size_t len)
{
	assert_true(adm_msg_attach(m, name, d, len));
}

/* "replica record sb1" with cert0, cert1 and cert2 as given. */
static void
rr_three(struct adm_msg *m, const uint8_t *d0, size_t l0, const uint8_t *d1,
    size_t l1, const uint8_t *d2, size_t l2)
{
	rr_msg(m, "sb1");
	rr_att(m, "cert0", d0, l0);
	rr_att(m, "cert1", d1, l1);
	rr_att(m, "cert2", d2, l2);
}

static void
rr_all(struct rr_fx *f, struct adm_msg *m)
{
	rr_att(m, "cert0", f->ok_der[0], f->ok_len[0]);
	rr_att(m, "cert1", f->ok_der[1], f->ok_len[1]);
	rr_att(m, "cert2", f->ok_der[2], f->ok_len[2]);
}

static void
digest_of(struct rr_fx *f, uint8_t d[STORE_HASH_LEN])
{
	uint64_t seq;

	assert_int_equal(store_digest(f->store, d, &seq), STORE_OK);
}

/*
 * What micad does with the request: the store write only when the
 * checks pass.  Returns 1 when recorded; want: a part of the error.
 */
static int
rr_run(struct rr_fx *f, struct adm_msg *m, const char *want)
{
	struct adm_replica_rec rr;
	char name[REPL_NAME_MAX + 1], err[512] = "";
	uint8_t before[STORE_HASH_LEN], after[STORE_HASH_LEN];
	int ok;

	digest_of(f, before);
	ok = adm_reprec_parse(&rr, name, sizeof(name), m, f->ca, 1000, err,
	    sizeof(err));
	if (ok) {
		rr.actor = "test";
		ok = store_write(f->store, adm_replica_txn, &rr) == STORE_OK;
		if (!ok)
			snprintf(err, sizeof(err), "store refused");
		adm_reprec_cleanup(&rr);
	} else {
		/* nothing left to free on failure */
		assert_null(rr.rec[0].der);
		assert_null(rr.rec[1].der);
		assert_null(rr.rec[2].der);
	}
	adm_msg_cleanup(m);
	digest_of(f, after);
	if (want != NULL) {
		if (strstr(err, want) == NULL)
			fail_msg("error \"%s\", want \"%s\"", err, want);
		assert_false(ok);
		assert_memory_equal(before, after, STORE_HASH_LEN);
	}
	return ok;
}

static void
test_reprec_malformed(void **state)
{
	struct rr_fx *f = *state;
	struct adm_msg m;
	const char *bad_names[] = { NULL, "", "SB1", "sb1/../x", "sb1\n",
	    "sb 1" };
	uint8_t *big, *longer;
	char name[80];
	size_t i;

	/* the words */
	rr_msg(&m, NULL);
	rr_all(f, &m);
	rr_run(f, &m, "usage: replica record NAME");
	rr_msg(&m, "sb1");
	assert_non_null(m.argv[m.argc++] = strdup("extra"));
	rr_all(f, &m);
	rr_run(f, &m, "usage: replica record NAME");
	memset(name, 'a', 65);
	name[65] = '\0';		/* REPL_NAME_MAX + 1 */
	bad_names[0] = name;
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		rr_msg(&m, bad_names[i]);
		rr_all(f, &m);
		rr_run(f, &m, "replica record: bad name");
	}

	/* the attachments: missing, empty, too large, unknown, twice */
	rr_msg(&m, "sb1");
	rr_run(f, &m, "cert0 (the OCSP signer certificate) missing");
	rr_msg(&m, "sb1");
	rr_att(&m, "cert0", f->ok_der[0], f->ok_len[0]);
	rr_att(&m, "cert2", f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert1 (the TLS server certificate) missing");
	rr_three(&m, f->ok_der[0], 0,
	    f->ok_der[1], f->ok_len[1],
	    f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert0 (the OCSP signer certificate) missing");
	assert_non_null(big = calloc(1, ADM_REPREC_CERT_MAX + 1));
	memcpy(big, f->ok_der[1], f->ok_len[1]);
	rr_three(&m, f->ok_der[0], f->ok_len[0],
	    big, ADM_REPREC_CERT_MAX + 1,
	    f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert1 is 65537 bytes, at most 65536");
	free(big);
	rr_msg(&m, "sb1");
	rr_all(f, &m);
	rr_att(&m, "cert3", f->ok_der[0], f->ok_len[0]);
	rr_run(f, &m, "unknown attachment cert3 (cert0, cert1, cert2 only)");
	rr_msg(&m, "sb1");
	rr_att(&m, "\x1b[2J", f->ok_der[0], f->ok_len[0]);
	rr_all(f, &m);
	rr_run(f, &m, "unknown attachment (a name with other characters)");
	rr_msg(&m, "sb1");
	rr_att(&m, "", f->ok_der[0], f->ok_len[0]);
	rr_run(f, &m, "unknown attachment (an empty name)");
	rr_msg(&m, "sb1");
	rr_all(f, &m);
	rr_att(&m, "cert0", f->ok_der[0], f->ok_len[0]);
	rr_run(f, &m, "cert0 given twice");

	/* the certificates: truncated, trailing bytes, not DER */
	rr_three(&m, f->ok_der[0], f->ok_len[0] - 1,
	    f->ok_der[1], f->ok_len[1],
	    f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert0 is not a DER certificate");
	assert_non_null(longer = malloc(f->ok_len[1] + 1));
	memcpy(longer, f->ok_der[1], f->ok_len[1]);
	longer[f->ok_len[1]] = 0;
	rr_three(&m, f->ok_der[0], f->ok_len[0],
	    longer, f->ok_len[1] + 1,
	    f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert1 is not a DER certificate (or has bytes after it)");
	free(longer);
	rr_three(&m, f->ok_der[0], f->ok_len[0],
	    f->ok_der[1], f->ok_len[1],
	    (const uint8_t *)"\x30\x82\xff\xff", 4);
	rr_run(f, &m, "cert2 is not a DER certificate");

	/* well-formed certificates in the wrong place or of someone else */
	rr_three(&m, f->ok_der[1], f->ok_len[1],
	    f->ok_der[0], f->ok_len[0],
	    f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert0 is not the OCSP signer certificate (its extended key usage)");
	rr_three(&m, f->ca_der, f->ca_len,
	    f->ok_der[1], f->ok_len[1],
	    f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert0 is not the OCSP signer certificate (its extended key usage)");
	rr_three(&m, f->foreign, f->foreign_len,
	    f->ok_der[1], f->ok_len[1],
	    f->ok_der[2], f->ok_len[2]);
	rr_run(f, &m, "cert0 is not a certificate this CA issued");
	rr_three(&m, f->ok_der[0], f->ok_len[0],
	    f->ok_der[1], f->ok_len[1],
	    f->other_name, f->other_name_len);
	rr_run(f, &m, "cert2 is not the replication certificate of this "
	    "replica (its subject must be CN=replica:sb1)");
	rr_msg(&m, "other");
	rr_all(f, &m);
	rr_run(f, &m, "must be CN=replica:other");
}

/* The good request is recorded once; the same again changes nothing. */
static void
test_reprec_records(void **state)
{
	struct rr_fx *f = *state;
	struct adm_msg m, d;
	struct wb b;
	uint8_t before[STORE_HASH_LEN], after[STORE_HASH_LEN];
	char err[256];

	/* through the wire format, as micad gets it */
	rr_msg(&m, "sb1");
	rr_all(f, &m);
	wb_init(&b);
	assert_true(adm_request_encode(&b, &m));
	adm_msg_cleanup(&m);
	adm_msg_init(&d);
	assert_true(adm_request_parse(&d, b.data + 4, b.len - 4, err,
	    sizeof(err)));
	wb_cleanup(&b);
	digest_of(f, before);
	assert_true(rr_run(f, &d, NULL));
	digest_of(f, after);
	assert_memory_not_equal(before, after, STORE_HASH_LEN);
	/* again: the serials exist, the transaction aborts as a whole */
	rr_msg(&m, "sb1");
	rr_all(f, &m);
	rr_run(f, &m, "store refused");
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

	const struct CMUnitTest rr_tests[] = {
		cmocka_unit_test_setup_teardown(test_reprec_malformed,
		    rr_setup, rr_teardown),
		cmocka_unit_test_setup_teardown(test_reprec_records,
		    rr_setup, rr_teardown),
	};

	return cmocka_run_group_tests_name("admin", tests, NULL, NULL) |
	    cmocka_run_group_tests_name("replica record", rr_tests, NULL,
	    NULL);
}

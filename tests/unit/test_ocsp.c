/*
 * test_ocsp.c - the OCSP responder over a real temp store: statuses,
 * CertID and nonce rules, error responses, the cache and its invalidation,
 * GET decoding and the HTTP listener.
 */
#include <sys/socket.h>
#include <sys/time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <errno.h>
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
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "common/bytes.h"
#include "common/log.h"
#include "store/store.h"
#include "ocsp/ocsp.h"
#include "ocsp/ocsp_int.h"

#define NEXT_UPDATE	7200
#define REVOKED_AT	1700000000
#define HELD_AT		1700000500

enum { L_GOOD, L_REVOKED, L_HOLD, L_UNKNOWN, L_FLIP, L_GOOD2, NLEAF };

struct fx {
	char			 dir[64];
	struct store		*store;
	EVP_PKEY		*ca_key, *signer_key, *other_key;
	X509			*ca, *signer, *other_ca, *foreign_leaf;
	X509			*leaf[NLEAF];
	uint8_t			 serial[NLEAF][16];
	struct ocsp_responder	*r;
	struct ocsp_ctx		*c;
	X509_STORE		*trust;
};

static struct fx F;

/* ---- certificate factory ---- */

static void
add_ext(X509 *x, X509 *issuer, int nid, const char *val)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;

	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, nid, val);
	assert_non_null(ext);
	assert_true(X509_add_ext(x, ext, -1));
	X509_EXTENSION_free(ext);
}

/* Signs a cert for pub; issuer NULL = self-signed.  kind: 0 leaf, 1 CA,
 * 2 OCSP signer. */
static X509 *
make_cert(const char *cn, X509 *issuer, EVP_PKEY *issuer_key, EVP_PKEY *pub,
    const uint8_t serial[16], int kind)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	BIGNUM *bn = BN_bin2bn(serial, 16, NULL);

	assert_non_null(x);
	assert_true(X509_set_version(x, 2));
	assert_non_null(BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)));
	BN_free(bn);
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0));
	assert_true(X509_set_subject_name(x, name));
	assert_true(X509_set_issuer_name(x, issuer != NULL ?
	    X509_get_subject_name(issuer) : name));
	X509_NAME_free(name);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), -3600));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30));
	assert_true(X509_set_pubkey(x, pub));
	if (kind == 1) {
		add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
		add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
		add_ext(x, x, NID_subject_key_identifier, "hash");
	} else {
		add_ext(x, issuer, NID_basic_constraints, "critical,CA:FALSE");
		add_ext(x, issuer, NID_key_usage,
		    "critical,digitalSignature");
		if (kind == 2)
			add_ext(x, issuer, NID_ext_key_usage, "OCSPSigning");
	}
	assert_true(X509_sign(x, issuer_key, EVP_PKEY_is_a(issuer_key,
	    "ED25519") ? NULL : EVP_sha256()) > 0);
	return x;
}

static void
random_serial(uint8_t s[16])
{
	FILE *f = fopen("/dev/urandom", "rb");

	assert_non_null(f);
	assert_int_equal(fread(s, 1, 16, f), 16);
	fclose(f);
	s[0] &= 0x7f;
	s[0] |= 0x01;		/* 16 significant bytes */
}

struct add_arg {
	X509	*leaf;
	uint8_t	*serial;
};

static enum store_rc
add_cb(struct store_txn *txn, void *arg)
{
	struct add_arg *a = arg;
	struct cert_rec rec;
	unsigned char *der = NULL;
	int len;
	enum store_rc rc;

	memset(&rec, 0, sizeof(rec));
	memcpy(rec.serial, a->serial, 16);
	rec.st.status = CERT_GOOD;
	rec.st.not_before = time(NULL) - 3600;
	rec.st.not_after = time(NULL) + 86400 * 30;
	rec.issued_at = time(NULL);
	snprintf(rec.account, sizeof(rec.account), "alice");
	len = i2d_X509(a->leaf, &der);
	assert_true(len > 0);
	rec.der = der;
	rec.der_len = (size_t)len;
	rc = store_cert_add(txn, &rec);
	OPENSSL_free(der);
	return rc;
}

struct status_arg {
	uint8_t	*serial;
	uint8_t	 status, reason;
	int64_t	 when;
};

static enum store_rc
status_cb(struct store_txn *txn, void *arg)
{
	struct status_arg *a = arg;

	return store_cert_set_status(txn, a->serial, a->status, a->reason,
	    a->when, 0, NULL);
}

static void
set_status(int i, uint8_t status, uint8_t reason, int64_t when)
{
	struct status_arg a = { F.serial[i], status, reason, when };

	assert_int_equal(store_write(F.store, status_cb, &a), STORE_OK);
}

static int
setup(void **state)
{
	struct store_opts so;
	struct ocsp_opts oo;
	struct add_arg aa;
	uint8_t s[16];
	int i;

	(void)state;
	log_init("test_ocsp", LOG_LVL_WARN);
	memset(&F, 0, sizeof(F));
	snprintf(F.dir, sizeof(F.dir), "/tmp/test_ocsp.XXXXXX");
	assert_non_null(mkdtemp(F.dir));
	memset(&so, 0, sizeof(so));
	so.create = 1;
	assert_int_equal(store_open(&F.store, F.dir, &so), STORE_OK);

	F.ca_key = EVP_EC_gen("P-256");
	F.signer_key = EVP_EC_gen("P-256");
	F.other_key = EVP_EC_gen("P-256");
	assert_non_null(F.ca_key);
	random_serial(s);
	F.ca = make_cert("Test CA", NULL, F.ca_key, F.ca_key, s, 1);
	random_serial(s);
	F.signer = make_cert("Test OCSP", F.ca, F.ca_key, F.signer_key, s, 2);
	random_serial(s);
	F.other_ca = make_cert("Other CA", NULL, F.other_key, F.other_key, s,
	    1);
	random_serial(s);
	F.foreign_leaf = make_cert("foreign", F.other_ca, F.other_key,
	    F.other_key, s, 0);
	for (i = 0; i < NLEAF; i++) {
		random_serial(F.serial[i]);
		F.leaf[i] = make_cert("leaf", F.ca, F.ca_key, F.other_key,
		    F.serial[i], 0);
		if (i == L_UNKNOWN)
			continue;
		aa.leaf = F.leaf[i];
		aa.serial = F.serial[i];
		assert_int_equal(store_write(F.store, add_cb, &aa), STORE_OK);
	}
	set_status(L_REVOKED, CERT_REVOKED, REASON_KEY_COMPROMISE, REVOKED_AT);
	set_status(L_HOLD, CERT_HOLD, REASON_CERTIFICATE_HOLD, HELD_AT);

	ocsp_opts_defaults(&oo);
	oo.next_update = NEXT_UPDATE;
	F.r = ocsp_responder_new(&oo, F.ca, F.signer, F.signer_key, F.store);
	assert_non_null(F.r);
	F.c = ocsp_ctx_new(F.r);
	assert_non_null(F.c);
	F.trust = X509_STORE_new();
	assert_true(X509_STORE_add_cert(F.trust, F.ca));
	return 0;
}

static int
teardown(void **state)
{
	char cmd[128];
	int i;

	(void)state;
	ocsp_ctx_free(F.c);
	ocsp_responder_free(F.r);
	store_close(F.store);
	for (i = 0; i < NLEAF; i++)
		X509_free(F.leaf[i]);
	X509_free(F.ca);
	X509_free(F.signer);
	X509_free(F.other_ca);
	X509_free(F.foreign_leaf);
	EVP_PKEY_free(F.ca_key);
	EVP_PKEY_free(F.signer_key);
	EVP_PKEY_free(F.other_key);
	X509_STORE_free(F.trust);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", F.dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

/* ---- request and response helpers ---- */

static OCSP_CERTID *
cid_for(X509 *leaf, X509 *issuer, const EVP_MD *md)
{
	OCSP_CERTID *id = OCSP_cert_to_id(md, leaf, issuer);

	assert_non_null(id);
	return id;
}

/* Builds a request for n leaves; nonce_len > 0 adds a nonce. */
static OCSP_REQUEST *
make_req(X509 **leaves, int n, X509 *issuer, const EVP_MD *md, int nonce_len)
{
	OCSP_REQUEST *req = OCSP_REQUEST_new();
	unsigned char nonce[256];
	int i;

	assert_non_null(req);
	for (i = 0; i < n; i++)
		assert_non_null(OCSP_request_add0_id(req,
		    cid_for(leaves[i], issuer, md)));
	if (nonce_len > 0) {
		memset(nonce, 0xa5, sizeof(nonce));
		assert_true(OCSP_request_add1_nonce(req, nonce, nonce_len));
	}
	return req;
}

static uint8_t *
req_der(OCSP_REQUEST *req, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_OCSP_REQUEST(req, &der);

	assert_true(n > 0);
	*len = (size_t)n;
	return der;
}

/*
 * The response is DER exactly as OpenSSL's own encoder would write the
 * same values: decoding and re-encoding both the OCSPResponse and the
 * BasicOCSPResponse inside gives back the same bytes.
 */
static void
assert_canonical(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	unsigned char *re = NULL;
	int n;

	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	assert_non_null(resp);
	n = i2d_OCSP_RESPONSE(resp, &re);
	assert_int_equal(n, len);
	assert_memory_equal(re, der, len);
	OPENSSL_free(re);
	re = NULL;
	if (OCSP_response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		/* the BasicOCSPResponse is the OCTET STRING that ends it */
		bs = OCSP_response_get1_basic(resp);
		assert_non_null(bs);
		n = i2d_OCSP_BASICRESP(bs, &re);
		assert_true(n > 0 && (size_t)n < len);
		assert_memory_equal(re, der + len - (size_t)n, (size_t)n);
		OPENSSL_free(re);
		OCSP_BASICRESP_free(bs);
	}
	OCSP_RESPONSE_free(resp);
}

/* Sends req through ocsp_respond; returns the decoded response. */
static OCSP_RESPONSE *
ask(struct ocsp_ctx *c, OCSP_REQUEST *req, struct ocsp_answer *a)
{
	const unsigned char *p;
	OCSP_RESPONSE *resp;
	uint8_t *der;
	size_t len;

	der = req_der(req, &len);
	assert_true(ocsp_respond(c, a, der, len));
	OPENSSL_free(der);
	assert_canonical(a->der, a->der_len);
	p = a->der;
	resp = d2i_OCSP_RESPONSE(NULL, &p, (long)a->der_len);
	assert_non_null(resp);
	assert_ptr_equal(p, a->der + a->der_len);
	return resp;
}

/* The verified basic response of a successful answer. */
static OCSP_BASICRESP *
basic(OCSP_RESPONSE *resp)
{
	OCSP_BASICRESP *bs;

	assert_int_equal(OCSP_response_status(resp),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(resp);
	assert_non_null(bs);
	assert_int_equal(OCSP_basic_verify(bs, NULL, F.trust, 0), 1);
	return bs;
}

/* Asks for one leaf, checks signature, returns the status fields. */
static void
ask_one(struct ocsp_ctx *c, X509 *leaf, const EVP_MD *md, int *status,
    int *reason, time_t *revtime)
{
	OCSP_REQUEST *req = make_req(&leaf, 1, F.ca, md, 0);
	OCSP_CERTID *id = cid_for(leaf, F.ca, md);
	struct ocsp_answer a;
	OCSP_RESPONSE *resp = ask(c, req, &a);
	OCSP_BASICRESP *bs = basic(resp);
	ASN1_GENERALIZEDTIME *rt = NULL, *tu = NULL, *nu = NULL;
	int days, secs;
	struct tm tm;

	assert_int_equal(OCSP_resp_count(bs), 1);
	assert_int_equal(OCSP_resp_find_status(bs, id, status, reason, &rt,
	    &tu, &nu), 1);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, tu, nu), 1);
	assert_int_equal(days * 86400 + secs, NEXT_UPDATE);
	assert_int_equal(a.cacheable, 1);
	assert_int_equal(a.next_update - a.this_update, NEXT_UPDATE);
	*revtime = 0;
	if (rt != NULL) {
		assert_int_equal(ASN1_TIME_to_tm(rt, &tm), 1);
		*revtime = timegm(&tm);
	}
	OCSP_CERTID_free(id);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	ocsp_answer_cleanup(&a);
}

/* ---- tests ---- */

static void
test_good(void **state)
{
	int status, reason;
	time_t rt;

	(void)state;
	ask_one(F.c, F.leaf[L_GOOD], EVP_sha1(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_GOOD);
	assert_int_equal(rt, 0);
}

static void
test_revoked(void **state)
{
	int status, reason;
	time_t rt;

	(void)state;
	ask_one(F.c, F.leaf[L_REVOKED], EVP_sha1(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
	assert_int_equal(rt, REVOKED_AT);
}

static void
test_hold(void **state)
{
	int status, reason;
	time_t rt;

	(void)state;
	ask_one(F.c, F.leaf[L_HOLD], EVP_sha1(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_CERTIFICATEHOLD);
	assert_int_equal(rt, HELD_AT);
}

static void
test_unknown(void **state)
{
	int status, reason;
	time_t rt;

	(void)state;
	ask_one(F.c, F.leaf[L_UNKNOWN], EVP_sha1(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_UNKNOWN);
}

static void
test_sha256_certid(void **state)
{
	int status, reason;
	time_t rt;

	(void)state;
	ask_one(F.c, F.leaf[L_GOOD], EVP_sha256(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_GOOD);
	ask_one(F.c, F.leaf[L_REVOKED], EVP_sha256(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);
}

static void
test_unknown_revoked(void **state)
{
	struct ocsp_opts oo;
	struct ocsp_responder *r;
	struct ocsp_ctx *c;
	OCSP_REQUEST *req;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	struct ocsp_answer a;
	ASN1_OBJECT *obj;
	X509_EXTENSION *ext;
	int status, reason;
	time_t rt;

	(void)state;
	ocsp_opts_defaults(&oo);
	oo.next_update = NEXT_UPDATE;
	oo.unknown_revoked = 1;
	r = ocsp_responder_new(&oo, F.ca, F.signer, F.signer_key, F.store);
	assert_non_null(r);
	c = ocsp_ctx_new(r);
	assert_non_null(c);
	ask_one(c, F.leaf[L_UNKNOWN], EVP_sha1(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_CERTIFICATEHOLD);
	assert_int_equal(rt, 0);	/* 1970-01-01 */

	obj = OBJ_txt2obj("1.3.6.1.5.5.7.48.1.9", 1);
	req = make_req(&F.leaf[L_UNKNOWN], 1, F.ca, EVP_sha1(), 0);
	resp = ask(c, req, &a);
	bs = basic(resp);
	assert_true(OCSP_BASICRESP_get_ext_by_OBJ(bs, obj, -1) >= 0);
	ext = OCSP_BASICRESP_get_ext(bs, OCSP_BASICRESP_get_ext_by_OBJ(bs,
	    obj, -1));
	assert_int_equal(ASN1_STRING_length(X509_EXTENSION_get_data(ext)), 2);
	assert_memory_equal(ASN1_STRING_get0_data(
	    X509_EXTENSION_get_data(ext)), "\x05\x00", 2);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	ocsp_answer_cleanup(&a);

	/* a good cert stays good and carries no extended revoke */
	ask_one(c, F.leaf[L_GOOD], EVP_sha1(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_GOOD);
	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	resp = ask(c, req, &a);
	bs = basic(resp);
	assert_int_equal(OCSP_BASICRESP_get_ext_by_OBJ(bs, obj, -1), -1);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	ocsp_answer_cleanup(&a);
	ASN1_OBJECT_free(obj);
	ocsp_ctx_free(c);
	ocsp_responder_free(r);
}

static void
expect_error(OCSP_REQUEST *req, int want)
{
	struct ocsp_answer a;
	OCSP_RESPONSE *resp = ask(F.c, req, &a);

	assert_int_equal(OCSP_response_status(resp), want);
	assert_null(OCSP_response_get1_basic(resp));
	assert_int_equal(a.cacheable, 0);
	OCSP_RESPONSE_free(resp);
	ocsp_answer_cleanup(&a);
}

static void
test_foreign_issuer(void **state)
{
	OCSP_REQUEST *req;
	uint64_t before;

	(void)state;
	before = ocsp_stat_result(F.r, OCSPRES_UNAUTHORIZED);
	req = make_req(&F.foreign_leaf, 1, F.other_ca, EVP_sha1(), 0);
	expect_error(req, OCSP_RESPONSE_STATUS_UNAUTHORIZED);
	OCSP_REQUEST_free(req);
	assert_int_equal(ocsp_stat_result(F.r, OCSPRES_UNAUTHORIZED),
	    before + 1);
}

static void
test_three_certids(void **state)
{
	X509 *leaves[3] = { F.leaf[L_GOOD], F.leaf[L_REVOKED],
	    F.leaf[L_UNKNOWN] };
	const int want[3] = { V_OCSP_CERTSTATUS_GOOD,
	    V_OCSP_CERTSTATUS_REVOKED, V_OCSP_CERTSTATUS_UNKNOWN };
	OCSP_REQUEST *req;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	OCSP_SINGLERESP *single;
	OCSP_CERTID *id;
	struct ocsp_answer a;
	int i, reason;

	(void)state;
	req = make_req(leaves, 3, F.ca, EVP_sha256(), 0);
	resp = ask(F.c, req, &a);
	bs = basic(resp);
	assert_int_equal(OCSP_resp_count(bs), 3);
	for (i = 0; i < 3; i++) {
		single = OCSP_resp_get0(bs, i);
		id = cid_for(leaves[i], F.ca, EVP_sha256());
		assert_int_equal(OCSP_id_cmp(id,
		    OCSP_SINGLERESP_get0_id(single)), 0);
		assert_int_equal(OCSP_single_get0_status(single, &reason,
		    NULL, NULL, NULL), want[i]);
		OCSP_CERTID_free(id);
	}
	assert_int_equal(a.result, OCSPRES_GOOD);	/* the first one */
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	ocsp_answer_cleanup(&a);
}

static void
test_nonce_echo(void **state)
{
	static const int lens[] = { 16, 32, 128 };
	OCSP_REQUEST *req;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	struct ocsp_answer a;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), lens[i]);
		resp = ask(F.c, req, &a);
		bs = basic(resp);
		assert_int_equal(OCSP_check_nonce(req, bs), 1);
		assert_int_equal(a.cacheable, 0);
		assert_string_equal(a.etag, "");
		OCSP_BASICRESP_free(bs);
		OCSP_RESPONSE_free(resp);
		OCSP_REQUEST_free(req);
		ocsp_answer_cleanup(&a);
	}
}

/* A nonce extension whose inner OCTET STRING is empty. */
static void
add_raw_nonce(OCSP_REQUEST *req, const uint8_t *val, int len)
{
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext;

	assert_true(ASN1_OCTET_STRING_set(os, val, len));
	ext = X509_EXTENSION_create_by_NID(NULL, NID_id_pkix_OCSP_Nonce, 0,
	    os);
	assert_non_null(ext);
	assert_true(OCSP_REQUEST_add_ext(req, ext, -1));
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
}

static void
test_nonce_bad(void **state)
{
	OCSP_REQUEST *req;

	(void)state;
	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 129);
	expect_error(req, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_REQUEST_free(req);

	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	add_raw_nonce(req, (const uint8_t *)"\x04\x00", 2);	/* empty */
	expect_error(req, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_REQUEST_free(req);

	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	add_raw_nonce(req, (const uint8_t *)"abcd", 4);	/* not wrapped */
	expect_error(req, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_REQUEST_free(req);

	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 16);
	add_raw_nonce(req, (const uint8_t *)"\x04\x01\x01", 3);	/* two */
	expect_error(req, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_REQUEST_free(req);
}

static void
respond_raw(const uint8_t *der, size_t len, int want_der_status)
{
	struct ocsp_answer a;

	assert_true(ocsp_respond(F.c, &a, der, len));
	assert_int_equal(a.der_len, 5);
	assert_memory_equal(a.der, "\x30\x03\x0a\x01", 4);
	assert_int_equal(a.der[4], want_der_status);
	ocsp_answer_cleanup(&a);
}

static void
test_garbage(void **state)
{
	OCSP_REQUEST *req;
	uint8_t *der, junk[64], *longer;
	size_t len, i;

	(void)state;
	memset(junk, 0x41, sizeof(junk));
	respond_raw(junk, sizeof(junk), 1);
	respond_raw(junk, 0, 1);
	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	der = req_der(req, &len);
	for (i = 1; i < len; i += 7)
		respond_raw(der, len - i, 1);		/* truncated */
	longer = malloc(len + 1);
	memcpy(longer, der, len);
	longer[len] = 0;
	respond_raw(longer, len + 1, 1);		/* trailing byte */
	free(longer);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
}

static void
test_certid_count(void **state)
{
	X509 *leaves[17];
	OCSP_REQUEST *req;
	int i;

	(void)state;
	for (i = 0; i < 17; i++)
		leaves[i] = F.leaf[L_GOOD];
	req = make_req(leaves, 17, F.ca, EVP_sha1(), 0);
	expect_error(req, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_REQUEST_free(req);
	req = make_req(leaves, 0, F.ca, EVP_sha1(), 0);
	expect_error(req, OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	OCSP_REQUEST_free(req);
	req = make_req(leaves, 16, F.ca, EVP_sha1(), 0);	/* the cap */
	{
		struct ocsp_answer a;
		OCSP_RESPONSE *resp = ask(F.c, req, &a);
		OCSP_BASICRESP *bs = basic(resp);

		assert_int_equal(OCSP_resp_count(bs), 16);
		OCSP_BASICRESP_free(bs);
		OCSP_RESPONSE_free(resp);
		ocsp_answer_cleanup(&a);
	}
	OCSP_REQUEST_free(req);
}

static void
test_cache_and_invalidate(void **state)
{
	OCSP_REQUEST *req;
	struct ocsp_answer a1, a2, a3;
	uint8_t *der;
	size_t len;
	uint64_t hits;
	int status, reason;
	time_t rt;

	(void)state;
	req = make_req(&F.leaf[L_FLIP], 1, F.ca, EVP_sha1(), 0);
	der = req_der(req, &len);
	hits = ocsp_stat_cache_hits(F.r);
	assert_true(ocsp_respond(F.c, &a1, der, len));
	assert_true(ocsp_respond(F.c, &a2, der, len));
	assert_int_equal(ocsp_stat_cache_hits(F.r), hits + 1);
	assert_int_equal(a1.der_len, a2.der_len);
	assert_memory_equal(a1.der, a2.der, a1.der_len);
	assert_string_equal(a1.etag, a2.etag);
	assert_int_equal(strlen(a1.etag), 34);
	assert_int_equal(a1.result, OCSPRES_GOOD);

	/* committed change without invalidation: the cache still answers */
	set_status(L_FLIP, CERT_REVOKED, REASON_SUPERSEDED, REVOKED_AT);
	assert_true(ocsp_respond(F.c, &a3, der, len));
	assert_memory_equal(a3.der, a1.der, a1.der_len);
	ocsp_answer_cleanup(&a3);

	ocsp_invalidate(F.r, F.serial[L_FLIP]);
	ask_one(F.c, F.leaf[L_FLIP], EVP_sha1(), &status, &reason, &rt);
	assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);
	assert_int_equal(reason, OCSP_REVOKED_STATUS_SUPERSEDED);
	/* the answers handed out before stay valid memory */
	assert_memory_equal(a1.der, a2.der, a1.der_len);
	ocsp_answer_cleanup(&a1);
	ocsp_answer_cleanup(&a2);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
}

static void
test_generation_guard(void **state)
{
	struct ocsp_cache *cache = ocsp_responder_cache(F.r);
	struct ocsp_blob *b;
	uint8_t serials[1][16];
	atomic_uint_fast64_t gen;
	uint64_t gen0, h;
	size_t n;

	(void)state;
	memcpy(serials[0], F.serial[L_GOOD2], 16);
	b = ocsp_blob_new((const uint8_t *)"resp", 4);
	b->this_update = time(NULL);
	b->next_update = b->this_update + 100;
	h = ocsp_cache_hash(cache, (const uint8_t *)"key", 3);

	/* a reader took the generation, then the CA invalidated */
	gen0 = ocsp_generation(F.r);
	ocsp_invalidate(F.r, F.serial[L_GOOD2]);
	assert_int_equal(ocsp_generation(F.r), gen0 + 1);
	atomic_init(&gen, ocsp_generation(F.r));
	n = ocsp_cache_count(cache);
	assert_int_equal(ocsp_cache_put(cache, h, (const uint8_t *)"key", 3, b,
	    (const uint8_t (*)[16])serials, 1, &gen, gen0), 0);
	assert_int_equal(ocsp_cache_count(cache), n);
	assert_null(ocsp_cache_get(cache, h, (const uint8_t *)"key", 3,
	    time(NULL)));

	/* unchanged generation: inserted, and invalidation drops it */
	assert_int_equal(ocsp_cache_put(cache, h, (const uint8_t *)"key", 3, b,
	    (const uint8_t (*)[16])serials, 1, &gen, atomic_load(&gen)), 1);
	assert_int_equal(ocsp_cache_count(cache), n + 1);
	ocsp_blob_unref(ocsp_cache_get(cache, h, (const uint8_t *)"key", 3,
	    time(NULL)));
	assert_int_equal(ocsp_cache_invalidate(cache, F.serial[L_GOOD2]), 1);
	assert_int_equal(ocsp_cache_count(cache), n);
	ocsp_blob_unref(b);
}

static void
test_cache_bounds(void **state)
{
	struct ocsp_cache *cache = ocsp_cache_new(32, 1 << 20);
	struct ocsp_blob *b = ocsp_blob_new((const uint8_t *)"r", 1);
	atomic_uint_fast64_t gen;
	uint8_t serials[1][16], key[8];
	uint64_t i;

	(void)state;
	atomic_init(&gen, 0);
	memset(serials, 0, sizeof(serials));
	b->this_update = time(NULL);
	b->next_update = b->this_update + 100;
	for (i = 0; i < 1000; i++) {
		be64_put(key, i);
		ocsp_cache_put(cache, ocsp_cache_hash(cache, key, 8), key, 8, b,
		    (const uint8_t (*)[16])serials, 1, &gen, 0);
	}
	/* 16 shards of 32/16 + 1 entries each */
	assert_true(ocsp_cache_count(cache) <= 48);
	assert_true(ocsp_cache_count(cache) > 0);
	ocsp_cache_free(cache);

	/* stale entries (past half of their lifetime) are misses */
	cache = ocsp_cache_new(32, 1 << 20);
	b->this_update = time(NULL) - 60;
	b->next_update = b->this_update + 100;
	ocsp_cache_put(cache, 1, key, 8, b, (const uint8_t (*)[16])serials, 1,
	    &gen, 0);
	assert_null(ocsp_cache_get(cache, 1, key, 8, time(NULL)));
	ocsp_cache_free(cache);
	ocsp_blob_unref(b);
}

static void
test_get_decode(void **state)
{
	uint8_t out[64];
	size_t len;

	(void)state;
	/* "\xfb\xff\xfe" is "+//+" in base64 */
	assert_true(ocsp_get_decode(out, sizeof(out), &len, "%2B%2F%2f+", 10));
	assert_int_equal(len, 3);
	assert_memory_equal(out, "\xfb\xff\xfe", 3);
	assert_true(ocsp_get_decode(out, sizeof(out), &len, "+//+", 4));
	assert_int_equal(len, 3);
	assert_true(ocsp_get_decode(out, sizeof(out), &len, "YWI%3D", 6));
	assert_int_equal(len, 2);
	assert_memory_equal(out, "ab", 2);
	assert_true(ocsp_get_decode(out, sizeof(out), &len, "YWI", 3));
	assert_int_equal(len, 2);
	assert_true(ocsp_get_decode(out, sizeof(out), &len, "YQ==", 4));
	assert_int_equal(len, 1);
	assert_memory_equal(out, "a", 1);
	assert_false(ocsp_get_decode(out, sizeof(out), &len, "Y", 1));
	assert_false(ocsp_get_decode(out, sizeof(out), &len, "YQ=a", 4));
	assert_false(ocsp_get_decode(out, sizeof(out), &len, "YW%2", 4));
	assert_false(ocsp_get_decode(out, sizeof(out), &len, "YW!I", 4));
	assert_false(ocsp_get_decode(out, sizeof(out), &len, "", 0));
	assert_false(ocsp_get_decode(out, 2, &len, "YWJj", 4));	/* cap */
}

static void
test_metrics(void **state)
{
	struct wb b;
	char *text;

	(void)state;
	wb_init(&b);
	ocsp_metrics_append(F.r, &b);
	wb_u8(&b, 0);
	assert_true(wb_ok(&b));
	text = (char *)b.data;
	assert_non_null(strstr(text, "mica_ocsp_requests_total{result=\"good\"} "));
	assert_non_null(strstr(text, "mica_ocsp_cache_hits_total "));
	assert_non_null(strstr(text,
	    "mica_ocsp_request_duration_seconds_bucket{le=\"+Inf\"} "));
	wb_cleanup(&b);
}

/* ---- HTTP ---- */

static void
route_cb(struct ocsp_http_req *req, const char *path, void *arg)
{
	char b[128];

	(void)arg;
	snprintf(b, sizeof(b), "route %s", path);
	ocsp_http_body_add(req, b, strlen(b));
	ocsp_http_send(req, 200, "OK");
}

static int
wire_connect(int port)
{
	struct sockaddr_in sin;
	struct timeval tv = { 10, 0 };	/* a hang fails, never a threshold */
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	return fd;
}

static void
wire_send(int fd, const void *p, size_t len)
{
	assert_int_equal(write(fd, p, len), (ssize_t)len);
}

/* Reads until EOF (or the 10 s receive timeout: fails). */
static char *
wire_read_all(int fd, size_t *out_len)
{
	size_t n = 0, cap = 1 << 20;
	char *buf = malloc(cap + 1);
	ssize_t r;

	assert_non_null(buf);
	while ((r = read(fd, buf + n, cap - n)) > 0)
		n += (size_t)r;
	if (r != 0)			/* EOF, not a timeout or a reset */
		fail_msg("read: %s after %zu bytes: %.*s", strerror(errno), n,
		    (int)n, buf);
	buf[n] = '\0';
	*out_len = n;
	return buf;
}

/* One HTTP/1.0 exchange; returns the malloc'd raw response. */
static char *
http_exchange(int port, const char *head, const uint8_t *body,
    size_t body_len, size_t *out_len)
{
	char *resp;
	int fd;

	fd = wire_connect(port);
	wire_send(fd, head, strlen(head));
	if (body_len > 0)
		wire_send(fd, body, body_len);
	resp = wire_read_all(fd, out_len);
	close(fd);
	return resp;
}

/* Pointer to the body of a raw HTTP response. */
static const uint8_t *
http_body(const char *resp, size_t len, size_t *body_len)
{
	const char *p = strstr(resp, "\r\n\r\n");

	assert_non_null(p);
	p += 4;
	*body_len = len - (size_t)(p - resp);
	return (const uint8_t *)p;
}

static int
body_status(const uint8_t *body, size_t len)
{
	const unsigned char *p = body;
	OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
	OCSP_BASICRESP *bs;
	int status = -1, reason;

	assert_non_null(resp);
	if (OCSP_response_status(resp) == OCSP_RESPONSE_STATUS_SUCCESSFUL) {
		bs = basic(resp);
		status = OCSP_single_get0_status(OCSP_resp_get0(bs, 0),
		    &reason, NULL, NULL, NULL);
		OCSP_BASICRESP_free(bs);
	} else
		status = 100 + OCSP_response_status(resp);
	OCSP_RESPONSE_free(resp);
	return status;
}

static void
test_http(void **state)
{
	struct ocsp_http_opts ho;
	struct ocsp_http *h;
	OCSP_REQUEST *req;
	uint8_t *der;
	const uint8_t *body;
	char head[4096], b64[2048], *resp;
	size_t len, rlen, blen;
	int port;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	ocsp_http_opts_defaults(&ho);
	snprintf(ho.listen, sizeof(ho.listen), "127.0.0.1:0");
	ho.threads = 2;
	ho.signers = 0;		/* the event threads sign (test_http_wire:
				 * the signer threads) */
	h = ocsp_http_new(F.r, &ho);
	assert_non_null(h);
	assert_true(ocsp_http_add_route(h, "/metrics", route_cb, NULL));
	assert_true(ocsp_http_start(h));
	assert_false(ocsp_http_add_route(h, "/late", route_cb, NULL));
	port = ocsp_http_port(h);
	assert_true(port > 0);

	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	der = req_der(req, &len);

	/* POST /ocsp */
	snprintf(head, sizeof(head), "POST /ocsp HTTP/1.0\r\nHost: x\r\n"
	    "Content-Type: application/ocsp-request\r\n"
	    "Content-Length: %zu\r\n\r\n", len);
	resp = http_exchange(port, head, der, len, &rlen);
	assert_true(strncmp(resp, "HTTP/1.0 200", 12) == 0 ||
	    strncmp(resp, "HTTP/1.1 200", 12) == 0);
	assert_non_null(strstr(resp,
	    "Content-Type: application/ocsp-response\r\n"));
	/* POST answers are never kept by HTTP caches */
	assert_non_null(strstr(resp, "Cache-Control: no-cache, no-store"));
	assert_null(strstr(resp, "ETag: "));
	assert_null(strstr(resp, "X-Mica-Serials: "));
	body = http_body(resp, rlen, &blen);
	assert_int_equal(body_status(body, blen), V_OCSP_CERTSTATUS_GOOD);
	free(resp);

	/* wrong media type */
	snprintf(head, sizeof(head), "POST / HTTP/1.0\r\n"
	    "Content-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", len);
	resp = http_exchange(port, head, der, len, &rlen);
	assert_non_null(strstr(resp, " 415 "));
	free(resp);

	/* GET /ocsp/<url-encoded base64> */
	{
		char enc[2048], *o = b64;
		size_t i;

		EVP_EncodeBlock((unsigned char *)enc, der, (int)len);
		for (i = 0; enc[i] != '\0'; i++) {
			if (enc[i] == '+')
				o += sprintf(o, "%%2B");
			else if (enc[i] == '/')
				o += sprintf(o, "%%2F");
			else if (enc[i] == '=')
				o += sprintf(o, "%%3D");
			else
				*o++ = enc[i];
		}
		*o = '\0';
	}
	snprintf(head, sizeof(head), "GET /ocsp/%s HTTP/1.0\r\n\r\n", b64);
	resp = http_exchange(port, head, NULL, 0, &rlen);
	assert_non_null(strstr(resp, " 200 "));
	{
		/* RFC 5019 6.2 fields; max-age at most cache_max_age (60) */
		char want[64], hex[SERIAL_HEX_LEN];
		const char *ma = strstr(resp, "Cache-Control: max-age=");

		assert_non_null(ma);
		assert_true(atoi(ma + 23) > 0 && atoi(ma + 23) <= 60);
		assert_non_null(strstr(resp,
		    "public, no-transform, must-revalidate"));
		assert_non_null(strstr(resp, "ETag: \""));
		assert_non_null(strstr(resp, "Last-Modified: "));
		assert_non_null(strstr(resp, "Expires: "));
		serial_hex(hex, F.serial[L_GOOD]);
		snprintf(want, sizeof(want), "X-Mica-Serials: %s\r\n", hex);
		assert_non_null(strstr(resp, want));
	}
	body = http_body(resp, rlen, &blen);
	assert_int_equal(body_status(body, blen), V_OCSP_CERTSTATUS_GOOD);
	free(resp);

	/* GET paths that are no OCSP request: 404, never a 200 to keep */
	{
		static const char *const bad[] = {
			"/ocsp/YQ=a",		/* not base64 */
			"/ocsp/AAAA",		/* base64, not a SEQUENCE */
			"/ocsp/MAQCAQE%3D",	/* SEQUENCE, wrong length */
			"/favicon.ico", "/robots.txt", "/index", "/MIIB",
		};
		size_t k;

		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			snprintf(head, sizeof(head), "GET %s HTTP/1.0\r\n"
			    "\r\n", bad[k]);
			resp = http_exchange(port, head, NULL, 0, &rlen);
			if (strstr(resp, " 404 ") == NULL)
				fail_msg("GET %s: %.40s", bad[k], resp);
			free(resp);
		}
	}
	/* a DER SEQUENCE that is no OCSPRequest: malformedRequest, not kept */
	resp = http_exchange(port, "GET /ocsp/MAMCAQE%3D HTTP/1.0\r\n\r\n",
	    NULL, 0, &rlen);
	assert_non_null(strstr(resp, " 200 "));
	assert_non_null(strstr(resp, "Cache-Control: no-cache, no-store"));
	body = http_body(resp, rlen, &blen);
	assert_int_equal(body_status(body, blen),
	    100 + OCSP_RESPONSE_STATUS_MALFORMEDREQUEST);
	free(resp);

	resp = http_exchange(port, "GET /healthz HTTP/1.0\r\n\r\n", NULL, 0,
	    &rlen);
	body = http_body(resp, rlen, &blen);
	assert_int_equal(blen, 3);
	assert_memory_equal(body, "ok\n", 3);
	free(resp);

	resp = http_exchange(port, "GET /metrics HTTP/1.0\r\n\r\n", NULL, 0,
	    &rlen);
	body = http_body(resp, rlen, &blen);
	assert_int_equal(blen, strlen("route /metrics"));
	assert_memory_equal(body, "route /metrics", blen);
	free(resp);

	/* a body over the cap */
	{
		/* answered from the Content-Length alone */
		snprintf(head, sizeof(head), "POST /ocsp HTTP/1.0\r\n"
		    "Content-Type: application/ocsp-request\r\n"
		    "Content-Length: 20000\r\n\r\n");
		resp = http_exchange(port, head, NULL, 0, &rlen);
		assert_non_null(strstr(resp, " 413 "));
		free(resp);
	}

	ocsp_http_stop(h);
	assert_int_equal(ocsp_http_port(h), 0);
	ocsp_http_free(h);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
}

/* ---- the HTTP/1.1 wire: keep-alive, pipelining, Expect, errors ---- */

/* Reads exactly one response with a Content-Length (or none) body. */
static char *
wire_read_one(int fd, size_t *out_len)
{
	size_t n = 0, cap = 65536, want = 0;
	char *buf = malloc(cap + 1), *e, *cl;
	ssize_t r;

	assert_non_null(buf);
	for (;;) {
		buf[n] = '\0';
		if ((e = strstr(buf, "\r\n\r\n")) != NULL) {
			want = (size_t)(e + 4 - buf);
			if ((cl = strstr(buf, "Content-Length: ")) != NULL &&
			    cl < e)
				want += strtoul(cl + 16, NULL, 10);
			if (n >= want)
				break;
		}
		r = read(fd, buf + n, cap - n);
		assert_true(r > 0);
		n += (size_t)r;
	}
	assert_int_equal(n, want);	/* nothing beyond this response */
	*out_len = n;
	return buf;
}

/* Occurrences of needle in hay[0..len) (binary: DER bodies hold NULs). */
static int
count_str(const char *hay, size_t len, const char *needle)
{
	const char *p = hay, *end = hay + len;
	size_t nl = strlen(needle);
	int k = 0;

	while ((p = memmem(p, (size_t)(end - p), needle, nl)) != NULL) {
		k++;
		p += nl;
	}
	return k;
}

static void
test_http_wire(void **state)
{
	struct ocsp_http_opts ho;
	struct ocsp_http *h;
	OCSP_REQUEST *req;
	uint8_t *der;
	char head[1024], *resp, *big, etag[64];
	const char *p;
	size_t len, rlen, blen;
	const uint8_t *body;
	int port, fd, hl;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	ocsp_http_opts_defaults(&ho);
	snprintf(ho.listen, sizeof(ho.listen), "127.0.0.1:0");
	ho.threads = 1;
	ho.max_headers = 1024;
	ho.header_timeout = 1;
	h = ocsp_http_new(F.r, &ho);
	assert_non_null(h);
	assert_true(ocsp_http_start(h));
	port = ocsp_http_port(h);
	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	der = req_der(req, &len);
	hl = snprintf(head, sizeof(head), "POST /ocsp HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/ocsp-request\r\n"
	    "Content-Length: %zu\r\n\r\n", len);

	/* three pipelined requests in one write; the last says close */
	fd = wire_connect(port);
	wire_send(fd, head, (size_t)hl);
	wire_send(fd, der, len);
	wire_send(fd, head, (size_t)hl);
	wire_send(fd, der, len);
	p = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	wire_send(fd, p, strlen(p));
	resp = wire_read_all(fd, &rlen);
	close(fd);
	assert_int_equal(count_str(resp, rlen, "HTTP/1.1 200 OK\r\n"), 3);
	assert_int_equal(count_str(resp, rlen, "Connection: close\r\n"), 1);
	assert_int_equal(count_str(resp, rlen, "\r\n\r\nok\n"), 1);
	assert_int_equal(memcmp(resp + rlen - 3, "ok\n", 3), 0);
	free(resp);

	/*
	 * Answers stay in request order when a signer thread answers the
	 * first (a nonce: never cached) and the cache the second.
	 */
	{
		OCSP_REQUEST *nreq = make_req(&F.leaf[L_REVOKED], 1, F.ca,
		    EVP_sha1(), 32);
		size_t nlen, i;
		uint8_t *nder = req_der(nreq, &nlen);
		char nhead[512];
		const char *at[3];
		int nhl;

		nhl = snprintf(nhead, sizeof(nhead), "POST /ocsp HTTP/1.1\r\n"
		    "Host: x\r\nContent-Type: application/ocsp-request\r\n"
		    "Content-Length: %zu\r\n\r\n", nlen);
		fd = wire_connect(port);
		for (i = 0; i < 20; i++) {	/* 20 rounds of nonce, cached */
			wire_send(fd, nhead, (size_t)nhl);
			wire_send(fd, nder, nlen);
			wire_send(fd, head, (size_t)hl);
			wire_send(fd, der, len);
		}
		p = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: "
		    "close\r\n\r\n";
		wire_send(fd, p, strlen(p));
		resp = wire_read_all(fd, &rlen);
		close(fd);
		assert_int_equal(count_str(resp, rlen, "HTTP/1.1 200 OK\r\n"),
		    41);
		/* the k-th answer: nonce, cached, ...: all POST, no-store */
		p = resp;
		for (i = 0; i < 41; i++) {
			size_t left = rlen - (size_t)(p - resp);

			at[0] = memmem(p, left, "HTTP/1.1 200 OK\r\n", 17);
			assert_true(at[0] == p);
			at[1] = memmem(p + 17, left - 17,
			    "HTTP/1.1 200 OK\r\n", 17);
			at[2] = at[1] != NULL ? at[1] : resp + rlen;
			if (i == 40)
				assert_non_null(memmem(p, (size_t)(at[2] - p),
				    "text/plain", 10));
			else	/* POST: never kept by HTTP caches */
				assert_non_null(memmem(p, (size_t)(at[2] - p),
				    "no-cache, no-store", 18));
			p = at[2];
		}
		assert_int_equal(memcmp(resp + rlen - 3, "ok\n", 3), 0);
		free(resp);
		OPENSSL_free(nder);
		OCSP_REQUEST_free(nreq);
	}

	/* HTTP/1.0 keep-alive: answered as such, the connection stays */
	fd = wire_connect(port);
	p = "GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
	wire_send(fd, p, strlen(p));
	resp = wire_read_one(fd, &rlen);
	assert_non_null(strstr(resp, "Connection: keep-alive\r\n"));
	free(resp);
	wire_send(fd, p, strlen(p));
	resp = wire_read_one(fd, &rlen);
	assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(resp);
	close(fd);

	/* Expect: 100-continue: the interim answer, then the real one */
	fd = wire_connect(port);
	hl = snprintf(head, sizeof(head), "POST /ocsp HTTP/1.1\r\nHost: x\r\n"
	    "Expect: 100-continue\r\nContent-Type: application/ocsp-request"
	    "\r\nContent-Length: %zu\r\n\r\n", len);
	wire_send(fd, head, (size_t)hl);
	{
		char b[64];
		ssize_t r = read(fd, b, sizeof(b) - 1);

		assert_true(r > 0);
		b[r] = '\0';
		assert_string_equal(b, "HTTP/1.1 100 Continue\r\n\r\n");
	}
	wire_send(fd, der, len);
	resp = wire_read_one(fd, &rlen);
	assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	body = http_body(resp, rlen, &blen);
	assert_int_equal(body_status(body, blen), V_OCSP_CERTSTATUS_GOOD);
	assert_null(strstr(resp, "ETag: "));	/* POST: not cacheable */
	free(resp);

	/* the GET form has an ETag; asked again with it: 304, no body */
	{
		char enc[2048];

		EVP_EncodeBlock((unsigned char *)enc, der, (int)len);
		hl = snprintf(head, sizeof(head), "GET /ocsp/%s HTTP/1.1\r\n"
		    "Host: x\r\n\r\n", enc);
		wire_send(fd, head, (size_t)hl);
		resp = wire_read_one(fd, &rlen);
		p = strstr(resp, "ETag: ");
		assert_non_null(p);
		snprintf(etag, sizeof(etag), "%.*s",
		    (int)strcspn(p + 6, "\r"), p + 6);
		free(resp);
		hl = snprintf(head, sizeof(head), "GET /ocsp/%s HTTP/1.1\r\n"
		    "Host: x\r\nIf-None-Match: %s\r\n\r\n", enc, etag);
	}
	wire_send(fd, head, (size_t)hl);
	resp = wire_read_one(fd, &rlen);
	assert_true(strncmp(resp, "HTTP/1.1 304 Not Modified\r\n", 27) == 0);
	assert_null(strstr(resp, "Content-Length"));
	free(resp);
	close(fd);

	/* every error is answered, then the connection is closed (the
	 * 405 is an answer like any other: that client asks to close) */
	{
		static const struct {
			const char	*req;
			const char	*status;
		} errs[] = {
			{ "POST /ocsp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: "
			    "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
			    "HTTP/1.1 411 " },
			{ "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 " },
			{ "GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
			    "HTTP/1.1 400 " },
			{ "GET / HTTP/2.0\r\nHost: x\r\n\r\n", "HTTP/1.1 505 " },
			{ "GET / HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\n\r\n",
			    "HTTP/1.1 417 " },
			{ "GET /ocsp HTTP/1.1\r\nHost: x\r\nConnection: "
			    "close\r\n\r\n", "HTTP/1.1 405 " },
			{ "GET x HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400 " },
			{ "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Length: "
			    "99999\r\n\r\n", "HTTP/1.1 413 " },
		};
		size_t i;

		for (i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
			fd = wire_connect(port);
			wire_send(fd, errs[i].req, strlen(errs[i].req));
			resp = wire_read_all(fd, &rlen);
			close(fd);
			if (strncmp(resp, errs[i].status,
			    strlen(errs[i].status)) != 0)
				fail_msg("request %zu: got \"%.40s\"", i, resp);
			free(resp);
		}
	}

	/* a head over max_headers (1024): 431, also when it never ends */
	big = malloc(4096);
	assert_non_null(big);
	memset(big, 'a', 4095);
	big[4095] = '\0';
	p = "GET /healthz HTTP/1.1\r\nHost: x\r\nX: ";
	memcpy(big, p, strlen(p));
	fd = wire_connect(port);
	wire_send(fd, big, 4095);
	resp = wire_read_all(fd, &rlen);
	close(fd);
	assert_true(strncmp(resp, "HTTP/1.1 431 ", 13) == 0);
	free(resp);
	free(big);

	/* HEAD of the GET form: the length, no body */
	{
		char enc[2048], hreq[2300];
		size_t glen;

		EVP_EncodeBlock((unsigned char *)enc, der, (int)len);
		snprintf(hreq, sizeof(hreq), "GET /ocsp/%s HTTP/1.1\r\n"
		    "Host: x\r\nConnection: close\r\n\r\n", enc);
		fd = wire_connect(port);
		wire_send(fd, hreq, strlen(hreq));
		resp = wire_read_all(fd, &rlen);
		close(fd);
		body = http_body(resp, rlen, &glen);
		assert_int_equal(body_status(body, glen),
		    V_OCSP_CERTSTATUS_GOOD);
		free(resp);
		snprintf(hreq, sizeof(hreq), "HEAD /ocsp/%s HTTP/1.1\r\n"
		    "Host: x\r\nConnection: close\r\n\r\n", enc);
		fd = wire_connect(port);
		wire_send(fd, hreq, strlen(hreq));
		resp = wire_read_all(fd, &rlen);
		close(fd);
		snprintf(head, sizeof(head), "Content-Length: %zu\r\n", glen);
		assert_non_null(strstr(resp, head));
		http_body(resp, rlen, &blen);
		assert_int_equal(blen, 0);
		free(resp);
	}

	/* a body that never completes is closed by header_timeout (1 s),
	 * unanswered; the 10 s receive timeout only guards against a hang */
	fd = wire_connect(port);
	p = "POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: "
	    "application/ocsp-request\r\nContent-Length: 100\r\n\r\n0123";
	wire_send(fd, p, strlen(p));
	resp = wire_read_all(fd, &rlen);
	close(fd);
	assert_int_equal(rlen, 0);
	free(resp);

	/* a client that half-closes after its request still gets it */
	fd = wire_connect(port);
	hl = snprintf(head, sizeof(head), "POST / HTTP/1.1\r\nHost: x\r\n"
	    "Content-Type: application/ocsp-request\r\n"
	    "Content-Length: %zu\r\n\r\n", len);
	wire_send(fd, head, (size_t)hl);
	wire_send(fd, der, len);
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
	resp = wire_read_all(fd, &rlen);
	close(fd);
	assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	body = http_body(resp, rlen, &blen);
	assert_int_equal(body_status(body, blen), V_OCSP_CERTSTATUS_GOOD);
	free(resp);

	ocsp_http_free(h);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
}

/* ---- the DER encoder against OpenSSL's generic one ---- */

struct want {
	int	status, reason;
	time_t	revoked, invalidity;	/* 0: none */
};

/*
 * Builds with OpenSSL's generic API (OCSP_basic_add1_status,
 * OCSP_copy_nonce, OCSP_basic_sign_ctx) the response mica should have
 * written for req, with the times taken from mine, and asserts that the
 * ResponseData, signatureAlgorithm and certs are the same DER.
 */
static void
assert_same_as_openssl(OCSP_BASICRESP *mine, OCSP_REQUEST *req,
    const struct want *w, int n, int ext_revoke, X509 *signer,
    EVP_PKEY *key, int nocerts)
{
	OCSP_BASICRESP *ref = OCSP_BASICRESP_new();
	EVP_MD_CTX *mctx = EVP_MD_CTX_new();
	ASN1_GENERALIZEDTIME *tu = NULL, *nu = NULL, *rt, *inv;
	ASN1_GENERALIZEDTIME *pa;
	OCSP_SINGLERESP *single;
	unsigned char *d1 = NULL, *d2 = NULL;
	int i, l1, l2, days, secs;
	const char *md = EVP_PKEY_is_a(key, "ED25519") ? NULL : "SHA256";

	assert_non_null(ref);
	assert_int_equal(OCSP_single_get0_status(OCSP_resp_get0(mine, 0),
	    NULL, NULL, &tu, &nu) >= 0, 1);
	assert_int_equal(ASN1_TIME_compare(tu, OCSP_resp_get0_produced_at(
	    mine)), 0);
	assert_int_equal(ASN1_TIME_diff(&days, &secs, tu, nu), 1);
	assert_int_equal(days * 86400 + secs, NEXT_UPDATE);
	for (i = 0; i < n; i++) {
		rt = w[i].status == V_OCSP_CERTSTATUS_REVOKED ?
		    ASN1_GENERALIZEDTIME_set(NULL, w[i].revoked) : NULL;
		single = OCSP_basic_add1_status(ref, OCSP_onereq_get0_id(
		    OCSP_request_onereq_get0(req, i)), w[i].status,
		    w[i].reason, rt, tu, nu);
		assert_non_null(single);
		if (w[i].invalidity != 0) {
			inv = ASN1_GENERALIZEDTIME_set(NULL, w[i].invalidity);
			assert_int_equal(OCSP_SINGLERESP_add1_ext_i2d(single,
			    NID_invalidity_date, inv, 0, 0), 1);
			ASN1_GENERALIZEDTIME_free(inv);
		}
		ASN1_GENERALIZEDTIME_free(rt);
	}
	if (OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1) >= 0)
		assert_int_equal(OCSP_copy_nonce(ref, req), 1);
	if (ext_revoke) {
		ASN1_OBJECT *obj = OBJ_txt2obj("1.3.6.1.5.5.7.48.1.9", 1);
		ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
		X509_EXTENSION *ext;

		assert_true(ASN1_OCTET_STRING_set(os,
		    (const unsigned char *)"\x05\x00", 2));
		ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
		assert_int_equal(OCSP_BASICRESP_add_ext(ref, ext, -1), 1);
		X509_EXTENSION_free(ext);
		ASN1_OCTET_STRING_free(os);
		ASN1_OBJECT_free(obj);
	}
	assert_int_equal(EVP_DigestSignInit_ex(mctx, NULL, md, NULL, NULL,
	    key, NULL), 1);
	assert_int_equal(OCSP_basic_sign_ctx(ref, signer, mctx, NULL,
	    OCSP_RESPID_KEY | (nocerts ? OCSP_NOCERTS : 0)), 1);
	/* signing set producedAt to "now": take mica's */
	pa = (ASN1_GENERALIZEDTIME *)OCSP_resp_get0_produced_at(ref);
	assert_int_equal(ASN1_STRING_copy(pa,
	    OCSP_resp_get0_produced_at(mine)), 1);

	l1 = i2d_OCSP_RESPDATA(OCSP_resp_get0_respdata(mine), &d1);
	l2 = i2d_OCSP_RESPDATA(OCSP_resp_get0_respdata(ref), &d2);
	assert_true(l1 > 0);
	assert_int_equal(l1, l2);
	assert_memory_equal(d1, d2, l1);
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	d1 = d2 = NULL;
	l1 = i2d_X509_ALGOR(OCSP_resp_get0_tbs_sigalg(mine), &d1);
	l2 = i2d_X509_ALGOR(OCSP_resp_get0_tbs_sigalg(ref), &d2);
	assert_int_equal(l1, l2);
	assert_memory_equal(d1, d2, l1);
	OPENSSL_free(d1);
	OPENSSL_free(d2);
	assert_int_equal(sk_X509_num(OCSP_resp_get0_certs(mine)),
	    sk_X509_num(OCSP_resp_get0_certs(ref)));
	for (i = 0; i < sk_X509_num(OCSP_resp_get0_certs(ref)); i++)
		assert_int_equal(X509_cmp(sk_X509_value(
		    OCSP_resp_get0_certs(mine), i), sk_X509_value(
		    OCSP_resp_get0_certs(ref), i)), 0);
	EVP_MD_CTX_free(mctx);
	OCSP_BASICRESP_free(ref);
}

/* Asks c for leaves (hash md, nonce of nonce_len), verifies the answer
 * against trust and compares it with OpenSSL's encoding. */
static void
compare_one(struct ocsp_ctx *c, X509 **leaves, int n, X509 *issuer,
    const EVP_MD *md, int nonce_len, const struct want *w, int ext_revoke,
    X509 *signer, EVP_PKEY *key, X509_STORE *trust)
{
	OCSP_REQUEST *req = make_req(leaves, n, issuer, md, nonce_len);
	struct ocsp_answer a;
	OCSP_RESPONSE *resp = ask(c, req, &a);
	OCSP_BASICRESP *bs;
	STACK_OF(X509) *certs;

	assert_int_equal(OCSP_response_status(resp),
	    OCSP_RESPONSE_STATUS_SUCCESSFUL);
	bs = OCSP_response_get1_basic(resp);
	assert_non_null(bs);
	/* a CA signing for itself sends no certs: the client knows it */
	certs = sk_X509_new_null();
	assert_non_null(certs);
	assert_true(sk_X509_push(certs, issuer) > 0);
	assert_int_equal(OCSP_basic_verify(bs, signer == issuer ? certs :
	    NULL, trust, 0), 1);
	sk_X509_free(certs);
	assert_int_equal(OCSP_resp_count(bs), n);
	if (nonce_len > 0)
		assert_int_equal(OCSP_check_nonce(req, bs), 1);
	else
		assert_int_equal(OCSP_check_nonce(req, bs), 2);
	assert_same_as_openssl(bs, req, w, n, ext_revoke, signer, key,
	    signer == issuer);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	ocsp_answer_cleanup(&a);
}

static const struct want W_GOOD = { V_OCSP_CERTSTATUS_GOOD,
    OCSP_REVOKED_STATUS_NOSTATUS, 0, 0 };
static const struct want W_REVOKED = { V_OCSP_CERTSTATUS_REVOKED,
    OCSP_REVOKED_STATUS_KEYCOMPROMISE, REVOKED_AT, 0 };
static const struct want W_HOLD = { V_OCSP_CERTSTATUS_REVOKED,
    OCSP_REVOKED_STATUS_CERTIFICATEHOLD, HELD_AT, 0 };
static const struct want W_UNKNOWN = { V_OCSP_CERTSTATUS_UNKNOWN,
    OCSP_REVOKED_STATUS_NOSTATUS, 0, 0 };

static enum store_rc
invalidity_cb(struct store_txn *txn, void *arg)
{
	return store_cert_set_status(txn, arg, CERT_REVOKED,
	    REASON_UNSPECIFIED, REVOKED_AT + 10, REVOKED_AT - 86400, NULL);
}

static void
test_encoder_vs_openssl(void **state)
{
	X509 *leaves[16];
	struct want w[16];
	const EVP_MD *mds[2] = { EVP_sha1(), EVP_sha256() };
	static const int nonces[] = { 0, 1, 16, 128 };
	struct add_arg aa;
	uint8_t serial[16];
	X509 *inv_leaf;
	size_t k, m;
	int i;

	(void)state;
	/* a revoked leaf with reason unspecified and an invalidity date */
	random_serial(serial);
	inv_leaf = make_cert("inv", F.ca, F.ca_key, F.other_key, serial, 0);
	aa.leaf = inv_leaf;
	aa.serial = serial;
	assert_int_equal(store_write(F.store, add_cb, &aa), STORE_OK);
	assert_int_equal(store_write(F.store, invalidity_cb, serial),
	    STORE_OK);

	for (m = 0; m < 2; m++) {
		for (k = 0; k < sizeof(nonces) / sizeof(nonces[0]); k++) {
			compare_one(F.c, &F.leaf[L_GOOD], 1, F.ca, mds[m],
			    nonces[k], &W_GOOD, 0, F.signer, F.signer_key,
			    F.trust);
			compare_one(F.c, &F.leaf[L_REVOKED], 1, F.ca, mds[m],
			    nonces[k], &W_REVOKED, 0, F.signer, F.signer_key,
			    F.trust);
			compare_one(F.c, &F.leaf[L_HOLD], 1, F.ca, mds[m],
			    nonces[k], &W_HOLD, 0, F.signer, F.signer_key,
			    F.trust);
			compare_one(F.c, &F.leaf[L_UNKNOWN], 1, F.ca, mds[m],
			    nonces[k], &W_UNKNOWN, 0, F.signer, F.signer_key,
			    F.trust);
		}
		/* 16 CertIDs, every kind, in an order of our choosing */
		for (i = 0; i < 16; i++) {
			switch (i % 5) {
			case 0:
				leaves[i] = F.leaf[L_GOOD2];
				w[i] = W_GOOD;
				break;
			case 1:
				leaves[i] = F.leaf[L_REVOKED];
				w[i] = W_REVOKED;
				break;
			case 2:
				leaves[i] = F.leaf[L_UNKNOWN];
				w[i] = W_UNKNOWN;
				break;
			case 3:
				leaves[i] = F.leaf[L_HOLD];
				w[i] = W_HOLD;
				break;
			default:
				leaves[i] = inv_leaf;
				w[i].status = V_OCSP_CERTSTATUS_REVOKED;
				w[i].reason = OCSP_REVOKED_STATUS_NOSTATUS;
				w[i].revoked = REVOKED_AT + 10;
				w[i].invalidity = REVOKED_AT - 86400;
				break;
			}
		}
		compare_one(F.c, leaves, 16, F.ca, mds[m], 0, w, 0, F.signer,
		    F.signer_key, F.trust);
		compare_one(F.c, leaves, 16, F.ca, mds[m], 32, w, 0, F.signer,
		    F.signer_key, F.trust);
	}
	X509_free(inv_leaf);
}

/* unknown_revoked: revoked/certificateHold at 1970 + extended revoke. */
static void
test_encoder_ext_revoke(void **state)
{
	struct ocsp_opts oo;
	struct ocsp_responder *r;
	struct ocsp_ctx *c;
	struct want w[2];

	(void)state;
	ocsp_opts_defaults(&oo);
	oo.next_update = NEXT_UPDATE;
	oo.unknown_revoked = 1;
	r = ocsp_responder_new(&oo, F.ca, F.signer, F.signer_key, F.store);
	assert_non_null(r);
	c = ocsp_ctx_new(r);
	assert_non_null(c);
	w[0].status = V_OCSP_CERTSTATUS_REVOKED;
	w[0].reason = OCSP_REVOKED_STATUS_CERTIFICATEHOLD;
	w[0].revoked = 0;
	w[0].invalidity = 0;
	w[1] = W_GOOD;
	compare_one(c, &F.leaf[L_UNKNOWN], 1, F.ca, EVP_sha1(), 0, w, 1,
	    F.signer, F.signer_key, F.trust);
	compare_one(c, &F.leaf[L_UNKNOWN], 1, F.ca, EVP_sha256(), 20, w, 1,
	    F.signer, F.signer_key, F.trust);
	compare_one(c, &F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 20, &w[1], 0,
	    F.signer, F.signer_key, F.trust);
	ocsp_ctx_free(c);
	ocsp_responder_free(r);
}

/*
 * Ed25519 and RSA: the CA signs its own answers (no certs field), and a
 * delegated RSA signer.  Leaves under these CAs reuse the fixture's
 * serials, so the store answers for them.
 */
static void
signer_case(EVP_PKEY *ca_key, EVP_PKEY *signer_key)
{
	struct ocsp_opts oo;
	struct ocsp_responder *r;
	struct ocsp_ctx *c;
	X509 *ca, *signer, *leaf[2];
	X509_STORE *trust;
	struct want w[2] = { W_REVOKED, W_GOOD };
	uint8_t s[16];

	random_serial(s);
	ca = make_cert("Other key CA", NULL, ca_key, ca_key, s, 1);
	random_serial(s);
	signer = signer_key == NULL ? ca : make_cert("Other key OCSP", ca,
	    ca_key, signer_key, s, 2);
	leaf[0] = make_cert("leaf", ca, ca_key, F.other_key,
	    F.serial[L_REVOKED], 0);
	leaf[1] = make_cert("leaf", ca, ca_key, F.other_key,
	    F.serial[L_GOOD], 0);
	trust = X509_STORE_new();
	assert_true(X509_STORE_add_cert(trust, ca));
	ocsp_opts_defaults(&oo);
	oo.next_update = NEXT_UPDATE;
	r = ocsp_responder_new(&oo, ca, signer, signer_key == NULL ? ca_key :
	    signer_key, F.store);
	assert_non_null(r);
	c = ocsp_ctx_new(r);
	assert_non_null(c);
	compare_one(c, leaf, 2, ca, EVP_sha1(), 0, w, 0, signer,
	    signer_key == NULL ? ca_key : signer_key, trust);
	compare_one(c, leaf, 2, ca, EVP_sha256(), 32, w, 0, signer,
	    signer_key == NULL ? ca_key : signer_key, trust);
	compare_one(c, leaf, 1, ca, EVP_sha1(), 8, w, 0, signer,
	    signer_key == NULL ? ca_key : signer_key, trust);
	ocsp_ctx_free(c);
	ocsp_responder_free(r);
	X509_STORE_free(trust);
	X509_free(leaf[0]);
	X509_free(leaf[1]);
	if (signer != ca)
		X509_free(signer);
	X509_free(ca);
}

static void
test_encoder_other_keys(void **state)
{
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);

	(void)state;
	assert_non_null(ed);
	assert_non_null(rsa);
	signer_case(ed, NULL);		/* Ed25519 CA signs itself */
	signer_case(F.ca_key, rsa);	/* delegated RSA signer */
	signer_case(rsa, NULL);		/* RSA CA signs itself */
	EVP_PKEY_free(ed);
	EVP_PKEY_free(rsa);
}

/* The back-to-front writer: short and long lengths, sticky overflow. */
static void
test_derw(void **state)
{
	uint8_t buf[400], content[300];
	struct ocsp_derw w;
	const uint8_t *p;
	size_t len, m;

	(void)state;
	memset(content, 0x5a, sizeof(content));
	ocsp_derw_init(&w, buf, sizeof(buf));
	m = ocsp_derw_mark(&w);
	ocsp_derw_put(&w, content, 127);
	ocsp_derw_wrap(&w, 0x04, m);
	p = ocsp_derw_data(&w, &len);
	assert_int_equal(len, 129);
	assert_memory_equal(p, "\x04\x7f", 2);
	ocsp_derw_wrap(&w, 0x30, m);		/* 129 bytes: 81 81 */
	p = ocsp_derw_data(&w, &len);
	assert_int_equal(len, 132);
	assert_memory_equal(p, "\x30\x81\x81\x04\x7f", 5);
	ocsp_derw_put(&w, content, 124);
	ocsp_derw_wrap(&w, 0x30, m);		/* 256 bytes: 82 01 00 */
	p = ocsp_derw_data(&w, &len);
	assert_int_equal(len, 260);
	assert_memory_equal(p, "\x30\x82\x01\x00", 4);
	ocsp_derw_init(&w, buf, sizeof(buf));
	m = ocsp_derw_mark(&w);
	assert_int_equal(ocsp_derw_gentime(&w, 1700000000), 1);
	p = ocsp_derw_data(&w, &len);
	assert_int_equal(len, 17);
	assert_memory_equal(p, "\x18\x0f" "20231114221320Z", 17);
	ocsp_derw_put(&w, content, sizeof(content));
	ocsp_derw_put(&w, content, 100);	/* does not fit */
	assert_int_equal(ocsp_derw_ok(&w), 0);
	ocsp_derw_u8(&w, 1);
	assert_int_equal(ocsp_derw_ok(&w), 0);
	assert_null(ocsp_derw_data(&w, &len));
	assert_int_equal(len, 0);
	(void)m;
}

/* A renewed signer replaces the old one while the responder runs. */
static void
test_signer_swap(void **state)
{
	EVP_PKEY *k2 = EVP_EC_gen("P-256");
	X509 *s2, *sg = NULL;
	OCSP_REQUEST *req;
	struct ocsp_answer a1, a2;
	OCSP_RESPONSE *r1, *r2;
	OCSP_BASICRESP *b1, *b2;
	uint8_t sn[16];

	(void)state;
	assert_non_null(k2);
	random_serial(sn);
	s2 = make_cert("Renewed OCSP", F.ca, F.ca_key, k2, sn, 2);
	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	r1 = ask(F.c, req, &a1);
	b1 = basic(r1);
	assert_int_equal(OCSP_resp_get0_signer(b1, &sg, NULL), 1);
	assert_int_equal(X509_cmp(sg, F.signer), 0);

	/* a key that does not match is refused; the old signer stays */
	assert_int_equal(ocsp_responder_set_signer(F.r, s2, F.other_key), 0);
	assert_int_equal(ocsp_responder_set_signer(F.r, s2, k2), 1);
	r2 = ask(F.c, req, &a2);
	b2 = basic(r2);
	assert_int_equal(OCSP_resp_get0_signer(b2, &sg, NULL), 1);
	assert_int_equal(X509_cmp(sg, s2), 0);
	/* not the cached answer of the old signer */
	assert_false(a1.der_len == a2.der_len &&
	    memcmp(a1.der, a2.der, a1.der_len) == 0);

	/* back to the fixture's signer for the other tests */
	assert_int_equal(ocsp_responder_set_signer(F.r, F.signer,
	    F.signer_key), 1);
	OCSP_BASICRESP_free(b1);
	OCSP_BASICRESP_free(b2);
	OCSP_RESPONSE_free(r1);
	OCSP_RESPONSE_free(r2);
	ocsp_answer_cleanup(&a1);
	ocsp_answer_cleanup(&a2);
	OCSP_REQUEST_free(req);
	X509_free(s2);
	EVP_PKEY_free(k2);
}

/* ---- floods: max_per_address, shedding ---- */

/* A connection from source address src (127.0.0.x) to port. */
static int
wire_connect_from(int port, const char *src)
{
	struct sockaddr_in sin;
	struct timeval tv = { 10, 0 };	/* a hang fails, never a threshold */
	int fd;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
	    sizeof(tv)), 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, src, &sin.sin_addr), 1);
	assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
	sin.sin_port = htons(port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)),
	    0);
	return fd;
}

/* fd was closed by the listener with a 503 carrying Retry-After whose
 * text names why. */
static void
expect_503(int fd, const char *why)
{
	size_t len;
	char *resp = wire_read_all(fd, &len);

	assert_true(strncmp(resp, "HTTP/1.1 503 Service Unavailable\r\n",
	    34) == 0);
	assert_non_null(strstr(resp, "\r\nRetry-After: 5\r\n"));
	assert_non_null(strstr(resp, "\r\nConnection: close\r\n"));
	assert_non_null(strstr(resp, why));
	free(resp);
	close(fd);
}

/* A keep-alive GET /healthz on fd, answered 200. */
static void
expect_healthz(int fd)
{
	static const char get[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	size_t len;
	char *resp;

	wire_send(fd, get, sizeof(get) - 1);
	resp = wire_read_one(fd, &len);
	assert_true(strncmp(resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	free(resp);
}

/*
 * max_per_address 3: a 4th connection from 127.0.0.1 gets a 503 with
 * Retry-After.  max_connections 8, shed_start 50 (4): above 4, each new
 * connection sheds one with no request in progress: never-used ones
 * first, the busiest address, then the oldest; a used keep-alive one
 * survives while never-used ones remain.
 */
static void
test_http_limits(void **state)
{
	struct ocsp_http_opts ho;
	struct ocsp_http *h;
	int port, a, b, c, d, e, f, g, x;

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	ocsp_http_opts_defaults(&ho);
	snprintf(ho.listen, sizeof(ho.listen), "127.0.0.1:0");
	ho.threads = 1;
	ho.max_connections = 8;
	ho.max_per_address = 3;
	ho.shed_start = 50;
	h = ocsp_http_new(F.r, &ho);
	assert_non_null(h);
	assert_true(ocsp_http_start(h));
	port = ocsp_http_port(h);

	a = wire_connect_from(port, "127.0.0.1");
	b = wire_connect_from(port, "127.0.0.1");
	expect_healthz(b);			/* b has been used */
	c = wire_connect_from(port, "127.0.0.1");
	x = wire_connect_from(port, "127.0.0.1");
	expect_503(x, "too many connections from your address");
	assert_int_equal(ocsp_http_stat(h, OCSP_HTTP_REFUSED_PER_ADDRESS), 1);
	assert_int_equal(ocsp_http_stat(h, OCSP_HTTP_SHED), 0);

	d = wire_connect_from(port, "127.0.0.2");	/* 4: no shed */
	expect_healthz(b);			/* d is accepted by now */
	assert_int_equal(ocsp_http_stat(h, OCSP_HTTP_SHED), 0);
	e = wire_connect_from(port, "127.0.0.2");	/* 5: sheds a */
	expect_503(a, "make room");
	f = wire_connect_from(port, "127.0.0.2");	/* 5: sheds c */
	/* .1 holds b and c, .2 holds d and e: a tie, c is the oldest */
	expect_503(c, "make room");
	g = wire_connect_from(port, "127.0.0.3");	/* 5: .2 (3) sheds d */
	expect_503(d, "make room");
	assert_int_equal(ocsp_http_stat(h, OCSP_HTTP_SHED), 3);
	expect_healthz(b);			/* never-used ones go first */
	expect_healthz(e);
	expect_healthz(f);
	expect_healthz(g);
	close(b);
	close(e);
	close(f);
	close(g);
	assert_int_equal(ocsp_http_stat(h, OCSP_HTTP_REFUSED_MAX_CONNECTIONS),
	    0);
	ocsp_http_free(h);
}

static int hook_calls;

static void
count_hook(void *arg)
{
	(void)arg;
	hook_calls++;
}

/* A signer valid from now + nb to now + na (seconds). */
static X509 *
signer_at(EVP_PKEY *key, long nb, long na)
{
	uint8_t sn[16];
	X509 *x;

	random_serial(sn);
	x = make_cert("Clock OCSP", F.ca, F.ca_key, key, sn, 2);
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), nb));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), na));
	assert_true(X509_sign(x, F.ca_key, EVP_sha256()) > 0);
	return x;
}

/* The answer is tryLater (RFC 6960 2.3), nothing else. */
static void
expect_trylater(const uint8_t *der, size_t len)
{
	struct ocsp_answer a;

	assert_true(ocsp_respond(F.c, &a, der, len));
	assert_int_equal(a.result, OCSPRES_TRYLATER);
	assert_int_equal(a.der_len, 5);
	assert_memory_equal(a.der, "\x30\x03\x0a\x01\x03", 5);
	assert_false(a.cacheable);
	ocsp_answer_cleanup(&a);
}

/*
 * Never an answer signed by a signer outside its validity: expired or
 * not yet valid, the request gets tryLater, the owner's hook is called
 * (rate-limited), a cached answer of a signer that is no longer valid is
 * not served, nextUpdate never passes the signer's notAfter, and a valid
 * signer answers again at once.
 */
static void
test_signer_validity(void **state)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *expired, *future, *short_s;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	ASN1_GENERALIZEDTIME *nextupd = NULL;
	struct ocsp_cache *cache = ocsp_responder_cache(F.r);
	struct ocsp_blob *b;
	struct ocsp_answer a;
	OCSP_REQUEST *req;
	atomic_uint_fast64_t gen;
	uint8_t serials[1][16], *der;
	size_t len;
	int64_t nb, na, now = time(NULL);

	(void)state;
	assert_non_null(k);
	expired = signer_at(k, -86400 * 10, -60);
	future = signer_at(k, 3600, 86400 * 10);
	ocsp_responder_set_invalid_hook(F.r, count_hook, NULL);
	hook_calls = 0;
	req = make_req(&F.leaf[L_GOOD2], 1, F.ca, EVP_sha1(), 0);
	der = req_der(req, &len);

	assert_int_equal(ocsp_responder_set_signer(F.r, expired, k), 1);
	ocsp_responder_signer_times(F.r, &nb, &na);
	assert_true(na < now && nb < na);
	expect_trylater(der, len);
	assert_int_equal(hook_calls, 1);
	expect_trylater(der, len);		/* rate-limited */
	assert_int_equal(hook_calls, 1);
	assert_int_equal(ocsp_stat_result(F.r, OCSPRES_TRYLATER) >= 2, 1);

	assert_int_equal(ocsp_responder_set_signer(F.r, future, k), 1);
	expect_trylater(der, len);
	assert_int_equal(hook_calls, 2);	/* a swap re-arms it */

	/* a signer with 10 minutes left: nextUpdate is cut at its notAfter */
	short_s = signer_at(k, -60, 600);
	assert_int_equal(ocsp_responder_set_signer(F.r, short_s, k), 1);
	resp = ask(F.c, req, &a);
	bs = basic(resp);
	assert_int_equal(OCSP_single_get0_status(OCSP_resp_get0(bs, 0), NULL,
	    NULL, NULL, &nextupd), V_OCSP_CERTSTATUS_GOOD);
	assert_non_null(nextupd);
	assert_int_equal(ASN1_TIME_compare(nextupd,
	    X509_get0_notAfter(short_s)), 0);
	assert_true(a.next_update <= now + 601);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ocsp_answer_cleanup(&a);

	/* a valid signer answers, and its answer is cached */
	assert_int_equal(ocsp_responder_set_signer(F.r, F.signer,
	    F.signer_key), 1);
	assert_true(ocsp_respond(F.c, &a, der, len));
	assert_int_equal(a.result, OCSPRES_GOOD);
	assert_true(a.cacheable);
	ocsp_answer_cleanup(&a);
	assert_true(ocsp_respond_cached(F.c, &a, der, len));
	ocsp_answer_cleanup(&a);

	/* the cache serves an answer only inside its signer's validity */
	atomic_init(&gen, 0);
	memset(serials, 0, sizeof(serials));
	b = ocsp_blob_new((const uint8_t *)"r", 1);
	b->this_update = now;
	b->next_update = now + 100;
	b->signer_not_before = now - 100;
	b->signer_not_after = now - 1;
	assert_int_equal(ocsp_cache_put(cache, 7, (const uint8_t *)"k", 1, b,
	    (const uint8_t (*)[16])serials, 1, &gen, 0), 1);
	assert_null(ocsp_cache_get(cache, 7, (const uint8_t *)"k", 1, now));
	b->signer_not_before = now + 10;
	b->signer_not_after = now + 1000;
	assert_null(ocsp_cache_get(cache, 7, (const uint8_t *)"k", 1, now));
	b->signer_not_before = now - 10;
	ocsp_blob_unref(ocsp_cache_get(cache, 7, (const uint8_t *)"k", 1,
	    now));
	assert_int_equal(ocsp_cache_invalidate(cache, NULL) >= 1, 1);
	ocsp_blob_unref(b);

	ocsp_responder_set_invalid_hook(F.r, NULL, NULL);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);
	X509_free(expired);
	X509_free(future);
	X509_free(short_s);
	EVP_PKEY_free(k);
}

/* A remote signer for the split below: signs with the OCSP key here. */
static int
test_rsign(void *arg, enum rsign_kind kind, const uint8_t *tbs,
    size_t tbs_len, uint8_t *sig, size_t sig_cap, size_t *out_sig_len)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok;

	(void)arg;
	assert_int_equal(kind, RSIGN_OCSP);
	*out_sig_len = sig_cap;
	ok = m != NULL && EVP_DigestSignInit_ex(m, NULL, "SHA256", NULL,
	    NULL, F.signer_key, NULL) == 1 && EVP_DigestSign(m, sig,
	    out_sig_len, tbs, tbs_len) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

/* Signs a pending answer's ResponseData as the signer process would. */
static size_t
sign_pending(struct ocsp_pending *p, uint8_t *sig, size_t cap)
{
	const uint8_t *tbs;
	size_t tbs_len, n = cap;

	tbs = ocsp_pending_tbs(p, &tbs_len);
	assert_non_null(tbs);
	assert_true(tbs_len > 0);
	assert_int_equal(test_rsign(NULL, RSIGN_OCSP, tbs, tbs_len, sig, cap,
	    &n), 1);
	return n;
}

/*
 * ocsp_respond_begin / ocsp_respond_finish (the HTTP threads' signer
 * channel): with a remote signer nothing is signed in begin; finish with
 * the signature gives the same answers as ocsp_respond (nonce echoed,
 * verified, a nonce-less one cached); no signature, or one over the
 * signer's size, gives internalError; a malformed request never waits.
 */
static void
test_respond_split(void **state)
{
	static const struct rsign rs = { test_rsign, NULL, NULL };
	struct ocsp_opts oo;
	struct ocsp_responder *r;
	struct ocsp_ctx *c;
	struct ocsp_pending *p;
	struct ocsp_answer a;
	OCSP_REQUEST *req;
	OCSP_RESPONSE *resp;
	OCSP_BASICRESP *bs;
	const unsigned char *q;
	uint8_t *der, sig[512];
	size_t len, n;

	(void)state;
	ocsp_opts_defaults(&oo);
	oo.next_update = NEXT_UPDATE;
	oo.rsign = &rs;
	r = ocsp_responder_new(&oo, F.ca, F.signer, F.signer_key, F.store);
	assert_non_null(r);
	c = ocsp_ctx_new(r);
	assert_non_null(c);

	/* a nonce: signed outside, echoed, verifies, not cacheable */
	req = make_req(&F.leaf[L_REVOKED], 1, F.ca, EVP_sha1(), 16);
	der = req_der(req, &len);
	assert_int_equal(ocsp_respond_cached(c, &a, der, len), 0);
	assert_int_equal(ocsp_respond_begin(c, &a, &p, der, len), 2);
	assert_non_null(p);
	n = sign_pending(p, sig, sizeof(sig));
	assert_int_equal(ocsp_respond_finish(c, p, &a, sig, n), 1);
	ocsp_pending_free(p);
	assert_canonical(a.der, a.der_len);
	q = a.der;
	resp = d2i_OCSP_RESPONSE(NULL, &q, (long)a.der_len);
	bs = basic(resp);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	assert_int_equal(a.cacheable, 0);
	assert_int_equal(a.result, OCSPRES_REVOKED);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	ocsp_answer_cleanup(&a);

	/* the signer failed: internalError, nothing cached */
	assert_int_equal(ocsp_respond_begin(c, &a, &p, der, len), 2);
	assert_int_equal(ocsp_respond_finish(c, p, &a, NULL, 0), 1);
	assert_int_equal(a.result, OCSPRES_INTERNAL);
	assert_int_equal(a.der_len, 5);
	assert_int_equal(a.der[4], 2);
	ocsp_answer_cleanup(&a);
	/* a signature longer than the key can make: refused likewise */
	memset(sig, 0x55, sizeof(sig));
	assert_int_equal(ocsp_respond_finish(c, p, &a, sig, sizeof(sig)), 1);
	assert_int_equal(a.result, OCSPRES_INTERNAL);
	ocsp_answer_cleanup(&a);
	/* and an empty one */
	assert_int_equal(ocsp_respond_finish(c, p, &a, sig, 0), 1);
	assert_int_equal(a.result, OCSPRES_INTERNAL);
	ocsp_answer_cleanup(&a);
	ocsp_pending_free(p);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);

	/* no nonce: finished answers are cached like ocsp_respond's */
	req = make_req(&F.leaf[L_GOOD], 1, F.ca, EVP_sha1(), 0);
	der = req_der(req, &len);
	assert_int_equal(ocsp_respond_cached(c, &a, der, len), 0);
	assert_int_equal(ocsp_respond_begin(c, &a, &p, der, len), 2);
	n = sign_pending(p, sig, sizeof(sig));
	assert_int_equal(ocsp_respond_finish(c, p, &a, sig, n), 1);
	ocsp_pending_free(p);
	assert_int_equal(a.cacheable, 1);
	assert_int_equal(a.result, OCSPRES_GOOD);
	assert_true(a.etag[0] == '"');
	ocsp_answer_cleanup(&a);
	assert_int_equal(ocsp_respond_cached(c, &a, der, len), 1);
	assert_int_equal(a.result, OCSPRES_GOOD);
	ocsp_answer_cleanup(&a);
	OPENSSL_free(der);
	OCSP_REQUEST_free(req);

	/* malformed: answered at once, no pending answer */
	assert_int_equal(ocsp_respond_begin(c, &a, &p, (const uint8_t *)
	    "\x30\x03\x02\x01", 4), 1);
	assert_null(p);
	assert_int_equal(a.result, OCSPRES_MALFORMED);
	ocsp_answer_cleanup(&a);

	/* the synchronous path through the same remote signer still works */
	req = make_req(&F.leaf[L_HOLD], 1, F.ca, EVP_sha1(), 32);
	resp = ask(c, req, &a);
	bs = basic(resp);
	assert_int_equal(OCSP_check_nonce(req, bs), 1);
	OCSP_BASICRESP_free(bs);
	OCSP_RESPONSE_free(resp);
	OCSP_REQUEST_free(req);
	ocsp_answer_cleanup(&a);

	ocsp_ctx_free(c);
	ocsp_responder_free(r);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_revoked),
		cmocka_unit_test(test_hold),
		cmocka_unit_test(test_unknown),
		cmocka_unit_test(test_sha256_certid),
		cmocka_unit_test(test_unknown_revoked),
		cmocka_unit_test(test_foreign_issuer),
		cmocka_unit_test(test_three_certids),
		cmocka_unit_test(test_nonce_echo),
		cmocka_unit_test(test_nonce_bad),
		cmocka_unit_test(test_garbage),
		cmocka_unit_test(test_certid_count),
		cmocka_unit_test(test_cache_and_invalidate),
		cmocka_unit_test(test_generation_guard),
		cmocka_unit_test(test_cache_bounds),
		cmocka_unit_test(test_get_decode),
		cmocka_unit_test(test_metrics),
		cmocka_unit_test(test_http),
		cmocka_unit_test(test_http_wire),
		cmocka_unit_test(test_encoder_vs_openssl),
		cmocka_unit_test(test_encoder_ext_revoke),
		cmocka_unit_test(test_encoder_other_keys),
		cmocka_unit_test(test_derw),
		cmocka_unit_test(test_signer_swap),
		cmocka_unit_test(test_http_limits),
		cmocka_unit_test(test_signer_validity),
		cmocka_unit_test(test_respond_split),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * test_sign.c - the signer protocol codec (ca/sign_proto.c) and the
 * signer's DER walkers (ca/sign_policy.c): round trips, every malformed
 * frame rule, truncated and malformed TBSCertList / ResponseData; the
 * TBSCertificate parser (sign_tbs_parse) on non-DER and malformed
 * input, and its policy (sign_tbs_check) against sign_cert_check's on
 * the same certificates.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ca/sign_policy.h"
#include "ca/sign_proto.h"
#include "common/bytes.h"

static enum sign_parse_rc
parse(const struct wb *b, struct sign_frame *f, size_t *used)
{
	char err[256];

	return sign_frame_parse(f, used, b->data, b->len, err, sizeof(err));
}

static void
test_roundtrip(void **state)
{
	struct wb b;
	struct sign_frame f;
	size_t used;
	static const uint8_t body[] = "ResponseData";

	(void)state;
	wb_init(&b);
	assert_true(sign_frame_encode(&b, SIGN_T_OCSP, 77, body,
	    sizeof(body)));
	assert_true(sign_frame_encode(&b, SIGN_T_HELLO, 78, NULL, 0));
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_OK);
	assert_int_equal(f.type, SIGN_T_OCSP);
	assert_int_equal(f.id, 77);
	assert_int_equal(f.body_len, sizeof(body));
	assert_memory_equal(f.body, body, sizeof(body));
	assert_int_equal(used, SIGN_HDR_LEN + sizeof(body));
	/* the second frame, pipelined behind it */
	assert_int_equal(sign_frame_parse(&f, &used, b.data + used,
	    b.len - used, NULL, 0), SIGN_PARSE_OK);
	assert_int_equal(f.type, SIGN_T_HELLO);
	assert_int_equal(f.id, 78);
	assert_int_equal(f.body_len, 0);
	wb_cleanup(&b);
}

static void
test_short(void **state)
{
	struct wb b;
	struct sign_frame f;
	size_t used, i;
	char err[64];

	(void)state;
	wb_init(&b);
	assert_true(sign_frame_encode(&b, SIGN_T_CRL, 1, "0123456789", 10));
	for (i = 0; i < b.len; i++) {
		assert_int_equal(sign_frame_parse(&f, &used, b.data, i, err,
		    sizeof(err)), SIGN_PARSE_SHORT);
		/* once the header is there, the whole length is known */
		assert_int_equal(used, i < SIGN_HDR_LEN ? 0 : b.len);
	}
	wb_cleanup(&b);
}

/* A raw header: len, type, flags, id. */
static void
raw(struct wb *b, uint32_t len, uint16_t type, uint16_t flags)
{
	wb_init(b);
	wb_u32(b, len);
	wb_u16(b, type);
	wb_u16(b, flags);
	wb_u32(b, 9);
}

static void
test_malformed(void **state)
{
	struct wb b;
	struct sign_frame f;
	size_t used;

	(void)state;
	raw(&b, 7, SIGN_T_HELLO, 0);		/* below the header */
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	raw(&b, 8, 99, 0);			/* unknown type */
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	raw(&b, 8, 0, 0);			/* type 0 */
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	raw(&b, 8, SIGN_T_HELLO, 1);		/* flags */
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	raw(&b, 9, SIGN_T_HELLO, 0);		/* HELLO has no body */
	wb_u8(&b, 0);
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	/* over the limit: refused from the header, body never awaited */
	raw(&b, 8 + SIGN_OCSP_MAX + 1, SIGN_T_OCSP, 0);
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	raw(&b, 8 + SIGN_CERT_MAX + 1, SIGN_T_CERT, 0);
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	raw(&b, 0xffffffffu, SIGN_T_CRL, 0);
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	raw(&b, 8 + SIGN_SMALL_MAX + 1, SIGN_R_ERR, 0);
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	/* the largest CRL is a header the reader may wait for */
	raw(&b, 8 + SIGN_CRL_MAX, SIGN_T_CRL, 0);
	assert_int_equal(parse(&b, &f, &used), SIGN_PARSE_SHORT);
	assert_int_equal(used, 12 + SIGN_CRL_MAX);
	wb_cleanup(&b);
	/* the encoder refuses what the parser would */
	wb_init(&b);
	assert_false(sign_frame_encode(&b, SIGN_T_HELLO, 1, "x", 1));
	assert_false(sign_frame_encode(&b, 42, 1, NULL, 0));
	wb_cleanup(&b);
}

/* A batch of OCSP frames, as a channel reads it. */
static void
test_batch(void **state)
{
	struct wb b;
	struct sign_frame f[SIGN_BATCH_MAX];
	size_t n, used, i, whole;
	char err[256];

	(void)state;
	wb_init(&b);
	for (i = 0; i < 3; i++)
		assert_true(sign_frame_encode(&b, SIGN_T_OCSP,
		    (uint32_t)(10 + i), "tbs", 3));
	whole = b.len;
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used,
	    SIGN_T_OCSP, b.data, b.len, err, sizeof(err)), SIGN_PARSE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(used, whole);
	for (i = 0; i < 3; i++) {
		assert_int_equal(f[i].id, 10 + i);
		assert_int_equal(f[i].body_len, 3);
		assert_memory_equal(f[i].body, "tbs", 3);
	}
	/* a partial fourth frame waits; the three complete ones go */
	assert_true(sign_frame_encode(&b, SIGN_T_OCSP, 13, "tbs", 3));
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used,
	    SIGN_T_OCSP, b.data, b.len - 1, err, sizeof(err)),
	    SIGN_PARSE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(used, whole);
	/* the count limit: max, then the rest in the next round */
	assert_int_equal(sign_batch_parse(f, 2, &n, &used, SIGN_T_OCSP,
	    b.data, b.len, err, sizeof(err)), SIGN_PARSE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(used, 2 * (SIGN_HDR_LEN + 3));
	/* never more than SIGN_BATCH_MAX, whatever max says */
	wb_cleanup(&b);
	wb_init(&b);
	for (i = 0; i < SIGN_BATCH_MAX + 5; i++)
		assert_true(sign_frame_encode(&b, SIGN_T_OCSP, (uint32_t)i,
		    "x", 1));
	assert_int_equal(sign_batch_parse(f, 1000, &n, &used, SIGN_T_OCSP,
	    b.data, b.len, err, sizeof(err)), SIGN_PARSE_OK);
	assert_int_equal(n, SIGN_BATCH_MAX);
	assert_int_equal(used, SIGN_BATCH_MAX * (SIGN_HDR_LEN + 1));
	wb_cleanup(&b);
	/* nothing complete: SHORT, with the first frame's length */
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used,
	    SIGN_T_OCSP, NULL, 0, err, sizeof(err)), SIGN_PARSE_SHORT);
	assert_int_equal(n, 0);
	assert_int_equal(used, 0);
	wb_init(&b);
	assert_true(sign_frame_encode(&b, SIGN_T_OCSP, 1, "tbs", 3));
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used,
	    SIGN_T_OCSP, b.data, SIGN_HDR_LEN, err, sizeof(err)),
	    SIGN_PARSE_SHORT);
	assert_int_equal(used, SIGN_HDR_LEN + 3);
	/* another type inside the batch closes the channel */
	assert_true(sign_frame_encode(&b, SIGN_T_CRL, 2, "tbs", 3));
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used,
	    SIGN_T_OCSP, b.data, b.len, err, sizeof(err)), SIGN_PARSE_BAD);
	assert_non_null(strstr(err, "crl frame in a batch of ocsp"));
	assert_int_equal(n, 0);
	wb_cleanup(&b);
	/* a malformed header after good frames closes it too */
	wb_init(&b);
	assert_true(sign_frame_encode(&b, SIGN_T_OCSP, 1, "tbs", 3));
	wb_u32(&b, 8 + SIGN_OCSP_MAX + 1);
	wb_u16(&b, SIGN_T_OCSP);
	wb_u16(&b, 0);
	wb_u32(&b, 2);
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used,
	    SIGN_T_OCSP, b.data, b.len, err, sizeof(err)), SIGN_PARSE_BAD);
	wb_cleanup(&b);
	/* replies (type 0): OK and ERR, nothing else */
	wb_init(&b);
	assert_true(sign_frame_encode(&b, SIGN_R_OK, 1, "sig", 3));
	assert_true(sign_frame_encode(&b, SIGN_R_ERR, 2, "no", 2));
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used, 0,
	    b.data, b.len, err, sizeof(err)), SIGN_PARSE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(f[1].type, SIGN_R_ERR);
	assert_true(sign_frame_encode(&b, SIGN_T_OCSP, 3, "tbs", 3));
	assert_int_equal(sign_batch_parse(f, SIGN_BATCH_MAX, &n, &used, 0,
	    b.data, b.len, err, sizeof(err)), SIGN_PARSE_BAD);
	wb_cleanup(&b);
}

static void
test_der_next(void **state)
{
	struct rd r, c;
	const uint8_t *tlv;
	size_t tl;
	uint8_t tag;
	static const uint8_t ok[] = { 0x30, 0x81, 0x80 };
	static const uint8_t nonmin[] = { 0x30, 0x81, 0x05, 1, 2, 3, 4, 5 };
	static const uint8_t lead0[] = { 0x30, 0x82, 0x00, 0x90 };
	static const uint8_t indef[] = { 0x30, 0x80, 0, 0 };
	static const uint8_t hightag[] = { 0x1f, 0x01, 0x00 };
	static const uint8_t toolong[] = { 0x04, 0x85, 1, 0, 0, 0, 0 };
	static const uint8_t past[] = { 0x04, 0x05, 1, 2 };

	(void)state;
	rd_init(&r, ok, sizeof(ok));		/* 128 bytes announced, 0 there */
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
	rd_init(&r, nonmin, sizeof(nonmin));
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
	rd_init(&r, lead0, sizeof(lead0));
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
	rd_init(&r, indef, sizeof(indef));
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
	rd_init(&r, hightag, sizeof(hightag));
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
	rd_init(&r, toolong, sizeof(toolong));
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
	rd_init(&r, past, sizeof(past));
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
	rd_init(&r, past, 0);
	assert_false(sign_der_next(&r, &tag, &c, &tlv, &tl));
}

/* A TBSCertList from OpenSSL, numbered number, delta when base > 0. */
static uint8_t *
make_tbs(size_t *out_len, long number, long base, int revoked)
{
	X509_CRL *crl = X509_CRL_new();
	X509_NAME *n = X509_NAME_new();
	ASN1_INTEGER *num = ASN1_INTEGER_new(), *b = ASN1_INTEGER_new();
	ASN1_TIME *t = ASN1_TIME_set(NULL, 1700000000);
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	unsigned char *der = NULL;
	uint8_t *out;
	int len, i;

	assert_non_null(crl);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"Unit CA", -1, -1, 0);
	X509_CRL_set_version(crl, X509_CRL_VERSION_2);
	X509_CRL_set_issuer_name(crl, n);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_CRL_set1_nextUpdate(crl, t);
	for (i = 0; i < revoked; i++) {
		X509_REVOKED *rv = X509_REVOKED_new();
		ASN1_INTEGER *sn = ASN1_INTEGER_new();

		ASN1_INTEGER_set(sn, 1000 + i);
		X509_REVOKED_set_serialNumber(rv, sn);
		X509_REVOKED_set_revocationDate(rv, t);
		X509_CRL_add0_revoked(crl, rv);
		ASN1_INTEGER_free(sn);
	}
	if (number >= 0) {
		ASN1_INTEGER_set(num, number);
		X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, 0);
	}
	if (base > 0) {
		ASN1_INTEGER_set(b, base);
		X509_CRL_add1_ext_i2d(crl, NID_delta_crl, b, 1, 0);
	}
	assert_true(X509_CRL_sign(crl, k, EVP_sha256()) > 0);
	assert_true((len = i2d_re_X509_CRL_tbs(crl, &der)) > 0);
	out = malloc((size_t)len);
	memcpy(out, der, (size_t)len);
	*out_len = (size_t)len;
	OPENSSL_free(der);
	EVP_PKEY_free(k);
	ASN1_TIME_free(t);
	ASN1_INTEGER_free(num);
	ASN1_INTEGER_free(b);
	X509_NAME_free(n);
	X509_CRL_free(crl);
	return out;
}

static void
test_crl_parse(void **state)
{
	struct sign_crl_info ci;
	uint8_t *tbs, *bad;
	size_t len, i;
	char err[256];

	(void)state;
	tbs = make_tbs(&len, 41, 0, 3);
	assert_true(sign_crl_parse(&ci, tbs, len, err, sizeof(err)));
	assert_int_equal(ci.number, 41);
	assert_false(ci.is_delta);
	assert_int_equal(ci.issuer[0], 0x30);
	/* every truncation, and a trailing byte, is refused */
	for (i = 0; i < len; i++)
		assert_false(sign_crl_parse(&ci, tbs, i, err, sizeof(err)));
	bad = malloc(len + 1);
	memcpy(bad, tbs, len);
	bad[len] = 0;
	assert_false(sign_crl_parse(&ci, bad, len + 1, err, sizeof(err)));
	/* a different outer tag */
	memcpy(bad, tbs, len);
	bad[0] = 0x31;
	assert_false(sign_crl_parse(&ci, bad, len, err, sizeof(err)));
	free(bad);
	free(tbs);

	tbs = make_tbs(&len, 42, 41, 0);
	assert_true(sign_crl_parse(&ci, tbs, len, err, sizeof(err)));
	assert_int_equal(ci.number, 42);
	assert_true(ci.is_delta);
	free(tbs);

	tbs = make_tbs(&len, -1, 0, 1);		/* no cRLNumber */
	assert_false(sign_crl_parse(&ci, tbs, len, err, sizeof(err)));
	assert_non_null(strstr(err, "5.2.3"));
	free(tbs);
}

static void
test_ocsp_parse(void **state)
{
	/* [0] version, [2] byKey, producedAt, responses, [1] extensions */
	static const uint8_t good[] = {
		0x30, 0x32, 0xa0, 0x03, 0x02, 0x01, 0x00,
		0xa2, 0x16, 0x04, 0x14,
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
		19, 20,
		0x18, 0x0f, '2', '0', '2', '6', '0', '1', '0', '1', '0', '0',
		'0', '0', '0', '0', 'Z', 0x30, 0x00, 0xa1, 0x00,
	};
	uint8_t bad[sizeof(good) + 1];
	const uint8_t *rid;
	size_t rlen, i;
	char err[256];

	(void)state;
	assert_true(sign_ocsp_parse(&rid, &rlen, good, sizeof(good), err,
	    sizeof(err)));
	assert_int_equal(rlen, 24);
	assert_ptr_equal(rid, good + 7);
	for (i = 0; i < sizeof(good); i++)
		assert_false(sign_ocsp_parse(&rid, &rlen, good, i, err,
		    sizeof(err)));
	memcpy(bad, good, sizeof(good));
	bad[sizeof(good)] = 0;
	assert_false(sign_ocsp_parse(&rid, &rlen, bad, sizeof(bad), err,
	    sizeof(err)));
	memcpy(bad, good, sizeof(good));
	bad[7] = 0xa3;				/* not a responderID */
	assert_false(sign_ocsp_parse(&rid, &rlen, bad, sizeof(good), err,
	    sizeof(err)));
	memcpy(bad, good, sizeof(good));
	bad[31] = 0x17;				/* producedAt UTCTime */
	assert_false(sign_ocsp_parse(&rid, &rlen, bad, sizeof(good), err,
	    sizeof(err)));
	/* a TBSCertificate is no ResponseData: the key's domains differ */
	memcpy(bad, good, sizeof(good));
	bad[7] = 0x02;
	assert_false(sign_ocsp_parse(&rid, &rlen, bad, sizeof(good), err,
	    sizeof(err)));
}

static void
test_respid(void **state)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *x = X509_new();
	uint8_t rid[SIGN_RESPID_LEN], h[20];
	unsigned int n = 0;

	(void)state;
	assert_non_null(k);
	assert_true(sign_respid_bykey(rid, k));
	assert_true(X509_set_pubkey(x, k));
	assert_int_equal(X509_pubkey_digest(x, EVP_sha1(), h, &n), 1);
	assert_int_equal(rid[0], 0xa2);
	assert_int_equal(rid[1], 22);
	assert_memory_equal(rid + 4, h, 20);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* 1 if the spans' signature verifies under k over the TBS span. */
static int
spans_verify(EVP_PKEY *k, const struct sign_cert_spans *c)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok;

	ok = m != NULL && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL,
	    k) == 1 && EVP_DigestVerify(m, c->sig, c->sig_len, c->tbs,
	    c->tbs_len) == 1;
	EVP_MD_CTX_free(m);
	return ok;
}

/*
 * sign_cert_spans: a real certificate splits into the TBS, the
 * algorithm and the signature bytes; every malformed shape is refused
 * (trailing bytes, a missing or extra element, wrong tags, unused bits,
 * an empty signature, lengths past the end, every truncation).
 */
static void
test_cert_spans(void **state)
{
	struct sign_cert_spans c;
	EVP_PKEY *k;
	X509 *x;
	X509_NAME *n;
	unsigned char *der = NULL, buf[4096];
	size_t i;
	int len;
	static const uint8_t bad[][16] = {
		/* SEQ { SEQ{}, SEQ{}, BIT STRING 00 01 } : good shape */
		{ 0x30, 0x08, 0x30, 0x00, 0x30, 0x00, 0x03, 0x02, 0x00, 0x01 },
		/* unused bits 1 */
		{ 0x30, 0x08, 0x30, 0x00, 0x30, 0x00, 0x03, 0x02, 0x01, 0x01 },
		/* empty signature */
		{ 0x30, 0x07, 0x30, 0x00, 0x30, 0x00, 0x03, 0x01, 0x00 },
		/* OCTET STRING for the signature */
		{ 0x30, 0x08, 0x30, 0x00, 0x30, 0x00, 0x04, 0x02, 0x00, 0x01 },
		/* TBS not a SEQUENCE */
		{ 0x30, 0x08, 0x31, 0x00, 0x30, 0x00, 0x03, 0x02, 0x00, 0x01 },
		/* an element after the signature */
		{ 0x30, 0x0a, 0x30, 0x00, 0x30, 0x00, 0x03, 0x02, 0x00, 0x01,
		  0x05, 0x00 },
		/* two elements only */
		{ 0x30, 0x04, 0x30, 0x00, 0x03, 0x02, 0x00, 0x01 },
		/* outer length past the end */
		{ 0x30, 0x09, 0x30, 0x00, 0x30, 0x00, 0x03, 0x02, 0x00, 0x01 },
		/* indefinite length */
		{ 0x30, 0x80, 0x30, 0x00, 0x30, 0x00, 0x03, 0x02, 0x00, 0x01,
		  0x00, 0x00 },
	};
	static const size_t bad_len[] = { 10, 10, 9, 10, 10, 12, 6, 10, 12 };

	(void)state;
	assert_true(sign_cert_spans(&c, bad[0], bad_len[0]));
	assert_int_equal(c.sig_len, 1);
	assert_int_equal(c.sig[0], 0x01);
	assert_ptr_equal(c.tbs, bad[0] + 2);
	assert_int_equal(c.tbs_len, 2);
	for (i = 1; i < sizeof(bad_len) / sizeof(bad_len[0]); i++)
		assert_false(sign_cert_spans(&c, bad[i], bad_len[i]));
	/* trailing byte after the certificate */
	memcpy(buf, bad[0], 10);
	buf[10] = 0;
	assert_false(sign_cert_spans(&c, buf, 11));

	/* a real certificate: the spans are its TBS and signature */
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(k);
	x = X509_new();
	n = X509_get_subject_name(x);
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"t", -1, -1, 0));
	assert_true(X509_set_issuer_name(x, n));
	assert_true(X509_set_pubkey(x, k));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 60));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	len = i2d_X509(x, &der);
	assert_true(len > 0 && (size_t)len < sizeof(buf));
	assert_true(sign_cert_spans(&c, der, (size_t)len));
	{
		unsigned char *tbs = NULL;
		const ASN1_BIT_STRING *sig;
		int tl = i2d_re_X509_tbs(x, &tbs);

		assert_int_equal((size_t)tl, c.tbs_len);
		assert_memory_equal(tbs, c.tbs, c.tbs_len);
		X509_get0_signature(&sig, NULL, x);
		assert_int_equal((size_t)ASN1_STRING_length(sig), c.sig_len);
		assert_memory_equal(ASN1_STRING_get0_data(sig), c.sig,
		    c.sig_len);
		OPENSSL_free(tbs);
	}
	assert_int_equal(spans_verify(k, &c), 1);
	/* every truncation is refused */
	for (i = 0; i < (size_t)len; i++)
		assert_false(sign_cert_spans(&c, der, i));
	OPENSSL_free(der);
	X509_free(x);
	EVP_PKEY_free(k);
}

/* ---- sign_tbs_parse / sign_tbs_check ---- */

static struct {
	EVP_PKEY	*ca_key, *ocsp_key, *pending;
	X509		*ca;
	unsigned char	*alg;
	int		 alg_len;
	long		 serial;
} tc;

static void
tc_setup(void)
{
	X509_NAME *n;
	X509 *tmp;

	if (tc.ca != NULL)
		return;
	tc.ca_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	tc.ocsp_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	tc.pending = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	assert_non_null(tc.ca_key);
	assert_non_null(tc.ocsp_key);
	assert_non_null(tc.pending);
	tc.ca = X509_new();
	assert_true(X509_set_version(tc.ca, X509_VERSION_3));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(tc.ca), 1));
	n = X509_get_subject_name(tc.ca);
	assert_true(X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)"Test CA", -1, -1, 0));
	assert_true(X509_set_issuer_name(tc.ca, n));
	assert_true(X509_set_pubkey(tc.ca, tc.ca_key));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(tc.ca), -86400));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(tc.ca),
	    86400L * 3650));
	assert_true(X509_sign(tc.ca, tc.ca_key, EVP_sha256()) > 0);
	/* the AlgorithmIdentifier the CA key writes */
	tmp = X509_new();
	assert_true(X509_set_pubkey(tmp, tc.ca_key));
	assert_true(X509_sign(tmp, tc.ca_key, EVP_sha256()) > 0);
	tc.alg_len = i2d_X509_ALGOR(X509_get0_tbs_sigalg(tmp), &tc.alg);
	assert_true(tc.alg_len > 0);
	X509_free(tmp);
	tc.serial = 1000;
}

static void
tc_rules(struct sign_cert_rules *r)
{
	memset(r, 0, sizeof(*r));
	r->ca = tc.ca;
	r->alg = tc.alg;
	r->alg_len = (size_t)tc.alg_len;
	r->ocsp_pub = tc.ocsp_key;
	r->pending_pub = tc.pending;
}

static void
tc_ext(X509 *x, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, tc.ca, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	assert_non_null(e);
	assert_true(X509_add_ext(x, e, -1));
	X509_EXTENSION_free(e);
}

/* An unsigned leaf issued by the test CA for key (a fresh P-256 one
 * when NULL), a new serial each time. */
static X509 *
tc_leaf(EVP_PKEY *key)
{
	X509 *x = X509_new();
	EVP_PKEY *k = key;

	assert_non_null(x);
	if (k == NULL)
		k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(k);
	assert_true(X509_set_version(x, X509_VERSION_3));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), ++tc.serial));
	assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x),
	    "CN", MBSTRING_ASC, (const unsigned char *)"leaf", -1, -1, 0));
	assert_true(X509_set_issuer_name(x, X509_get_subject_name(tc.ca)));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_true(X509_set_pubkey(x, k));
	tc_ext(x, NID_basic_constraints, "critical,CA:FALSE");
	tc_ext(x, NID_key_usage, "critical,digitalSignature");
	if (key == NULL)
		EVP_PKEY_free(k);
	return x;
}

/* x signed by signer (the TBS's algorithm), as a TBS DER and a whole
 * certificate DER. */
static void
tc_encode(X509 *x, EVP_PKEY *signer, unsigned char **tbs, int *tbs_len,
    unsigned char **cert, int *cert_len)
{
	assert_true(X509_sign(x, signer, EVP_PKEY_is_a(signer, "ED25519") ?
	    NULL : EVP_sha256()) > 0);
	*tbs = NULL;
	*tbs_len = i2d_re_X509_tbs(x, tbs);
	assert_true(*tbs_len > 0);
	if (cert != NULL) {
		*cert = NULL;
		*cert_len = i2d_X509(x, cert);
		assert_true(*cert_len > 0);
	}
}

/*
 * Both checks on x: sign_tbs_check on its TBS and sign_cert_check on the
 * decoded certificate give want_ok, and a refusal names `why`.
 */
static void
both(X509 *x, EVP_PKEY *signer, int renewal, int want_ok, const char *why)
{
	struct sign_cert_rules r;
	struct sign_tbs t;
	unsigned char *tbs, *cert;
	const unsigned char *p;
	int tl, cl, ok;
	X509 *y;
	char err[512], err2[512];
	uint8_t h1[32], h2[32];
	unsigned int n1 = 0, n2 = 0;

	tc_rules(&r);
	tc_encode(x, signer, &tbs, &tl, &cert, &cl);
	assert_true(sign_tbs_parse(&t, tbs, (size_t)tl, err, sizeof(err)));
	err[0] = err2[0] = '\0';
	ok = sign_tbs_check(&r, &t, renewal, err, sizeof(err));
	/* the same with the keys' points made before (the signer's way) */
	{
		struct sign_cert_rules r2 = r;
		struct sign_tbs t2;
		struct sign_key_pt cp, op, pp;
		char err3[512] = "";

		sign_key_pt_set(&cp, X509_get0_pubkey(tc.ca));
		sign_key_pt_set(&op, tc.ocsp_key);
		sign_key_pt_set(&pp, tc.pending);
		assert_int_equal(cp.kind, SIGN_KEY_EC);
		assert_int_equal(pp.kind, SIGN_KEY_NOT_EC);
		r2.ca_pt = &cp;
		r2.ocsp_pt = &op;
		r2.pending_pt = &pp;
		assert_true(sign_tbs_parse(&t2, tbs, (size_t)tl, err3,
		    sizeof(err3)));
		assert_int_equal(sign_tbs_check(&r2, &t2, renewal, err3,
		    sizeof(err3)), ok);
		assert_string_equal(err3, err);
		sign_tbs_cleanup(&t2);
	}
	p = cert;
	y = d2i_X509(NULL, &p, cl);
	assert_non_null(y);
	assert_int_equal(sign_cert_check(&r, y, renewal, err2, sizeof(err2)),
	    ok);
	assert_string_equal(err, err2);
	if (ok != want_ok)
		print_error("want %d, got %d (%s) for %s\n", want_ok, ok, err,
		    why != NULL ? why : "-");
	assert_int_equal(ok, want_ok);
	if (why != NULL)
		assert_non_null(strstr(err, why));
	/* the signer's log line: the same serial and key digest */
	assert_int_equal(X509_pubkey_digest(t.x, EVP_sha256(), h1, &n1), 1);
	assert_int_equal(X509_pubkey_digest(y, EVP_sha256(), h2, &n2), 1);
	assert_int_equal(n1, 32);
	assert_memory_equal(h1, h2, 32);
	assert_int_equal(ASN1_INTEGER_cmp(X509_get0_serialNumber(t.x),
	    X509_get0_serialNumber(y)), 0);
	sign_tbs_cleanup(&t);
	X509_free(y);
	OPENSSL_free(tbs);
	OPENSSL_free(cert);
}

/* A key equal to k with its point written another way ("compressed")
 * or its curve as explicit parameters ("explicit"). */
static EVP_PKEY *
reencoded(EVP_PKEY *k, const char *param, const char *value)
{
	unsigned char *der = NULL;
	const unsigned char *p;
	EVP_PKEY *d = EVP_PKEY_dup(k), *out;
	int n;

	assert_non_null(d);
	assert_int_equal(EVP_PKEY_set_utf8_string_param(d, param,
	    (char *)value), 1);
	n = i2d_PUBKEY(d, &der);
	assert_true(n > 0);
	p = der;
	out = d2i_PUBKEY(NULL, &p, n);
	assert_non_null(out);
	OPENSSL_free(der);
	EVP_PKEY_free(d);
	return out;
}

/* The policy, as sign_cert_check's, rule by rule. */
static void
test_tbs_policy(void **state)
{
	EVP_PKEY *k, *other;
	X509 *x;

	(void)state;
	tc_setup();
	both(x = tc_leaf(NULL), tc.ca_key, 0, 1, NULL);
	X509_free(x);
	/* other key types: RSA, Ed25519 (built from their parts) */
	k = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	both(x = tc_leaf(k), tc.ca_key, 0, 1, NULL);
	X509_free(x);
	EVP_PKEY_free(k);
	k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	both(x = tc_leaf(k), tc.ca_key, 0, 1, NULL);
	X509_free(x);
	EVP_PKEY_free(k);
	/* cA, keyCertSign, cRLSign */
	x = tc_leaf(NULL);
	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x,
	    NID_basic_constraints, -1)));
	tc_ext(x, NID_basic_constraints, "critical,CA:TRUE");
	both(x, tc.ca_key, 0, 0, "basicConstraints cA");
	X509_free(x);
	x = tc_leaf(NULL);
	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x,
	    NID_key_usage, -1)));
	tc_ext(x, NID_key_usage, "critical,digitalSignature,cRLSign");
	both(x, tc.ca_key, 0, 0, "cRLSign");
	X509_free(x);
	/* no basicConstraints nor keyUsage, Netscape CA types: a CA to
	 * OpenSSL */
	x = tc_leaf(NULL);
	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x,
	    NID_basic_constraints, -1)));
	X509_EXTENSION_free(X509_delete_ext(x, X509_get_ext_by_NID(x,
	    NID_key_usage, -1)));
	tc_ext(x, NID_netscape_cert_type, "sslCA");
	both(x, tc.ca_key, 0, 0, "basicConstraints cA");
	X509_free(x);
	/* a repeated extension */
	x = tc_leaf(NULL);
	tc_ext(x, NID_key_usage, "digitalSignature");
	both(x, tc.ca_key, 0, 0, "repeated");
	X509_free(x);
	/* the wrong signature algorithm: another key type's */
	other = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	both(x = tc_leaf(NULL), other, 0, 0, "signature algorithm");
	X509_free(x);
	EVP_PKEY_free(other);
	/* issuer, subject, validity, version, serial */
	x = tc_leaf(NULL);
	assert_true(X509_set_issuer_name(x, X509_get_subject_name(x)));
	both(x, tc.ca_key, 0, 0, "issuer is not this CA");
	X509_free(x);
	x = tc_leaf(NULL);
	assert_true(X509_set_subject_name(x, X509_get_subject_name(tc.ca)));
	both(x, tc.ca_key, 0, 0, "CA's own name");
	X509_free(x);
	x = tc_leaf(NULL);
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x),
	    86400L * 4000));
	both(x, tc.ca_key, 0, 0, "outside the CA");
	X509_free(x);
	x = tc_leaf(NULL);
	assert_true(X509_set_version(x, X509_VERSION_1));
	both(x, tc.ca_key, 0, 0, "not version 3");
	X509_free(x);
	x = tc_leaf(NULL);
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), -5));
	both(x, tc.ca_key, 0, 0, "positive integer");
	X509_free(x);
	/* OCSPSigning outside a renewal; a renewal for the pending key */
	x = tc_leaf(NULL);
	tc_ext(x, NID_ext_key_usage, "OCSPSigning");
	both(x, tc.ca_key, 0, 0, "OCSPSigning");
	X509_free(x);
	x = tc_leaf(tc.pending);
	tc_ext(x, NID_ext_key_usage, "OCSPSigning");
	both(x, tc.ca_key, 1, 1, NULL);
	X509_free(x);
	x = tc_leaf(NULL);
	tc_ext(x, NID_ext_key_usage, "OCSPSigning");
	both(x, tc.ca_key, 1, 0, "not the one the signer made");
	X509_free(x);
	x = tc_leaf(tc.pending);
	both(x, tc.ca_key, 1, 0, "needs id-kp-OCSPSigning");
	X509_free(x);
}

/* The CA's and the OCSP signer's keys, however encoded, are refused. */
static void
test_tbs_own_keys(void **state)
{
	EVP_PKEY *k;
	X509 *x;

	(void)state;
	tc_setup();
	both(x = tc_leaf(tc.ca_key), tc.ca_key, 0, 0, "CA's or the OCSP");
	X509_free(x);
	both(x = tc_leaf(tc.ocsp_key), tc.ca_key, 0, 0, "CA's or the OCSP");
	X509_free(x);
	k = reencoded(tc.ca_key, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    "compressed");
	both(x = tc_leaf(k), tc.ca_key, 0, 0, "CA's or the OCSP");
	X509_free(x);
	EVP_PKEY_free(k);
	k = reencoded(tc.ocsp_key,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed");
	both(x = tc_leaf(k), tc.ca_key, 0, 0, "CA's or the OCSP");
	X509_free(x);
	EVP_PKEY_free(k);
	/* the OCSP signer's key held compressed, the leaf's not */
	{
		EVP_PKEY *keep = tc.ocsp_key;
		unsigned char pt[200];
		size_t pl = 0;

		tc.ocsp_key = reencoded(keep,
		    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed");
		assert_int_equal(EVP_PKEY_get_octet_string_param(tc.ocsp_key,
		    OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt), &pl), 1);
		assert_int_equal(pl, 33);
		both(x = tc_leaf(keep), tc.ca_key, 0, 0, "CA's or the OCSP");
		X509_free(x);
		both(x = tc_leaf(NULL), tc.ca_key, 0, 1, NULL);
		X509_free(x);
		EVP_PKEY_free(tc.ocsp_key);
		tc.ocsp_key = keep;
	}
	/* explicit curve parameters: through d2i_PUBKEY */
	k = reencoded(tc.ca_key, OSSL_PKEY_PARAM_EC_ENCODING, "explicit");
	both(x = tc_leaf(k), tc.ca_key, 0, 0, "CA's or the OCSP");
	X509_free(x);
	EVP_PKEY_free(k);
	/* a P-384 leaf: another curve, signed */
	k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	both(x = tc_leaf(k), tc.ca_key, 0, 1, NULL);
	X509_free(x);
	EVP_PKEY_free(k);
}

static int
tbs_parses(const unsigned char *p, size_t len)
{
	struct sign_tbs t;
	char err[256];
	int ok;

	err[0] = '\0';
	ok = sign_tbs_parse(&t, p, len, err, sizeof(err));
	if (!ok) {
		assert_null(t.x);
		assert_non_null(strstr(err, "RFC 5280"));
	}
	sign_tbs_cleanup(&t);
	return ok;
}

/* Non-DER and malformed TBSCertificates are refused. */
static void
test_tbs_malformed(void **state)
{
	X509 *x;
	unsigned char *tbs, buf[4096];
	int tl;
	size_t i, hl;

	(void)state;
	tc_setup();
	x = tc_leaf(NULL);
	tc_ext(x, NID_subject_alt_name, "DNS:a-rather-long-name-for-the-"
	    "test-leaf.example.com,DNS:another-long-name.example.org");
	tc_encode(x, tc.ca_key, &tbs, &tl, NULL, NULL);
	assert_true(tl > 256 && (size_t)tl + 8 < sizeof(buf));
	assert_int_equal(tbs[0], 0x30);
	assert_int_equal(tbs[1], 0x82);	/* a two-byte length */
	assert_true(tbs_parses(tbs, (size_t)tl));
	/* every truncation */
	for (i = 0; i < (size_t)tl; i++)
		assert_false(tbs_parses(tbs, i));
	/* a trailing byte */
	memcpy(buf, tbs, (size_t)tl);
	buf[tl] = 0;
	assert_false(tbs_parses(buf, (size_t)tl + 1));
	/* the outer length in three bytes (not minimal) */
	hl = 4;
	buf[0] = 0x30;
	buf[1] = 0x83;
	buf[2] = 0;
	memcpy(buf + 3, tbs + 2, (size_t)tl - 2);
	assert_false(tbs_parses(buf, (size_t)tl + 1));
	/* indefinite length */
	buf[0] = 0x30;
	buf[1] = 0x80;
	memcpy(buf + 2, tbs + hl, (size_t)tl - hl);
	buf[tl - 2] = 0;
	buf[tl - 1] = 0;
	assert_false(tbs_parses(buf, (size_t)tl));
	/* a BOOLEAN TRUE that is not 0xff (critical) */
	memcpy(buf, tbs, (size_t)tl);
	for (i = 0; i + 3 < (size_t)tl; i++)
		if (buf[i] == 0x01 && buf[i + 1] == 0x01 && buf[i + 2] == 0xff)
			break;
	assert_true(i + 3 < (size_t)tl);
	buf[i + 2] = 0x01;
	assert_false(tbs_parses(buf, (size_t)tl));
	/* a SEQUENCE tag turned SET, a wrong version tag */
	memcpy(buf, tbs, (size_t)tl);
	buf[0] = 0x31;
	assert_false(tbs_parses(buf, (size_t)tl));
	memcpy(buf, tbs, (size_t)tl);
	assert_int_equal(buf[4], 0xa0);
	buf[4] = 0xa5;
	assert_false(tbs_parses(buf, (size_t)tl));
	/* a whole certificate is not a TBS */
	OPENSSL_free(tbs);
	tbs = NULL;
	tl = i2d_X509(x, &tbs);
	assert_true(tl > 0);
	assert_false(tbs_parses(tbs, (size_t)tl));
	OPENSSL_free(tbs);
	X509_free(x);
	/* a multi-valued RDN {O=Org + CN=leaf}: OpenSSL writes its SET OF
	 * sorted (X.690 11.6), taken; the same two swapped, refused */
	x = tc_leaf(NULL);
	assert_true(X509_NAME_add_entry_by_txt(X509_get_subject_name(x),
	    "O", MBSTRING_UTF8, (const unsigned char *)"Org", -1, -1, -1));
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(x)), 2);
	tc_encode(x, tc.ca_key, &tbs, &tl, NULL, NULL);
	assert_true((size_t)tl < sizeof(buf));
	assert_true(tbs_parses(tbs, (size_t)tl));
	{
		/* SET { SEQ { OID O, UTF8 "Org" }, SEQ { OID CN,
		 * UTF8 "leaf" } } */
		static const uint8_t o_atv[] = { 0x30, 0x0a, 0x06, 0x03, 0x55,
		    0x04, 0x0a, 0x0c, 0x03, 'O', 'r', 'g' };
		static const uint8_t cn_atv[] = { 0x30, 0x0b, 0x06, 0x03,
		    0x55, 0x04, 0x03, 0x0c, 0x04, 'l', 'e', 'a', 'f' };
		size_t at = 0;

		memcpy(buf, tbs, (size_t)tl);
		for (i = 2; i + sizeof(o_atv) + sizeof(cn_atv) <= (size_t)tl;
		    i++)
			if (buf[i - 2] == 0x31 && buf[i - 1] ==
			    sizeof(o_atv) + sizeof(cn_atv) &&
			    memcmp(buf + i, o_atv, sizeof(o_atv)) == 0 &&
			    memcmp(buf + i + sizeof(o_atv), cn_atv,
			    sizeof(cn_atv)) == 0)
				at = i;
		assert_true(at > 0);
		memcpy(buf + at, cn_atv, sizeof(cn_atv));
		memcpy(buf + at + sizeof(cn_atv), o_atv, sizeof(o_atv));
		assert_false(tbs_parses(buf, (size_t)tl));
		{
			struct sign_tbs t;
			char err[256] = "";

			assert_false(sign_tbs_parse(&t, buf, (size_t)tl, err,
			    sizeof(err)));
			assert_non_null(strstr(err, "X.690 11.6"));
			sign_tbs_cleanup(&t);
		}
	}
	OPENSSL_free(tbs);
	X509_free(x);
	/* constructed string, long-form small length, in a Name */
	{
		/* SEQ { [0]{INT 2}, INT 1, SEQ{OID ecdsa-sha256},
		 * Name{SET{SEQ{OID CN, UTF8 (constructed) "a"}}} ... } is
		 * refused before the fields are looked at */
		static const uint8_t cs[] = {
			0x30, 0x1f, 0xa0, 0x03, 0x02, 0x01, 0x02, 0x02, 0x01,
			0x01, 0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce,
			0x3d, 0x04, 0x03, 0x02, 0x30, 0x0b, 0x31, 0x09, 0x30,
			0x07, 0x06, 0x03, 0x55, 0x04, 0x03, 0x2c, 0x00,
		};
		static const uint8_t ll[] = {
			0x30, 0x81, 0x03, 0x02, 0x01, 0x01,
		};

		assert_false(tbs_parses(cs, sizeof(cs)));
		assert_false(tbs_parses(ll, sizeof(ll)));
	}
}

/* sign_cert_build: the parts signed by the CA make a certificate that
 * OpenSSL decodes and verifies. */
static void
test_cert_build(void **state)
{
	X509 *x, *y;
	unsigned char *tbs;
	const unsigned char *p;
	uint8_t *cert = NULL, sig[256];
	size_t sig_len = sizeof(sig), cert_len = 0;
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int tl;

	(void)state;
	tc_setup();
	x = tc_leaf(NULL);
	tc_encode(x, tc.ca_key, &tbs, &tl, NULL, NULL);
	assert_int_equal(EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL,
	    tc.ca_key), 1);
	assert_int_equal(EVP_DigestSign(m, sig, &sig_len, tbs, (size_t)tl),
	    1);
	assert_true(sign_cert_build(&cert, &cert_len, tbs, (size_t)tl, tc.alg,
	    (size_t)tc.alg_len, sig, sig_len));
	p = cert;
	y = d2i_X509(NULL, &p, (long)cert_len);
	assert_non_null(y);
	assert_ptr_equal(p, cert + cert_len);
	assert_int_equal(X509_verify(y, tc.ca_key), 1);
	X509_free(y);
	free(cert);
	/* a short body (one-byte lengths) */
	assert_true(sign_cert_build(&cert, &cert_len, (const uint8_t *)"\x30",
	    1, (const uint8_t *)"\x30\x00", 2, (const uint8_t *)"\x00", 1));
	assert_int_equal(cert_len, 2 + 1 + 2 + 4);
	assert_memory_equal(cert, "\x30\x07\x30\x30\x00\x03\x02\x00\x00",
	    cert_len);
	free(cert);
	EVP_MD_CTX_free(m);
	OPENSSL_free(tbs);
	X509_free(x);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_short),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_der_next),
		cmocka_unit_test(test_cert_spans),
		cmocka_unit_test(test_crl_parse),
		cmocka_unit_test(test_ocsp_parse),
		cmocka_unit_test(test_respid),
		cmocka_unit_test(test_tbs_policy),
		cmocka_unit_test(test_tbs_own_keys),
		cmocka_unit_test(test_tbs_malformed),
		cmocka_unit_test(test_cert_build),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

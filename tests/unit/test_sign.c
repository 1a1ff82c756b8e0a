/*
 * test_sign.c - the signer protocol codec (ca/sign_proto.c) and the
 * signer's DER walkers (ca/sign_policy.c): round trips, every malformed
 * frame rule, truncated and malformed TBSCertList / ResponseData.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/asn1.h>
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

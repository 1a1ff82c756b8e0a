/*
 * fuzz_sign.c - the signer process's parsers on arbitrary bytes: every
 * frame of the input (ca/sign_proto.c) is decoded, re-encoded and decoded
 * again (the two must be equal), and its body goes through the walkers
 * the signer runs before signing (TBSCertList, ResponseData); the input
 * is also split as a batch of OCSP requests and as a batch of replies
 * (sign_batch_parse), whose frames must lie within the input and add up
 * to what it says it used; a certificate (the whole input, a CERT
 * frame's body) is split by sign_cert_spans, whose parts must lie within
 * it in order; its TBSCertificate (and the whole input, as one) goes
 * through sign_tbs_parse, and what parses through sign_tbs_check against
 * a CA made once, and the fields the signer's log line reads.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "ca/sign_policy.h"
#include "ca/sign_proto.h"
#include "common/bytes.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
batch(const uint8_t *data, size_t len, uint16_t type, size_t max)
{
	struct sign_frame fr[SIGN_BATCH_MAX];
	size_t n, used, i, sum = 0;
	char err[256];

	if (sign_batch_parse(fr, max, &n, &used, type, data, len, err,
	    sizeof(err)) != SIGN_PARSE_OK) {
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 || n > SIGN_BATCH_MAX || n > max || used > len)
		abort();
	for (i = 0; i < n; i++) {
		if (fr[i].body < data || fr[i].body + fr[i].body_len >
		    data + used)
			abort();
		if (type != 0 ? fr[i].type != type :
		    fr[i].type != SIGN_R_OK && fr[i].type != SIGN_R_ERR)
			abort();
		sum += SIGN_HDR_LEN + fr[i].body_len;
	}
	if (sum != used)
		abort();
}

/* A certificate's spans (micad's check of a signer's answer) lie
 * inside it, in order, and cover it but for the headers. */
static void
spans(const uint8_t *data, size_t len)
{
	struct sign_cert_spans c;

	if (!sign_cert_spans(&c, data, len))
		return;
	if (c.tbs < data || c.tbs_len < 2 || c.alg != c.tbs + c.tbs_len ||
	    c.alg_len < 2 || c.sig <= c.alg + c.alg_len || c.sig_len == 0 ||
	    c.sig + c.sig_len != data + len)
		abort();
}

/* A CA for the policy, made on the first input. */
static void
rules_init(struct sign_cert_rules *r)
{
	static X509 *ca;
	static EVP_PKEY *k;
	static unsigned char *alg;
	static int alg_len;
	X509_NAME *n;

	if (ca == NULL) {
		if ((k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) ==
		    NULL || (ca = X509_new()) == NULL)
			abort();
		n = X509_get_subject_name(ca);
		if (!X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
		    (const unsigned char *)"Fuzz CA", -1, -1, 0) ||
		    !X509_set_issuer_name(ca, n) || !X509_set_pubkey(ca, k) ||
		    X509_gmtime_adj(X509_getm_notBefore(ca), -86400) == NULL ||
		    X509_gmtime_adj(X509_getm_notAfter(ca), 86400L * 3650) ==
		    NULL || X509_sign(ca, k, EVP_sha256()) <= 0 ||
		    (alg_len = i2d_X509_ALGOR(X509_get0_tbs_sigalg(ca),
		    &alg)) <= 0)
			abort();
	}
	memset(r, 0, sizeof(*r));
	r->ca = ca;
	r->alg = alg;
	r->alg_len = (size_t)alg_len;
	r->ocsp_pub = k;
}

/* A TBSCertificate: parsed (DER or refused), then checked. */
static void
tbs(const uint8_t *data, size_t len)
{
	struct sign_cert_rules r;
	struct sign_tbs t;
	uint8_t h[32];
	unsigned int n = 0;
	char err[512];

	if (!sign_tbs_parse(&t, data, len, err, sizeof(err))) {
		if (t.x != NULL || t.alg != NULL || t.pub != NULL ||
		    err[0] == '\0')
			abort();
		return;
	}
	if (t.x == NULL || t.alg == NULL)
		abort();
	rules_init(&r);
	(void)sign_tbs_check(&r, &t, 0, err, sizeof(err));
	(void)sign_tbs_check(&r, &t, 1, err, sizeof(err));
	(void)X509_pubkey_digest(t.x, EVP_sha256(), h, &n);
	sign_tbs_cleanup(&t);
	ERR_clear_error();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct sign_cert_spans cs;
	struct sign_frame f, g;
	struct sign_crl_info ci;
	struct wb w;
	const uint8_t *rid;
	size_t used, used2, rlen, off = 0;
	char err[256];

	batch(data, len, SIGN_T_OCSP, SIGN_BATCH_MAX);
	batch(data, len, SIGN_T_OCSP, len % 7 + 1);
	batch(data, len, 0, SIGN_BATCH_MAX);
	/* the walkers on the whole input too */
	spans(data, len);
	tbs(data, len);
	(void)sign_crl_parse(&ci, data, len, err, sizeof(err));
	(void)sign_ocsp_parse(&rid, &rlen, data, len, err, sizeof(err));
	while (off < len && sign_frame_parse(&f, &used, data + off, len - off,
	    err, sizeof(err)) == SIGN_PARSE_OK) {
		if (used < SIGN_HDR_LEN || used > len - off)
			abort();
		wb_init(&w);
		if (!sign_frame_encode(&w, f.type, f.id, f.body, f.body_len) ||
		    !wb_ok(&w) || w.len != used ||
		    sign_frame_parse(&g, &used2, w.data, w.len, err,
		    sizeof(err)) != SIGN_PARSE_OK || used2 != used ||
		    g.type != f.type || g.id != f.id ||
		    g.body_len != f.body_len ||
		    (f.body_len > 0 && memcmp(g.body, f.body, f.body_len) != 0))
			abort();
		wb_cleanup(&w);
		if (f.type == SIGN_T_CERT || f.type == SIGN_T_OCSP_CERT) {
			spans(f.body, f.body_len);
			if (sign_cert_spans(&cs, f.body, f.body_len))
				tbs(cs.tbs, cs.tbs_len);
		}
		if (f.type == SIGN_T_CRL)
			(void)sign_crl_parse(&ci, f.body, f.body_len, err,
			    sizeof(err));
		else if (f.type == SIGN_T_OCSP)
			(void)sign_ocsp_parse(&rid, &rlen, f.body, f.body_len,
			    err, sizeof(err));
		off += used;
	}
	return 0;
}

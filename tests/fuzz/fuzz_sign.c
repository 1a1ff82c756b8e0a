/*
 * fuzz_sign.c - the signer process's parsers on arbitrary bytes: every
 * frame of the input (ca/sign_proto.c) is decoded, re-encoded and decoded
 * again (the two must be equal), and its body goes through the walkers
 * the signer runs before signing (TBSCertList, ResponseData); the input
 * is also split as a batch of OCSP requests and as a batch of replies
 * (sign_batch_parse), whose frames must lie within the input and add up
 * to what it says it used; a certificate (the whole input, a CERT
 * frame's body) is split by sign_cert_spans, whose parts must lie within
 * it in order.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
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
		if (f.type == SIGN_T_CERT)
			spans(f.body, f.body_len);
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

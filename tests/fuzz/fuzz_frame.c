/*
 * fuzz_frame.c - the CA protocol decoder on arbitrary bytes: decodes every
 * frame in the input, re-encodes each decoded message and decodes that
 * again; the two decoded messages must be equal.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "ca/proto.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static int
blob_equal(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	if (alen != blen || (a == NULL) != (b == NULL))
		return 0;
	return alen == 0 || memcmp(a, b, alen) == 0;
}

static int
certs_equal(const struct proto_msg *a, const struct proto_msg *b)
{
	const struct proto_certinfo *x, *y;
	size_t i;

	if (a->num_certs != b->num_certs)
		return 0;
	for (i = 0; i < a->num_certs; i++) {
		x = &a->certs[i];
		y = &b->certs[i];
		/* field by field: struct copies need not copy padding */
		if (memcmp(x->serial, y->serial, sizeof(x->serial)) != 0 ||
		    x->status != y->status || x->not_before != y->not_before ||
		    x->not_after != y->not_after ||
		    memcmp(x->replaced_by, y->replaced_by,
		    sizeof(x->replaced_by)) != 0 ||
		    !blob_equal(x->subject, x->subject_len, y->subject,
		    y->subject_len))
			return 0;
	}
	return 1;
}

static int
msg_equal(const struct proto_msg *a, const struct proto_msg *b)
{
	struct proto_msg x, y;
	size_t i;

	if (!blob_equal(a->csr, a->csr_len, b->csr, b->csr_len) ||
	    !blob_equal(a->cert, a->cert_len, b->cert, b->cert_len) ||
	    !blob_equal(a->sig, a->sig_len, b->sig, b->sig_len) ||
	    a->num_chain != b->num_chain || !certs_equal(a, b))
		return 0;
	for (i = 0; i < PROTO_CHAIN_MAX; i++)
		if (!blob_equal(a->chain[i], a->chain_len[i], b->chain[i],
		    b->chain_len[i]))
			return 0;
	/* the rest is plain data: compare it with the pointers cleared */
	memcpy(&x, a, sizeof(x));	/* memcpy keeps the padding bytes */
	memcpy(&y, b, sizeof(y));
	x.csr = y.csr = x.cert = y.cert = NULL;
	x.certs = y.certs = NULL;
	x.sig = y.sig = NULL;
	for (i = 0; i < PROTO_CHAIN_MAX; i++)
		x.chain[i] = y.chain[i] = NULL;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

static void
check_round_trip(const struct proto_msg *m)
{
	struct proto_result res;
	struct proto_msg again;
	struct wb b;

	wb_init(&b);
	if (!proto_encode(&b, m))
		abort();	/* whatever decodes must encode */
	if (proto_decode(&res, &again, b.data, b.len,
	    PROTO_MAX_FRAME_LIMIT) != PROTO_FRAME || res.consumed != b.len)
		abort();
	if (!msg_equal(m, &again))
		abort();
	proto_msg_cleanup(&again);
	wb_cleanup(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_result res;
	struct proto_msg m;
	struct rd r;
	const uint8_t *p;

	rd_init(&r, data, size);
	for (;;) {
		switch (proto_decode(&res, &m, r.p, rd_left(&r), 0)) {
		case PROTO_FRAME:
			check_round_trip(&m);
			proto_msg_cleanup(&m);
			break;
		case PROTO_FAIL:
			if (res.fatal)
				return 0;
			break;
		case PROTO_NEED_MORE:
			if (res.need == 0)
				abort();
			return 0;
		}
		if (res.consumed == 0 || !rd_bytes(&r, &p, res.consumed))
			abort();	/* consumed must be inside the input */
	}
}

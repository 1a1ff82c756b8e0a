/*
 * fuzz_store_records.c - the store's record decoders fed with garbage.
 *
 * Input: one byte selecting the record type (mod 6), then the value; for
 * accounts a length byte and the key (name) come before the value.  A
 * record that decodes must encode back to exactly the same bytes (the
 * layout is canonical); anything else is a bug and aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/bytes.h"
#include "store/store.h"
#include "store/store_extra.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
same(struct wb *b, int ok, const uint8_t *p, size_t len)
{
	if (!ok || b->len != len || (len > 0 && memcmp(b->data, p, len) != 0))
		abort();
	wb_cleanup(b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t serial[STORE_SERIAL_LEN];
	struct cert_rec c;
	struct cert_state st;
	struct rev_event ev;
	struct account_rec a;
	struct request_rec q;
	struct audit_rec au;
	struct wb b;
	struct rd r;
	const uint8_t *key, *p;
	uint8_t type, klen;
	size_t len;

	rd_init(&r, data, size);
	if (!rd_u8(&r, &type))
		return 0;
	p = r.p;
	len = rd_left(&r);
	wb_init(&b);
	switch (type % 6) {
	case 0:
		if (store_rec_cert_decode(&c, serial, p, len)) {
			if (!store_rec_cert_state_decode(&st, p, len) ||
			    memcmp(&st, &c.st, sizeof(st)) != 0)
				abort();
			same(&b, store_rec_cert_encode(&b, &c), p, len);
		}
		break;
	case 1:
		(void)store_rec_cert_state_decode(&st, p, len);
		break;
	case 2:
		if (store_rec_rev_decode(&ev, 7, p, len))
			same(&b, store_rec_rev_encode(&b, &ev), p, len);
		break;
	case 3:
		if (!rd_u8(&r, &klen) || !rd_bytes(&r, &key, klen))
			break;
		p = r.p;
		len = rd_left(&r);
		if (store_rec_account_decode(&a, key, klen, p, len)) {
			if (strlen(a.name) != klen ||
			    memcmp(a.name, key, klen) != 0)
				abort();
			/* version 1 (a clear secret) is read, never written */
			if (a.totp_clear) {
				if (store_rec_account_encode(&b, &a))
					abort();
				wb_cleanup(&b);
			} else
				same(&b, store_rec_account_encode(&b, &a), p,
				    len);
		}
		break;
	case 4:
		if (store_rec_request_decode(&q, 9, p, len))
			same(&b, store_rec_request_encode(&b, &q), p, len);
		break;
	case 5:
		if (store_rec_audit_decode(&au, 3, p, len)) {
			same(&b, store_rec_audit_encode(&b, &au), p, len);
			if (!store_audit_hash(au.hash, &au))
				abort();
		}
		break;
	}
	wb_cleanup(&b);
	return 0;
}

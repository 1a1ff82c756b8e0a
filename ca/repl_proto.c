/*
 * repl_proto.c - the replication stream's frames (see ca/repl.h).
 */
#include <stdio.h>
#include <string.h>

#include "ca/repl.h"

void
repl_frame_put(struct wb *out, uint8_t type, const void *p, size_t len)
{
	wb_u8(out, type);
	wb_u32(out, (uint32_t)len);
	if (len > 0)
		wb_put(out, p, len);
}

int
repl_frame_hdr(const uint8_t hdr[REPL_FRAME_HDR], uint8_t *type,
    uint32_t *len, char *why, size_t why_len)
{
	uint32_t max;

	*type = hdr[0];
	*len = be32_get(hdr + 1);
	switch (*type) {
	case REPL_FOLLOW:
		max = 8 + JOURNAL_HASH_LEN + 8;
		break;
	case REPL_RECORD:
		max = REPL_FRAME_MAX;
		break;
	case REPL_HEARTBEAT:
		max = 24;
		break;
	case REPL_CRL:
		max = 9 + REPL_CRL_MAX;
		break;
	case REPL_ERROR:
		max = REPL_TEXT_MAX;
		break;
	case REPL_EPOCH_Q:
		max = 0;
		break;
	case REPL_EPOCH:
		max = 17;
		break;
	default:
		snprintf(why, why_len, "unknown frame type 0x%02x", *type);
		return 0;
	}
	if (*len > max) {
		snprintf(why, why_len, "frame type 0x%02x: length %u over "
		    "its limit %u", *type, *len, max);
		return 0;
	}
	return 1;
}

void
repl_follow_put(struct wb *out, const struct repl_follow *f)
{
	uint8_t b[8 + JOURNAL_HASH_LEN + 8];

	be64_put(b, f->from_seq);
	memcpy(b + 8, f->prev, JOURNAL_HASH_LEN);
	be64_put(b + 8 + JOURNAL_HASH_LEN, f->epoch);
	repl_frame_put(out, REPL_FOLLOW, b, sizeof(b));
}

int
repl_follow_parse(const uint8_t *p, size_t len, struct repl_follow *f)
{
	if (len != 8 + JOURNAL_HASH_LEN + 8)
		return 0;
	f->from_seq = be64_get(p);
	memcpy(f->prev, p + 8, JOURNAL_HASH_LEN);
	f->epoch = be64_get(p + 8 + JOURNAL_HASH_LEN);
	return f->from_seq >= 1;
}

void
repl_heartbeat_put(struct wb *out, const struct repl_heartbeat *h)
{
	uint8_t b[24];

	be64_put(b, h->head_seq);
	be64_put(b + 8, h->time_us);
	be64_put(b + 16, h->epoch);
	repl_frame_put(out, REPL_HEARTBEAT, b, sizeof(b));
}

int
repl_heartbeat_parse(const uint8_t *p, size_t len, struct repl_heartbeat *h)
{
	if (len != 24)
		return 0;
	h->head_seq = be64_get(p);
	h->time_us = be64_get(p + 8);
	h->epoch = be64_get(p + 16);
	return 1;
}

void
repl_crl_put(struct wb *out, uint8_t kind, uint64_t number,
    const uint8_t *der, size_t der_len)
{
	wb_u8(out, REPL_CRL);
	wb_u32(out, (uint32_t)(9 + der_len));
	wb_u8(out, kind);
	wb_u64(out, number);
	wb_put(out, der, der_len);
}

int
repl_crl_parse(const uint8_t *p, size_t len, struct repl_crl *c)
{
	if (len < 9 + 2 || len - 9 > REPL_CRL_MAX)
		return 0;
	c->kind = p[0];
	if (c->kind > 1)
		return 0;
	c->number = be64_get(p + 1);
	c->der = p + 9;
	c->der_len = len - 9;
	/* a DER SEQUENCE, nothing more is assumed here */
	return c->der[0] == 0x30;
}

int
repl_record_seq(const uint8_t *p, size_t len, uint64_t *seq)
{
	/* magic, body_len, version, seq */
	if (len < JOURNAL_HDR_LEN + 1 + 8)
		return 0;
	*seq = be64_get(p + JOURNAL_HDR_LEN + 1);
	return 1;
}

int
repl_cn_name(const char *cn, char *name, size_t name_len)
{
	const char *n;
	size_t i, len;

	if (strncmp(cn, "replica:", 8) != 0)
		return 0;
	n = cn + 8;
	len = strlen(n);
	if (len == 0 || len > REPL_NAME_MAX || len >= name_len)
		return 0;
	for (i = 0; i < len; i++)
		if (!((n[i] >= 'a' && n[i] <= 'z') ||
		    (n[i] >= '0' && n[i] <= '9') || n[i] == '-' ||
		    n[i] == '_' || n[i] == '.'))
			return 0;
	memcpy(name, n, len + 1);
	return 1;
}
